"""Privacy attacks on a synthetic table, each next to the same attack on a real holdout copy (the reference).

Membership inference asks: given a real record, was it in the training data? The attacker holds the
released rows; members are real training rows, non-members real holdout rows the generator never saw
(so these attacks run only when a holdout table is given). Attack quality is the ROC AUC of its scores
over members (label 1) and non-members (label 0): 0.5 means it cannot tell them apart, 1 that it always
can. The holdout is cut in three seeded parts: the non-member queries, a reference sample (for the
density attack's "what real data looks like") and the **reference release**, a copy of real rows that
never saw a member: the same attacks against it read what no leakage looks like on this data.

* **distance** (``mia_distance_auc``) and **density** (``mia_density_auc``, DOMIAS): the scores of
  :mod:`genforge.core.metrics.membership`, on the rows as points (as in
  :mod:`~genforge.tables.metrics.privacy`); a generator that copies its training rows scores AUC near 1.
* **anonymeter** (Giomi et al. 2023) for the ``sensitive`` columns: singling-out, linkability and attribute
  inference risk, each a share in [0, 1] (0 = no risk beyond the control attack on holdout rows).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from genforge.core.metrics.membership import membership_aucs
from genforge.core.metrics.rows import metric_row
from genforge.tables.metrics.privacy import RowEncoder, _row_hashes
from genforge.tables.metrics.values import _subsample

MIA_MAX_ROWS = 5000       # queries per side, released and reference rows
ANONYMETER_ROWS = 2000    # rows per table handed to anonymeter
ANONYMETER_ATTACKS = 300

EXPLAIN = {
    "mia_distance_auc": "membership inference by distance to the closest released row: attack ROC AUC over training "
                        "rows vs unseen holdout rows (0.5 = no leakage; reference: the same attack on a real holdout copy)",
    "mia_density_auc": "DOMIAS-style membership inference (released-row density over real density at the record): "
                       "attack ROC AUC (0.5 = no leakage)",
    "singling_out_risk": "anonymeter singling-out risk: share of predicates that single out one training row beyond "
                         "chance (0 = none)",
    "linkability_risk": "anonymeter linkability risk: share of training rows whose two halves of columns are linked "
                        "through the released rows beyond chance",
    "inference_risk": "anonymeter attribute-inference risk for a sensitive column from all the others",
}


def overlap_share(train: pd.DataFrame, test: pd.DataFrame, cols: dict[str, dict]) -> float:
    """The share of ``test`` rows identical to some ``train`` row (raw values, ids left out)."""
    if len(test) == 0:
        return 0.0
    return float(np.isin(_row_hashes(test, cols), np.unique(_row_hashes(train, cols))).mean())


def _parts(real: pd.DataFrame, holdout: pd.DataFrame, seed: int):
    """(member queries, non-member queries, density reference, reference release), seeded."""
    hold = holdout.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    third = len(hold) // 3
    non, ref, copy = hold.iloc[:third], hold.iloc[third:2 * third], hold.iloc[2 * third:]
    n = min(len(non), MIA_MAX_ROWS)
    members = _subsample(real, n, seed + 11)
    return members, _subsample(non, n, seed + 12), _subsample(ref, MIA_MAX_ROWS, seed + 13), copy


def membership_attacks(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict],
                       *, seed: int = 0) -> dict[str, dict]:
    """The distance and density membership attacks' ROC AUC against ``synthetic`` (value) and against a real
    holdout copy (reference); see the module docstring. Needs at least 30 holdout rows."""
    if len(holdout) < 30:
        return {}
    members, non, reference, copy = _parts(real, holdout, seed)
    enc = RowEncoder(real, cols)
    q_mem, q_non = (enc.transform(d).astype(np.float64) for d in (members, non))
    ref = enc.transform(reference).astype(np.float64)
    out = {}
    releases = {key: enc.transform(_subsample(release, MIA_MAX_ROWS, seed + 14)).astype(np.float64)
                for key, release in (("value", synthetic), ("reference", copy))}
    rows = membership_aucs(q_mem, q_non, ref, releases)
    for name, r in rows.items():
        out[name] = metric_row(r["value"], r["reference"], queries=len(members) + len(non))
    return out


def anonymeter_risks(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, sensitive: list[str],
                     cols: dict[str, dict], *, seed: int = 0, n_attacks: int = ANONYMETER_ATTACKS) -> dict[str, dict]:
    """Singling-out, linkability and (per sensitive column) inference risk from anonymeter, against
    ``synthetic`` and against a real holdout copy (reference); half the holdout is the control set."""
    from genforge.core.privacy import need

    need("anonymeter", "anonymeter")
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    keep = [c for c, m in cols.items() if m["sdtype"] != "id"]
    hold = holdout[keep].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    control, copy = hold.iloc[: len(hold) // 2], hold.iloc[len(hold) // 2:]
    ori = _subsample(real[keep], ANONYMETER_ROWS, seed + 21).reset_index(drop=True)
    control = _subsample(control, ANONYMETER_ROWS, seed + 22).reset_index(drop=True)
    attacks = max(1, min(n_attacks, len(control), len(ori)))
    others = [c for c in keep if c not in sensitive]
    half = len(others) // 2
    out: dict[str, dict] = {}

    def risk(make) -> float | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(make().evaluate().risk().value)
        except Exception:  # noqa: BLE001 - anonymeter refuses some tiny or degenerate inputs; say "no value"
            return None

    for key, release in (("value", synthetic), ("reference", copy)):
        syn = _subsample(release[keep], ANONYMETER_ROWS, seed + 23).reset_index(drop=True)
        vals = out.setdefault("_vals", {})
        vals.setdefault("singling_out_risk", {})[key] = risk(lambda: SinglingOutEvaluator(
            ori=ori, syn=syn, control=control, n_attacks=attacks))
        if half >= 1:
            vals.setdefault("linkability_risk", {})[key] = risk(lambda: LinkabilityEvaluator(
                ori=ori, syn=syn, control=control, n_attacks=attacks, aux_cols=(others[:half], others[half:])))
        for col in sensitive:
            aux = [c for c in keep if c != col]
            vals.setdefault(f"inference_risk[{col}]", {})[key] = risk(lambda: InferenceEvaluator(
                ori=ori, syn=syn, control=control, n_attacks=attacks, aux_cols=aux, secret=col))
    return {name: metric_row(r.get("value"), r.get("reference")) for name, r in out.pop("_vals").items()}
