"""Membership-inference attack scores every modality shares (tables and images call them on their own points).

The attacker holds the released samples; a query is a real record; the attack's score says how likely the
record was a training member. Attack quality is the ROC AUC of the scores over members (label 1) and
non-members (label 0): 0.5 means the attack cannot tell them apart, 1 that it always can.

* :func:`distance_scores`: minus the distance from the query to its closest released point; a generator
  that copies its training records scores AUC near 1.
* :func:`density_scores`: DOMIAS (van Breugel et al. 2023), the released points' density at the query over
  the density of real reference points there (Gaussian KDEs on the reference's first principal components),
  which flags records whose neighbourhood the generator over-represents.
"""

from __future__ import annotations

import warnings

import numpy as np

from genforge.core.metrics.neighbours import nearest_neighbours

DENSITY_COMPONENTS = 8    # principal components the KDEs work in
BANDWIDTH = 0.1           # times Scott's rule: narrow enough that a copied record is a peak


def attack_auc(members: np.ndarray, others: np.ndarray) -> float:
    """ROC AUC of attack scores: members labelled 1, non-members 0."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(members)), np.zeros(len(others))]
    return float(roc_auc_score(y, np.r_[members, others]))


def distance_scores(queries: np.ndarray, released: np.ndarray) -> np.ndarray:
    """Minus the distance from each query to its closest released point (higher = more likely a member)."""
    return -nearest_neighbours(queries, released, 1)[0].numpy()[:, 0]


def density_scores(queries: np.ndarray, released: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """DOMIAS' log density ratio ``log p_released(x) - log p_reference(x)`` with Gaussian KDEs on the reference
    points' first principal components: Scott's bandwidth for the smooth reference density, ``BANDWIDTH`` times
    it for the released points (narrow enough that points a generator reproduces stand out as peaks)."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KernelDensity

    k = int(min(DENSITY_COMPONENTS, reference.shape[1], max(1, len(reference) - 1)))
    pca = PCA(n_components=k, random_state=0).fit(reference)
    scale = pca.transform(reference).std(0) + 1e-9

    def project(x):
        return pca.transform(x) / scale

    def log_density(points, factor):
        bw = factor * len(points) ** (-1.0 / (k + 4))
        return KernelDensity(bandwidth=bw).fit(project(points)).score_samples(project(queries))

    return log_density(released, BANDWIDTH) - log_density(reference, 1.0)


def membership_aucs(members: np.ndarray, non_members: np.ndarray, reference: np.ndarray,
                    releases: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """``{"mia_distance_auc": {key: auc}, "mia_density_auc": {key: auc}}`` for each release (e.g. ``value``: the
    synthetic samples, ``reference``: a real holdout copy that never saw a member)."""
    out: dict[str, dict[str, float]] = {"mia_distance_auc": {}, "mia_density_auc": {}}
    for key, rel in releases.items():
        out["mia_distance_auc"][key] = attack_auc(distance_scores(members, rel), distance_scores(non_members, rel))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dens = [density_scores(q, rel, reference) for q in (members, non_members)]
        out["mia_density_auc"][key] = attack_auc(*dens)
    return out
