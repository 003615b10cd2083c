"""Image metrics: formulas against independent implementations, and the behaviour checks
of the evaluation (real vs real, noise, blur, one class, determinism) on the 8x8 digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

import genforge
from genforge.core.errors import ConfigError, DataError
from genforge.images.metrics import evaluate_images, frechet_distance, kernel_inception_distance, prdc
from genforge.images.metrics.features import domain_extractor
from genforge.images.metrics.fidelity import inception_score, pairwise_min


# -- formulas ---------------------------------------------------------------------------------------
def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    g = np.random.default_rng(0)
    a = g.normal(size=(400, 8))
    b = g.normal(size=(500, 8)) @ g.normal(size=(8, 8)) * 0.5 + 0.3
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_refuses_a_singular_covariance():
    with pytest.raises(ConfigError, match="more than 16"):
        frechet_distance(np.random.rand(10, 16), np.random.rand(100, 16))


def _naive_kid(x, y, d):
    def k(a, b):
        return (a @ b.T / d + 1) ** 3
    m = len(x)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * k(x, y).mean())


def test_kid_matches_the_unbiased_mmd_formula_on_one_full_subset():
    g = np.random.default_rng(1)
    a, b = g.normal(size=(200, 16)), g.normal(size=(200, 16)) + 0.2
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=200)
    assert mean == pytest.approx(_naive_kid(a, b, 16), rel=1e-4)
    assert std == 0.0
    c, e = g.normal(size=(2000, 16)), g.normal(size=(2000, 16))  # same distribution: unbiased, ~0
    same, _ = kernel_inception_distance(c, e, subsets=20, subset_size=1000)
    shifted, _ = kernel_inception_distance(c, e + 0.2, subsets=20, subset_size=1000)
    assert abs(same) < 0.05 * shifted


def test_prdc_matches_a_brute_force_implementation():
    g = np.random.default_rng(2)
    r, f = g.normal(size=(60, 3)), g.normal(size=(50, 3)) * 1.3 + 0.2
    k = 3
    drr = np.linalg.norm(r[:, None] - r[None], axis=2)
    dff = np.linalg.norm(f[:, None] - f[None], axis=2)
    dfr = np.linalg.norm(f[:, None] - r[None], axis=2)
    rr = np.sort(drr, 1)[:, k]  # index 0 is the point itself
    rf = np.sort(dff, 1)[:, k]
    want = {
        "precision": (dfr <= rr[None]).any(1).mean(),
        "recall": (dfr <= rf[:, None]).any(0).mean(),
        "density": (dfr <= rr[None]).sum() / (k * len(f)),
        "coverage": (dfr <= rr[None]).any(0).mean(),
    }
    got = prdc(torch.tensor(r), torch.tensor(f), k)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


def test_pairwise_min_finds_true_neighbours():
    a, b = torch.randn(30, 4), torch.randn(70, 4)
    d, i = pairwise_min(a, b, 2)
    full = torch.cdist(a, b)
    v, j = full.topk(2, largest=False)
    assert torch.equal(i, j) and torch.allclose(d, v, atol=1e-4)


def test_inception_score_bounds():
    k = 4
    assert inception_score(np.eye(k)[np.arange(400) % k]) == pytest.approx(k, rel=1e-6)  # confident, uniform
    assert inception_score(np.full((100, k), 1 / k)) == pytest.approx(1.0)                 # uninformative


# -- behaviour on real data -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real():
    data = genforge.load_images("digits")
    return data.split(0.5, seed=0)  # (train half, test half): disjoint


@pytest.fixture(scope="module")
def extractor(real):
    train, _ = real
    return domain_extractor(train.x, train.y, source="digits")


def _eval(real, extractor, fake, **kw):
    train, test = real
    return evaluate_images(train, fake, real_test=test, extractor=extractor, kid_subsets=20, **kw)["metrics"]


def _v(m, key):
    return m[key]["value"]


def test_domain_classifier_is_accurate_and_cached(real, extractor):
    train, test = real
    acc = (extractor.net(test.x).argmax(1) == test.y).float().mean()
    assert acc > 0.9
    again = domain_extractor(train.x, train.y)  # from the cache: same weights, no training
    assert again.train_seconds == 0.0
    assert all(torch.equal(a, b) for a, b in zip(again.net.state_dict().values(), extractor.net.state_dict().values()))


def test_real_vs_real_noise_and_blur_are_ordered(real, extractor):
    train, test = real
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(len(train), *train.image_shape, generator=g) * 2 - 1
    blurred = F.avg_pool2d(F.pad(train.x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    m_real, m_noise, m_blur = (_eval(real, extractor, x) for x in (train.x, noise, blurred))
    assert _v(m_real, "fid") < 0.05 * _v(m_noise, "fid")
    assert _v(m_real, "fid") < _v(m_blur, "fid") < _v(m_noise, "fid")
    assert _v(m_real, "kid") < _v(m_blur, "kid") < _v(m_noise, "kid")
    assert _v(m_real, "precision") > 0.85 and _v(m_real, "recall") > 0.85
    assert _v(m_noise, "precision") < 0.05
    # the reference column is the real-vs-real value: with fake = real train it matches exactly
    assert _v(m_real, "fid") == pytest.approx(m_real["fid"]["reference"], rel=1e-6)


def test_single_class_subset_has_low_recall_and_skewed_histogram(real, extractor):
    train, _ = real
    full = genforge.load_images("digits")
    ones = full.x[full.y == 1]  # all 182 ones: more samples than feature dimensions
    res = evaluate_images(train, ones, real_test=real[1], extractor=extractor, kid_subsets=20)
    m = res["metrics"]
    assert _v(m, "recall") < 0.3 and _v(m, "coverage") < 0.3
    assert _v(m, "class_tv") > 0.7
    assert _v(m, "classes_present") <= 2
    assert max(res["class_histogram"]["generated"]) > 0.8


def test_copies_of_training_images_are_flagged_as_memorised(real, extractor):
    train, _ = real
    res = evaluate_images(train, train.x[:300], real_test=real[1], extractor=extractor, kid_subsets=5)
    assert _v(res["metrics"], "memorised_share") > 0.9
    assert res["closest_pairs"][0]["distance"] == pytest.approx(0.0, abs=1e-3)


def test_membership_attacks_catch_a_copying_generator_and_not_unseen_images(real, extractor):
    train, test = real
    copies = _eval(real, extractor, train.x)  # releases its training images
    unseen = _eval(real, extractor, genforge.load_images("digits").split(0.5, seed=1)[1].x[:len(test) // 3])
    assert _v(copies, "mia_distance_auc") > 0.95 and _v(copies, "mia_density_auc") > 0.8
    assert abs(copies["mia_distance_auc"]["reference"] - 0.5) < 0.1  # a real holdout copy leaks nothing
    assert _v(unseen, "mia_distance_auc") < _v(copies, "mia_distance_auc") - 0.2


def test_same_inputs_give_the_same_numbers(real, extractor):
    train, _ = real
    fake = train.x[:400].flip(-1)
    a = evaluate_images(train, fake, real_test=real[1], extractor=extractor, kid_subsets=10, seed=3)
    b = evaluate_images(train, fake, real_test=real[1], extractor=extractor, kid_subsets=10, seed=3)
    assert json.dumps(a["metrics"]) == json.dumps(b["metrics"])


def test_label_accuracy_and_tstr_for_labelled_samples(real, extractor):
    train, test = real
    good = evaluate_images(train, train.x, real_test=test, fake_labels=train.y, extractor=extractor,
                           kid_subsets=5, tstr=True)["metrics"]
    shuffled = train.y[torch.randperm(len(train.y), generator=torch.Generator().manual_seed(0))]
    bad = evaluate_images(train, train.x, real_test=test, fake_labels=shuffled, extractor=extractor,
                          kid_subsets=5, tstr=False)["metrics"]
    assert _v(good, "label_accuracy") > 0.9 > 0.3 > _v(bad, "label_accuracy")
    assert _v(good, "tstr_accuracy") > 0.8 and good["tstr_accuracy"]["reference"] > 0.8


def test_bad_inputs_are_clear_errors(real, extractor):
    train, test = real
    with pytest.raises(DataError, match="shape|are"):
        evaluate_images(train, torch.zeros(50, 3, 8, 8), real_test=test, extractor=extractor)
    with pytest.raises(DataError, match="NaN"):
        evaluate_images(train, torch.full((50, 1, 8, 8), float("nan")), real_test=test, extractor=extractor)
    with pytest.raises(ConfigError, match="more than 112"):
        evaluate_images(train, train.x[:20], real_test=test, extractor=extractor)
