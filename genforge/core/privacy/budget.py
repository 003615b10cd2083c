"""A differential-privacy budget: parsing, checking and the noise that meets it.

``--dp epsilon=3,delta=1e-5[,clip=1.0][,accountant=rdp|prv]`` becomes a :class:`DPSpec`. DP-SGD (Abadi et al.
2016) clips every example's gradient to ``clip`` and adds Gaussian noise of ``noise_multiplier * clip`` to
their sum; the accountant (Opacus' RDP accountant by default, or its PRV accountant) says what
``(epsilon, delta)`` that costs for ``steps`` steps at a sampling rate ``q = batch / rows``.
:func:`noise_for_budget` picks the smallest noise whose cost at the planned number of steps stays within
the budget, so training stops exactly when the budget is spent. Every check here runs before a run
directory exists.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genforge.core.config import validate
from genforge.core.errors import ConfigError

DP_HINT = "e.g. --dp epsilon=3,delta=1e-5 (optional: clip=1.0, accountant=rdp or prv)"
FLOOR_SIGMA = 1e4  # noise so large that the cost left is the accountant's floor (its conversion term)


class DPSpec(BaseModel):
    """The privacy budget of a run and the per-example clipping norm."""

    model_config = ConfigDict(extra="forbid")
    epsilon: float = Field(..., description="privacy budget epsilon (smaller = more private)")
    delta: float = Field(..., description="probability the epsilon bound may fail; below 1 / rows")
    clip: float = Field(1.0, gt=0, description="per-example gradient norm bound (DP-SGD's C)")
    accountant: Literal["rdp", "prv"] = Field("rdp", description="Opacus accountant: rdp (Renyi DP) or prv")


def parse_dp(text: str | dict | DPSpec | None) -> DPSpec | None:
    """``"epsilon=3,delta=1e-5,clip=1"`` (or a dict) -> a checked :class:`DPSpec`; None stays None.

    epsilon must be > 0 and delta in (0, 1); anything else is a one-line ConfigError with an example."""
    if text is None or isinstance(text, DPSpec):
        return text
    if isinstance(text, dict):
        items = dict(text)
    else:
        items = {}
        for part in str(text).split(","):
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not sep or not key:
                raise ConfigError(f"--dp expects key=value pairs separated by commas, got '{text}'; {DP_HINT}")
            if key == "eps":
                key = "epsilon"
            if key in items:
                raise ConfigError(f"--dp gives '{key}' twice; give each once ({DP_HINT})")
            items[key] = value.strip()
    unknown = [k for k in items if k not in DPSpec.model_fields]
    if unknown:
        raise ConfigError(f"--dp does not know '{unknown[0]}'; it takes epsilon, delta, clip and accountant ({DP_HINT})")
    for key in ("epsilon", "delta"):
        if key not in items:
            raise ConfigError(f"--dp needs {key}; {DP_HINT}")
    for key in ("epsilon", "delta", "clip"):
        if key in items:
            try:
                items[key] = float(items[key])
            except (TypeError, ValueError):
                raise ConfigError(f"--dp {key} must be a number, got '{items[key]}' ({DP_HINT})") from None
            if not math.isfinite(items[key]):
                raise ConfigError(f"--dp {key} must be a finite number, got {items[key]}")
    if items["epsilon"] <= 0:
        raise ConfigError(f"--dp epsilon must be greater than 0, got {items['epsilon']:g} (typical budgets: 1 to 10)")
    if not 0 < items["delta"] < 1:
        raise ConfigError(f"--dp delta must be between 0 and 1 (and below 1 / rows), got {items['delta']:g}")
    if items.get("clip", 1.0) <= 0:
        raise ConfigError(f"--dp clip must be greater than 0, got {items['clip']:g}")
    return validate(DPSpec, items, what="--dp")


def check_rows(spec: DPSpec, rows: int, unit: str = "rows") -> None:
    """Refuse a delta of at least 1 / ``rows``: with it, releasing one example outright would be 'private'."""
    if rows < 2:
        raise ConfigError(f"--dp needs at least 2 training {unit}; the data has {rows}")
    if spec.delta >= 1 / rows:
        raise ConfigError(f"--dp delta={spec.delta:g} is not below 1 / {rows:,} {unit} = {1 / rows:.3g}; a delta that "
                          f"large allows leaking a whole example; use e.g. delta={_nice_delta(rows):g}")


def _nice_delta(rows: int) -> float:
    """A power of ten below ``1 / rows`` (the usual advice is delta << 1/n)."""
    return 10.0 ** math.floor(math.log10(1 / rows) - 1)


def _epsilon(sigma: float, q: float, steps: int, delta: float, accountant: str, releases=()) -> float:
    """The epsilon of ``steps`` subsampled Gaussian steps plus one-off full-data Gaussian ``releases`` (their
    noise multipliers), composed by the accountant."""
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = [(sigma, q, steps)] + [(float(r), 1.0, 1) for r in releases]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta))


def smallest_epsilon(spec: DPSpec, sample_rate: float, steps: int) -> float:
    """The least epsilon the accountant can certify for ``steps`` steps at ``sample_rate``, however much
    noise is added (its conversion from Renyi DP leaves a floor), rounded up to two significant digits."""
    return _round_up(_epsilon(FLOOR_SIGMA, sample_rate, max(1, steps), spec.delta, spec.accountant))


def gaussian_delta(epsilon: float, sigma: float) -> float:
    """The exact delta of the Gaussian mechanism with noise ``sigma`` times the sensitivity at ``epsilon``
    (Balle and Wang 2018, Theorem 8)."""
    from scipy.stats import norm

    a, b = 1.0 / (2 * sigma), epsilon * sigma
    return float(norm.cdf(a - b) - math.exp(epsilon) * norm.cdf(-a - b))


def release_noise(spec: DPSpec, share: float) -> float:
    """The noise multiplier of one Gaussian release of the whole data (counts, say) that is
    ``(share * epsilon, delta)``-DP on its own, calibrated exactly (the analytic Gaussian mechanism, which
    certifies any epsilon; Renyi accounting of a single release has a floor); the rest goes to training, and
    the accountant composes the two."""
    eps = share * spec.epsilon
    lo, hi = 1e-3, 1e7
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if gaussian_delta(eps, mid) <= spec.delta else (mid, hi)
        if hi / lo < 1.0001:
            break
    return float(hi)


def least_budget(spec: DPSpec, sample_rate: float, steps: int, shares) -> float:
    """The smallest epsilon (two significant digits, rounded up) whose training steps and one-off releases of
    ``shares`` of it the accountant can certify together at ``spec.delta``."""
    eps = smallest_epsilon(spec, sample_rate, steps)
    for _ in range(200):
        trial = spec.model_copy(update={"epsilon": eps})
        noise = [release_noise(trial, share) for share in shares]
        if _epsilon(FLOOR_SIGMA, sample_rate, max(1, steps), spec.delta, spec.accountant, noise) <= eps:
            break
        eps *= 1.05
    return _round_up(eps)


def _round_up(x: float) -> float:
    digits = -int(math.floor(math.log10(x))) + 1
    return math.ceil(x * 1.02 * 10**digits) / 10**digits


def _bisect(spec: DPSpec, q: float, steps: int, releases) -> float:
    lo, hi = 1e-2, FLOOR_SIGMA
    if _epsilon(hi, q, steps, spec.delta, spec.accountant, releases) > spec.epsilon:
        raise ValueError("too low")
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if _epsilon(mid, q, steps, spec.delta, spec.accountant, releases) <= spec.epsilon else (mid, hi)
        if hi / lo < 1.001:
            break
    return hi


def noise_for_budget(spec: DPSpec, sample_rate: float, steps: int, releases=()) -> float:
    """The noise multiplier whose cost after ``steps`` steps at ``sample_rate`` (composed with the one-off
    ``releases``, their noise multipliers) is at most ``spec.epsilon``.

    A budget below what the accountant can certify is a ConfigError naming the smallest that works."""
    need("opacus", "opacus")
    from opacus.accountants.utils import get_noise_multiplier

    if not 0 < sample_rate <= 1:
        raise ConfigError(f"the sampling rate must be in (0, 1], got {sample_rate:g}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if releases:
                return _bisect(spec, sample_rate, int(steps), releases)
            sigma = get_noise_multiplier(target_epsilon=spec.epsilon, target_delta=spec.delta, sample_rate=sample_rate,
                                         steps=int(steps), accountant=spec.accountant, epsilon_tolerance=0.005)
    except ValueError:
        least = smallest_epsilon(spec, sample_rate, steps)
        raise ConfigError(f"--dp epsilon={spec.epsilon:g} is too small to train even one step at delta={spec.delta:g} "
                          f"(the {spec.accountant} accountant cannot certify less than about {least:g} here, whatever "
                          f"the noise); the smallest budget that works is epsilon={least:g}") from None
    return float(sigma)


def spent(plan: dict[str, Any], steps: int) -> float:
    """The epsilon spent after ``steps`` private steps of a resolved ``plan`` (see :func:`describe`)."""
    if steps <= 0:
        return 0.0
    releases = [r["noise_multiplier"] for r in plan.get("releases", [])]
    delta = plan.get("delta_accounted", plan["delta"])  # the rest of delta went to thresholding (see describe)
    return _epsilon(plan["noise_multiplier"], plan["sample_rate"], steps, delta, plan["accountant"], releases)


def describe(plan: dict[str, Any] | None) -> str:
    """One line for people: ``(epsilon=3, delta=1e-05)-DP, noise 0.87, clip 1, q 0.01, 1000 steps (rdp)``."""
    if not plan:
        return "not private"
    eps = plan.get("epsilon_spent", plan.get("epsilon"))
    parts = [f"(ε={eps:.3g}, δ={plan['delta']:.3g})-DP"]
    if plan.get("noise_multiplier") is not None:
        parts.append(f"noise multiplier {plan['noise_multiplier']:.3g}, clip {plan['clip']:g}, "
                     f"sampling rate {plan['sample_rate']:.3g}, {plan.get('steps_done', plan.get('steps'))} steps "
                     f"({plan['accountant']} accountant)")
    for r in plan.get("releases", []):
        parts.append(f"{r['what']} released with Gaussian noise (multiplier {r['noise_multiplier']:.3g}, "
                     f"{r['share']:.0%} of epsilon)")
    if plan.get("delta_thresholding"):
        parts.append(f"δ={plan['delta_thresholding']:.2g} of it for releasing only categories above a noise threshold")
    if plan.get("mechanism"):
        parts.append(plan["mechanism"])
    return "; ".join(parts)


def privacy_of(run) -> dict[str, Any] | None:
    """The privacy guarantee a run directory records (``summary.json``'s ``privacy``), or None."""
    if run is None:
        return None
    found = run.read_summary().get("privacy")
    return found if isinstance(found, dict) else None


def need(module: str, package: str) -> None:
    """Refuse in one line when an optional privacy library is missing (``pip install genforge[privacy]``)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"this needs the '{package}' package, which is not installed; install genforge's privacy "
                          f"extra: pip install 'genforge[privacy]'")
