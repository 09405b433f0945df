"""PCA reconstruction-error baseline with the detector interface of scikit-learn and PyOD."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from edge.scoring import calibrate_threshold
from zoo.errors import UserError


class PCABaseline:
    """Anomaly detector: reconstruction error of the images through a PCA of normal images.

    The protocol's baseline: components explaining 90% of the normal training
    variance; the score is the mean squared error per image (the autoencoders'
    default score, on the same scale).

    Args:
        variance: fraction of the training variance the components explain. Defaults to 0.9.
        threshold_method: "percentile", "mean_std" or "best_f1" (see
            :func:`edge.scoring.calibrate_threshold`). Defaults to "percentile".
        percentile: for "percentile". Defaults to 99.0.
        k: for "mean_std". Defaults to 3.0.
    """

    def __init__(self, variance: float = 0.9, threshold_method: str = "percentile", percentile: float = 99.0, k: float = 3.0):
        self.variance = variance
        self.threshold_method = threshold_method
        self.percentile = percentile
        self.k = k

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> "PCABaseline":
        """Fit the PCA on normal images ``x`` and calibrate ``threshold_``.

        The threshold is calibrated on ``x_val`` (normal validation images) when
        given, otherwise on the training scores.
        """
        if not 0.0 < float(self.variance) <= 1.0:
            raise UserError(f"variance must be in (0, 1]. Received: variance={self.variance}")
        flat = self._flat(x)
        if len(flat) < 2:
            raise UserError(f"PCA needs at least 2 training images. Received: {len(flat)}")
        n = self.variance if self.variance < 1.0 else min(flat.shape)
        # With far more images than pixels, the eigendecomposition of the covariance matrix gives the same
        # components as a full SVD about ten times faster.
        solver = "covariance_eigh" if flat.shape[0] >= 2 * flat.shape[1] else "full"
        self.pca_ = PCA(n_components=n, svd_solver=solver).fit(flat)
        self.n_components_ = int(self.pca_.n_components_)
        self.input_shape_ = tuple(np.shape(x)[1:])
        self.decision_scores_ = self.decision_function(x)
        calib = self.decision_scores_ if x_val is None else self.decision_function(x_val)
        self.threshold_ = calibrate_threshold(calib, self.threshold_method, percentile=self.percentile, k=self.k)
        return self

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Return the PCA reconstructions of ``x``, same shape as ``x``."""
        self._check_fitted()
        flat = self._flat(x)
        return self.pca_.inverse_transform(self.pca_.transform(flat)).reshape(np.shape(x))

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Return one anomaly score per image (mean squared reconstruction error)."""
        self._check_fitted()
        flat = self._flat(x)
        rec = self.pca_.inverse_transform(self.pca_.transform(flat))
        return np.mean(np.square(flat - rec), axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return 1 for images scored above ``threshold_`` (anomalies), else 0."""
        self._check_fitted()
        return (self.decision_function(x) > self.threshold_).astype(int)

    def _check_fitted(self) -> None:
        if not hasattr(self, "pca_"):
            raise NotFittedError(
                "This PCABaseline instance is not fitted yet. Call 'fit' with normal training images before using this detector."
            )

    @staticmethod
    def _flat(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2:
            raise UserError(f"expected a batch of images with shape (N, ...). Received: shape={x.shape}")
        return x.reshape(len(x), -1)
