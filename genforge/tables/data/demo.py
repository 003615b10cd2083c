"""The built-in demo table ``customers``: synthetic, deterministic, and full of hard cases.

It stands in for an organisation's customer table so that every tabular model can be tried
without a file (``load_table("customers")``). The columns exercise everything a tabular
model has to get right:

========================  ==============================================================
``customer_id``           identifier ``C000123`` (unique; must be regenerated, not learned)
``signup_date``           dates as ``YYYY-MM-DD`` strings over 2018-2024, more recent = more
``age``                   integer 18-90, right-skewed
``sex``                   ``Female`` / ``Male``
``country``               12 values with a long tail (three countries under 1%)
``city``                  ~400 distinct values, zipf-like within each country
``income``                lognormal, 2 decimals, rises with age; ~8% missing, more often
                          for the young and the old (missing *not* at random)
``balance``               zero-inflated (~35% exactly 0.0), the rest bimodal; rises with income
``num_products``          integer 1-5
``is_active``             boolean
``churned``               ``yes`` / ``no``: depends on age, balance, activity and products
``notes``                 free text from a small vocabulary with numbers, ~60% missing
========================  ==============================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Country shares: a head of big markets and a long tail (the last three are under 1%).
_COUNTRIES = {
    "United Kingdom": 0.34, "Germany": 0.17, "France": 0.13, "Spain": 0.09, "Italy": 0.07,
    "Netherlands": 0.055, "Ireland": 0.045, "Portugal": 0.035, "Belgium": 0.028,
    "Austria": 0.009, "Luxembourg": 0.005, "Iceland": 0.003,
}
_CITY_HEADS = ["Ash", "Bright", "Cold", "Dun", "East", "Fair", "Glen", "High", "Kings", "Lang",
               "Mill", "North", "Oak", "Port", "Red", "Salt", "South", "Stone", "West", "Wind",
               "Elm", "Fern", "Hazel", "Iron", "Lake", "Moor", "Rose", "Silver"]
_CITY_TAILS = ["ford", "bridge", "field", "ham", "ton", "wick", "by", "mouth", "stead", "worth",
               "dale", "haven", "bury", "well", "mere", "gate", " Hill", " Cross", " Vale", " Bay"]
_NOTE_VERBS = ["Called about", "Emailed about", "Asked about", "Complained about", "Visited branch re",
               "Requested info on", "Follow-up on"]
_NOTE_TOPICS = ["card limit", "mortgage rate", "savings account", "overdraft fee", "online banking",
                "address change", "loan offer", "travel insurance", "lost card", "statement copy"]
_NOTE_TAILS = ["resolved", "callback in {k} days", "escalated", "sent form {k}", "waiting on documents",
               "offered {k}% discount", "no action needed"]


def _city_names(count: int) -> list[str]:
    """``count`` distinct made-up town names (head + tail syllables)."""
    names = [h + t for t in _CITY_TAILS for h in _CITY_HEADS]
    return names[:count]


def customers_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A realistic synthetic customer table of ``n`` rows; the same ``seed`` gives the same table.

    See the module docstring for the columns. Relationships are real: income rises with age,
    balance with income, products with balance, churn with age, balance, inactivity and
    product count; income is missing more often for young and old customers.
    """
    rng = np.random.default_rng(seed)

    customer_id = [f"C{i:06d}" for i in np.sort(rng.choice(999_999, size=n, replace=False) + 1)]

    start = np.datetime64("2018-01-01")
    span = int((np.datetime64("2024-12-31") - start).astype(int))
    days = np.floor(rng.beta(1.6, 1.0, size=n) * (span + 1)).astype(int)
    signup_date = np.datetime_as_string(start + days.astype("timedelta64[D]"), unit="D")

    age = np.clip(np.round(18 + rng.gamma(2.2, 10.0, size=n)), 18, 90).astype(np.int64)
    sex = np.where(rng.random(n) < 0.52, "Female", "Male")

    names = list(_COUNTRIES)
    shares = np.array(list(_COUNTRIES.values()))
    country_idx = rng.choice(len(names), size=n, p=shares / shares.sum())
    country = np.array(names, dtype=object)[country_idx]

    # Cities: each country owns a block of town names (in proportion to its share, at least 3);
    # within a country the towns follow a zipf-like law, so the table has a long tail of towns.
    pool = _city_names(len(_CITY_HEADS) * len(_CITY_TAILS))
    per_country = np.maximum(3, np.round(shares / shares.sum() * 430)).astype(int)
    city = np.empty(n, dtype=object)
    offset = 0
    for c, k in enumerate(per_country):
        towns = pool[offset:offset + k]
        offset += k
        w = 1.0 / np.arange(1, k + 1) ** 0.9
        rows = np.flatnonzero(country_idx == c)
        city[rows] = np.array(towns, dtype=object)[rng.choice(k, size=rows.size, p=w / w.sum())]

    # Income: lognormal around a curve that rises until the fifties, men slightly higher.
    log_income = (np.log(24_000) + 0.035 * (age - 18) - 0.00045 * (age - 18) ** 2
                  + 0.06 * (sex == "Male") + rng.normal(0, 0.45, size=n))
    income_true = np.round(np.exp(log_income), 2)
    p_missing = 0.05 + 0.12 * (age < 25) + 0.18 * (age > 65)
    income = np.where(rng.random(n) < p_missing, np.nan, income_true)

    # Balance: ~35% exactly zero; otherwise everyday savings or a much larger pot, both growing with income.
    rel = np.log(income_true / 40_000)
    zero = rng.random(n) < np.clip(0.35 - 0.12 * rel, 0.1, 0.8)
    big = rng.random(n) < np.clip(0.35 + 0.25 * rel + 0.004 * (age - 40), 0.05, 0.9)
    small_pot = np.exp(np.log(2_500) + 0.5 * rel + rng.normal(0, 0.6, size=n))
    big_pot = np.exp(np.log(85_000) + 0.6 * rel + rng.normal(0, 0.35, size=n))
    balance = np.round(np.where(zero, 0.0, np.where(big, big_pot, small_pot)), 2)

    # Products: more with a larger balance.
    base = np.array([0.48, 0.33, 0.11, 0.06, 0.02])
    shift = np.where(balance > 20_000, 1, 0) + (rng.random(n) < 0.15)
    num_products = np.clip(rng.choice(5, size=n, p=base) + 1 + shift * (rng.random(n) < 0.5), 1, 5).astype(np.int64)

    is_active = rng.random(n) < np.clip(0.45 + 0.08 * (num_products - 1) + 0.003 * (age - 40), 0.1, 0.9)

    logit = (-1.9 + 0.055 * (age - 40) - 0.0012 * (age - 40) ** 2 * (age > 60) + 0.55 * (balance > 0)
             - 0.95 * is_active + 1.6 * (num_products >= 3) + 0.9 * (num_products >= 4))
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")

    notes = np.full(n, np.nan, dtype=object)
    for i in np.flatnonzero(rng.random(n) < 0.4):
        tail = _NOTE_TAILS[rng.integers(len(_NOTE_TAILS))].format(k=int(rng.integers(2, 30)))
        notes[i] = (f"{_NOTE_VERBS[rng.integers(len(_NOTE_VERBS))]} "
                    f"{_NOTE_TOPICS[rng.integers(len(_NOTE_TOPICS))]}, ref {int(rng.integers(10_000, 99_999))}; {tail}.")

    return pd.DataFrame({
        "customer_id": customer_id,
        "signup_date": signup_date.astype(object),
        "age": age,
        "sex": sex.astype(object),
        "country": country,
        "city": city,
        "income": income,
        "balance": balance,
        "num_products": num_products,
        "is_active": is_active.astype(bool),
        "churned": churned.astype(object),
        "notes": notes,
    })
