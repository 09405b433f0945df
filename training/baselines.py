"""The classical baselines of docs/PROTOCOL.md, with the detector interface of scikit-learn and PyOD.

- :class:`PCABaseline`: reconstruction error through the components explaining 90%
  of the normal training variance;
- :class:`KNNBaseline`: distance to the 5th nearest normal training image (PyOD's
  KNN default, scikit-learn's ``NearestNeighbors``) on raw pixels;
- for series, on the same standardized windows: :class:`IsolationForestBaseline`
  (200 trees) and, for recordings, :class:`MatrixProfileBaseline` (the discord of the
  UCR anomaly archive: each window's z-normalized distance to its nearest neighbour in
  the normal training recording, an AB-join with ``stumpy``).

All: ``fit(x_train, x_val) -> self`` (threshold calibrated on the normal ``x_val``),
``decision_function``, ``predict``, ``threshold_``; PCA and kNN also ``reconstruct``.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from edge.threshold import threshold_record
from zoo.errors import NotFittedError, UserError


class _Baseline:
    """Shared by the baselines: flattening, the threshold, ``predict`` and the not-fitted error."""

    def __init__(self, threshold_method: str = "percentile", percentile: float = 99.0, k: float = 3.0):
        self.threshold_method = threshold_method
        self.percentile = percentile
        self.k = k

    def _calibrate(self, x: np.ndarray, x_val: np.ndarray | None) -> None:
        self.decision_scores_ = self.decision_function(x)
        calib = self.decision_scores_ if x_val is None or not len(x_val) else self.decision_function(x_val)
        self.threshold_record_ = threshold_record(calib, method=self.threshold_method, percentile=self.percentile, k=self.k,
                                                  calibrated_on="normal validation images" if x_val is not None else "training images")
        self.threshold_ = self.threshold_record_["value"]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return 1 for inputs scored above ``threshold_`` (anomalies), else 0."""
        return (self.decision_function(x) > self.threshold_).astype(np.int64)

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with normal training "
                                 "images before using this detector.")

    @staticmethod
    def _flat(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2:
            raise UserError(f"expected a batch with shape (N, ...). Received: shape={x.shape}")
        return x.reshape(len(x), -1)


class PCABaseline(_Baseline):
    """Anomaly detector: reconstruction error of the inputs through a PCA of normal inputs.

    Args:
        variance: fraction of the training variance the components explain. Defaults to 0.9.
        threshold_method, percentile, k: see ``edge.threshold.calibrate_threshold``.
    """

    name = "PCA"
    score_kind = "pca_mse"

    def __init__(self, variance: float = 0.9, threshold_method: str = "percentile", percentile: float = 99.0, k: float = 3.0):
        super().__init__(threshold_method, percentile, k)
        self.variance = variance

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "PCABaseline":
        """Fit the PCA on normal inputs ``x`` and calibrate ``threshold_`` on ``x_val`` (else on ``x``)."""
        if not 0.0 < float(self.variance) <= 1.0:
            raise UserError(f"variance must be in (0, 1]. Received: variance={self.variance}")
        flat = self._flat(x)
        if len(flat) < 2:
            raise UserError(f"PCA needs at least 2 training inputs. Received: {len(flat)}")
        n = self.variance if self.variance < 1.0 else min(flat.shape)
        # With far more images than pixels, the covariance eigendecomposition gives the same components as a
        # full SVD about ten times faster.
        solver = "covariance_eigh" if flat.shape[0] >= 2 * flat.shape[1] else "full"
        self.pca_ = PCA(n_components=n, svd_solver=solver).fit(flat)
        self.n_components_ = int(self.pca_.n_components_)
        self._calibrate(x, x_val)
        return self

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Return the PCA reconstructions of ``x``, same shape as ``x``."""
        self._check_fitted("pca_")
        flat = self._flat(x)
        return self.pca_.inverse_transform(self.pca_.transform(flat)).reshape(np.shape(x))

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Return one anomaly score per input (mean squared reconstruction error)."""
        self._check_fitted("pca_")
        flat = self._flat(x)
        rec = self.pca_.inverse_transform(self.pca_.transform(flat))
        return np.mean(np.square(flat - rec), axis=1)


class KNNBaseline(_Baseline):
    """Anomaly detector: Euclidean distance to the ``n_neighbors``-th nearest normal training input.

    Args:
        n_neighbors: which neighbour's distance is the score. Defaults to 5 (PyOD's KNN default).
        threshold_method, percentile, k: see ``edge.threshold.calibrate_threshold``.
    """

    name = "kNN"
    score_kind = "knn_distance"

    def __init__(self, n_neighbors: int = 5, threshold_method: str = "percentile", percentile: float = 99.0, k: float = 3.0):
        super().__init__(threshold_method, percentile, k)
        self.n_neighbors = n_neighbors

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "KNNBaseline":
        """Index normal inputs ``x`` and calibrate ``threshold_`` on ``x_val`` (else on ``x``, leaving each point out)."""
        flat = self._flat(x).astype(np.float32)
        if not isinstance(self.n_neighbors, int) or not 1 <= self.n_neighbors < len(flat):
            raise UserError(f"n_neighbors must be an integer in 1..{len(flat) - 1}. Received: n_neighbors={self.n_neighbors!r}")
        self.train_ = flat
        self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors).fit(flat)
        self.n_features_ = flat.shape[1]
        if x_val is None or not len(x_val):
            # On its own training points the nearest neighbour is the point itself: ask for one more.
            dist, _ = self.nn_.kneighbors(flat, n_neighbors=self.n_neighbors + 1)
            self.decision_scores_ = dist[:, -1]
            self.threshold_record_ = threshold_record(self.decision_scores_, method=self.threshold_method,
                                                      percentile=self.percentile, k=self.k, calibrated_on="training images")
            self.threshold_ = self.threshold_record_["value"]
        else:
            self._calibrate(x, x_val)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Return the distance of each input to its ``n_neighbors``-th nearest normal training input."""
        self._check_fitted("nn_")
        dist, _ = self.nn_.kneighbors(self._flat(x).astype(np.float32))
        return dist[:, -1].astype(np.float64)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Return the mean of each input's ``n_neighbors`` nearest normal training inputs, shaped like ``x``."""
        self._check_fitted("nn_")
        _, idx = self.nn_.kneighbors(self._flat(x).astype(np.float32))
        return self.train_[idx].mean(axis=1).reshape(np.shape(x))


class IsolationForestBaseline(_Baseline):
    """Anomaly detector: scikit-learn's IsolationForest (200 trees) on the flattened inputs; score = -score_samples.

    Args:
        n_estimators: trees. Defaults to 200 (docs/PROTOCOL.md). seed: the forest's random state. Defaults to 0.
        threshold_method, percentile, k: see ``edge.threshold.calibrate_threshold``.
    """

    name = "IsolationForest"
    score_kind = "iforest"

    def __init__(self, n_estimators: int = 200, seed: int = 0, threshold_method: str = "percentile",
                 percentile: float = 99.0, k: float = 3.0):
        super().__init__(threshold_method, percentile, k)
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "IsolationForestBaseline":
        """Grow the forest on normal inputs ``x``; calibrate ``threshold_`` on ``x_val`` (else on ``x``)."""
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed).fit(self._flat(x))
        self._calibrate(x, x_val)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Return one anomaly score per input (the negated IsolationForest normality)."""
        self._check_fitted("forest_")
        return -self.forest_.score_samples(self._flat(x))


def znorm_distances(queries: np.ndarray, reference: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """The smallest z-normalized Euclidean distance of each query (rows of ``queries`` [N, m]) to any length-m
    subsequence of ``reference`` [n]: MASS (Mueen's algorithm, FFT sliding dot products), as ``stumpy.mass`` defines it.

    A constant query or subsequence is at distance 0 from another constant one and sqrt(m) from anything else.
    """
    q = np.asarray(queries, np.float64)
    t = np.asarray(reference, np.float64)
    m, n = q.shape[1], len(t)
    size = 1 << int(np.ceil(np.log2(n + m)))
    ft = np.fft.rfft(t, size)
    csum, csum2 = np.concatenate([[0.0], np.cumsum(t)]), np.concatenate([[0.0], np.cumsum(t * t)])
    mu_t = (csum[m:] - csum[:-m]) / m
    sd_t = np.sqrt(np.maximum((csum2[m:] - csum2[:-m]) / m - mu_t**2, 0.0))
    flat_t = sd_t < 1e-8 * max(1.0, float(np.abs(t).max(initial=0.0)))
    out = np.empty(len(q))
    for a in range(0, len(q), chunk):
        part = q[a : a + chunk]
        mu_q, sd_q = part.mean(axis=1, keepdims=True), part.std(axis=1, keepdims=True)
        dots = np.fft.irfft(np.fft.rfft(part[:, ::-1], size, axis=1) * ft, size, axis=1)[:, m - 1 : n]
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = (dots - m * mu_q * mu_t) / (m * sd_q * sd_t)
        d2 = 2.0 * m * (1.0 - np.clip(corr, -1.0, 1.0))
        flat_q = sd_q < 1e-8 * np.maximum(1.0, np.abs(part).max(axis=1, keepdims=True))
        d2 = np.where(flat_q | flat_t, np.where(flat_q & flat_t, 0.0, float(m)), d2)
        out[a : a + chunk] = np.sqrt(d2.min(axis=1))
    return out


class MatrixProfileBaseline(_Baseline):
    """Anomaly detector for recordings: the matrix-profile discord, an AB-join against a normal recording.

    A window's score is its z-normalized Euclidean distance to the nearest subsequence of
    the same length in ``reference``, summed over channels: the reference method of the
    UCR anomaly archive, on the detector's own windows. The distances are MASS in numpy
    (:func:`znorm_distances`; a test checks them against ``stumpy.mass``), which spares a
    process stumpy's 15 s of import and JIT compilation.

    Args:
        reference: the normal training recording [T, C], standardized as the windows are.
        threshold_method, percentile, k: see ``edge.threshold.calibrate_threshold``.
    """

    name = "matrix profile"
    score_kind = "mp_discord"

    def __init__(self, reference: np.ndarray, threshold_method: str = "percentile", percentile: float = 99.0, k: float = 3.0):
        super().__init__(threshold_method, percentile, k)
        self.reference = np.asarray(reference, np.float64)

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "MatrixProfileBaseline":
        """Calibrate ``threshold_`` on ``x_val``: the training windows are part of the reference (their distance is 0)."""
        if len(self.reference) < np.shape(x)[1]:
            raise UserError(f"the matrix profile needs a reference recording of at least one window ({np.shape(x)[1]}). "
                            f"Received: {len(self.reference)} samples")
        self.fitted_ = True
        self._calibrate(x[:0] if x_val is not None and len(x_val) else x, x_val)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Return each window's z-normalized distance to its nearest neighbour in the reference, summed over channels."""
        self._check_fitted("fitted_")
        x = np.asarray(x, np.float64)
        if not len(x):
            return np.empty(0)
        return sum(znorm_distances(x[:, :, c], self.reference[:, c]) for c in range(x.shape[2]))


def fit_baselines(x_train: np.ndarray, x_val: np.ndarray, units: object = None, **threshold: object) -> dict[str, _Baseline]:
    """The baselines of every report, fitted on the same normal data, by name: PCA and kNN; for series (``units``
    given) IsolationForest too; for recordings the matrix profile too (``units.reference``)."""
    out = {"pca": PCABaseline(**threshold).fit(x_train, x_val), "knn": KNNBaseline(**threshold).fit(x_train, x_val)}
    if units is not None:
        out["iforest"] = IsolationForestBaseline(**threshold).fit(x_train, x_val)
        if getattr(units, "reference", None) is not None:
            out["matrix_profile"] = MatrixProfileBaseline(units.reference, **threshold).fit(x_train, x_val)
    return out
