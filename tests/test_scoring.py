"""Scores, thresholds, metrics and the PCA baseline on known arrays (no TensorFlow)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from edge.scoring import score_reconstruction, ssim
from edge.threshold import calibrate_threshold
from training.baselines import PCABaseline
from training.metrics import detection_metrics
from zoo.errors import NotFittedError, UserError


def test_mse_mae_known_values():
    x = np.zeros((2, 2, 2, 1))
    y = x.copy()
    y[0, 0, 0, 0] = 1.0  # one pixel off by 1 in image 0
    y[1] = 0.5  # every pixel off by 0.5 in image 1
    np.testing.assert_allclose(score_reconstruction(x, y, "mse"), [0.25, 0.25])
    np.testing.assert_allclose(score_reconstruction(x, y, "mae"), [0.25, 0.5])
    np.testing.assert_allclose(score_reconstruction(x, x), [0.0, 0.0])


def test_ssim_constant_images_known_value():
    a = np.full((1, 10, 10, 1), 0.5)
    b = np.full((1, 10, 10, 1), 0.25)
    c1 = (0.01) ** 2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
    np.testing.assert_allclose(ssim(a, b), [expected])
    np.testing.assert_allclose(score_reconstruction(a, a, "ssim"), [0.0], atol=1e-12)


def _ssim_reference(x, y, w=7):
    """Independent SSIM with scipy's uniform filter (scikit-image's formulation)."""
    k = {"size": (w, w)}
    ux, uy = uniform_filter(x, **k), uniform_filter(y, **k)
    norm = w * w / (w * w - 1)
    vx = norm * (uniform_filter(x * x, **k) - ux * ux)
    vy = norm * (uniform_filter(y * y, **k) - uy * uy)
    vxy = norm * (uniform_filter(x * y, **k) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    p = (w - 1) // 2
    return s[p:-p, p:-p].mean()


def test_ssim_matches_reference_on_random_images():
    rng = np.random.default_rng(0)
    x = rng.random((3, 28, 28, 1))
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    ours = ssim(x, y, batch_size=2)
    ref = [_ssim_reference(x[i, ..., 0], y[i, ..., 0]) for i in range(3)]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    assert np.all(score_reconstruction(x, y, "ssim") > 0)


def test_bad_score_input():
    with pytest.raises(UserError, match="kind"):
        score_reconstruction(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), "psnr")
    with pytest.raises(UserError, match="same shape"):
        score_reconstruction(np.zeros((1, 8, 8)), np.zeros((2, 8, 8)))


def test_threshold_percentile_and_mean_std():
    scores = np.arange(101, dtype=float)
    assert calibrate_threshold(scores) == pytest.approx(99.0)
    assert calibrate_threshold(scores, "percentile", percentile=90) == pytest.approx(90.0)
    s = np.array([1.0, 2, 3, 4, 5])
    assert calibrate_threshold(s, "mean_std", k=2.0) == pytest.approx(3 + 2 * math.sqrt(2))
    rng = np.random.default_rng(0)
    normal = rng.standard_normal(200_000)
    assert calibrate_threshold(normal, "mean_std", k=3) == pytest.approx(3.0, abs=0.03)
    assert calibrate_threshold(normal, "percentile", percentile=99) == pytest.approx(2.326, abs=0.03)


def test_threshold_best_f1_known_answer():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1])
    t = calibrate_threshold(scores, "best_f1", labels=labels)
    assert t == pytest.approx(0.55)
    # Overlap: the best cut keeps both anomalies and one false positive (F1 0.8).
    scores = np.array([0.1, 0.2, 0.7, 0.6, 0.9])
    t = calibrate_threshold(scores, "best_f1", labels=np.array([0, 0, 0, 1, 1]))
    assert t == pytest.approx(0.4)  # midway between 0.6 (the lower anomaly) and 0.2 (the next score below)
    assert ((scores > t) == np.array([0, 0, 1, 1, 1], bool)).all()


def test_threshold_best_f1_without_anomalies_warns_and_falls_back():
    scores = np.arange(101, dtype=float)
    with pytest.warns(UserWarning, match="falling back to the 99th percentile"):
        t = calibrate_threshold(scores, "best_f1")
    assert t == pytest.approx(99.0)
    with pytest.warns(UserWarning, match="none were given"):
        calibrate_threshold(scores, "best_f1", labels=np.zeros(101, int))


def test_threshold_bad_input():
    with pytest.raises(UserError, match="method"):
        calibrate_threshold(np.ones(3), "otsu")
    with pytest.raises(UserError, match="percentile"):
        calibrate_threshold(np.ones(3), percentile=150)
    with pytest.raises(UserError, match="finite"):
        calibrate_threshold(np.array([]))


def test_detection_metrics_known_answer():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = detection_metrics(y, s, 0.55, test_labels=labels, class_names=["a", "b", "c"])
    assert m["auroc"] == pytest.approx(15 / 16)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["fpr"] == pytest.approx(1 / 4)
    per = {r["name"]: r for r in m["per_class"]}
    assert per["a"]["anomalous"] is False and per["a"]["flagged"] == pytest.approx(0.25)
    assert per["b"]["flagged"] == pytest.approx(0.5)
    assert per["c"]["flagged"] == pytest.approx(1.0)


def test_pca_baseline_on_synthetic_data():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((3, 64))
    normal = rng.standard_normal((500, 3)) @ basis + 0.01 * rng.standard_normal((500, 64))
    anomalies = rng.standard_normal((100, 64))
    det = PCABaseline()
    with pytest.raises(NotFittedError, match="Call 'fit'"):
        det.decision_function(normal)
    assert det.fit(normal[:400], normal[400:]) is det
    assert det.n_components_ <= 3
    s_norm, s_anom = det.decision_function(normal[400:]), det.decision_function(anomalies)
    assert s_anom.min() > s_norm.max()
    assert det.predict(anomalies).mean() == 1.0
    assert det.predict(normal[400:]).mean() <= 0.05
    assert det.threshold_ == pytest.approx(np.percentile(s_norm, 99))


def test_knn_baseline_is_the_distance_to_the_kth_neighbour():
    from training.baselines import KNNBaseline

    train = np.arange(10, dtype=np.float64).reshape(10, 1)  # points 0..9 on a line
    det = KNNBaseline(n_neighbors=5).fit(train, np.array([[4.5]]))
    # From 20 the 5th nearest training point is 5: distance 15; from 4.5 it is 2 or 7: 2.5.
    np.testing.assert_allclose(det.decision_function(np.array([[20.0], [4.5]])), [15.0, 2.5])
    assert det.threshold_ == pytest.approx(2.5) and det.predict(np.array([[20.0]]))[0] == 1
    assert det.reconstruct(np.array([[20.0]])).shape == (1, 1)
    with pytest.raises(NotFittedError):
        KNNBaseline().decision_function(train)
    # One "not fitted" error for every detector of the project, caught as scikit-learn's is (ValueError, AttributeError).
    from training import AutoencoderDetector

    with pytest.raises(NotFittedError) as err:
        AutoencoderDetector(model="dense_ae").decision_function(train)
    assert isinstance(err.value, (ValueError, AttributeError)) and isinstance(err.value, UserError)
    with pytest.raises(UserError, match="n_neighbors"):
        KNNBaseline(n_neighbors=10).fit(train)


def test_recall_at_fpr_uses_validation_thresholds():
    from training.metrics import recall_at_fpr

    val = np.arange(100, dtype=float)  # thresholds: the 99th and 95th percentiles, 98.01 and 94.05
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([10.0, 96.0, 99.0, 97.0, 50.0])
    r = recall_at_fpr(y, s, val)
    assert r["0.01"]["recall"] == pytest.approx(1 / 3) and r["0.05"]["recall"] == pytest.approx(2 / 3)
    assert r["0.05"]["test_fpr"] == pytest.approx(0.5)


def test_metrics_of_one_class_only_are_null_with_a_reason():
    import json

    m = detection_metrics(np.zeros(4), np.arange(4.0), 1.5)
    assert m["auroc"] is None and "only normal" in m["undefined_because"]
    json.dumps(m, allow_nan=False)  # valid JSON: no NaN token


def test_device_reductions_of_every_kind():
    from edge.scoring import SCORE_KINDS, compute

    from training.scores import score_kinds

    assert set(SCORE_KINDS) == set(score_kinds())  # every training kind has its device reduction, and no more
    x = np.zeros((2, 8, 8, 1))
    rec = np.full((2, 8, 8, 1), 0.5)
    np.testing.assert_allclose(compute("mse", x, {"reconstruction": rec}), [0.25, 0.25])
    # ELBO at z_mean = 0, log variance 0: KL is 0, so the score is the sum of squares / D.
    out = {"reconstruction": rec, "z_mean": np.zeros((2, 3)), "z_log_var": np.zeros((2, 3))}
    np.testing.assert_allclose(compute("elbo", x, out), [0.25, 0.25])
    np.testing.assert_allclose(compute("nap", x, {"whitened": np.array([[3.0, 4.0], [0.0, 1.0]])}), [25.0, 1.0])
    with pytest.raises(UserError, match="needs the model outputs"):
        compute("nap", x, {"reconstruction": rec})
    with pytest.raises(UserError, match="unknown score kind"):
        compute("psnr", x, {"reconstruction": rec})


def test_nap_whitening_of_features_that_never_vary_is_finite():
    """An int8 model can round every feature to one value on the normal data: the head still fits, and a feature
    that moves then scores high instead of crashing the export (LinAlgError on ACSF1 class 8, conv1d_vae)."""
    from sklearn.covariance import LedoitWolf

    from training.scores import VARIANCE_FLOOR, make_score

    nap = make_score("nap")
    nap.state_ = {}
    nap.fit_head(np.zeros((50, 4)))
    w = nap.state_["whiten"]
    assert np.all(np.isfinite(w)) and np.allclose(w, np.eye(4) / np.sqrt(VARIANCE_FLOOR), rtol=1e-4)
    healthy = np.random.default_rng(0).standard_normal((200, 4))
    before = np.linalg.cholesky(np.linalg.inv(LedoitWolf().fit(healthy).covariance_))
    np.testing.assert_allclose(nap.fit_head(healthy).state_["whiten"], before, rtol=1e-5)  # no floor when not needed
