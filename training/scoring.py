"""One scoring interface for every zoo variant (and for the detectors it is compared with)."""

from __future__ import annotations

import numpy as np

from edge.scoring import SCORE_KINDS, score_reconstruction
from zoo.errors import UserError

KINDS = SCORE_KINDS + ("elbo",)


def reconstruct(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Return the reconstructions of ``x`` (inference mode: no corruption, VAE mean path)."""
    if hasattr(model, "decision_function"):  # a detector (edge.Detector, PCABaseline), not a Keras model
        return np.asarray(model.reconstruct(x))
    return np.asarray(model.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0))


def score(model, x: np.ndarray, kind: str = "mse", *, batch_size: int = 256) -> np.ndarray:
    """Return one anomaly score per image; higher = more anomalous.

    Args:
        model: a zoo autoencoder (``keras.Model``), or any detector with a
            ``decision_function`` (``PCABaseline``, ``edge.Detector``), whose own
            score is returned (``kind`` is then ignored).
        x: images, float32 NHWC in [0, 1].
        kind: "mse", "mae", "ssim" (reconstruction scores computed by
            :func:`edge.scoring.score_reconstruction`, as on the device) or
            "elbo" (the negative ELBO; variational models only). Defaults to "mse".
        batch_size: images per inference batch. Defaults to 256.

    Returns:
        float64 array of shape (N,).
    """
    if kind not in KINDS:
        raise UserError(f"score kind must be one of {', '.join(KINDS)}. Received: kind={kind!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(x), dtype=np.float64)
    if kind == "elbo":
        import zoo

        if not zoo.is_variational(model):
            raise UserError(
                f"the 'elbo' score needs a variational model (with z_mean/z_log_var layers). Received: model {model.name!r}"
            )
        x = np.asarray(x, np.float32)
        parts = [np.asarray(zoo.negative_elbo(model, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float64).reshape(len(x))
    return score_reconstruction(x, reconstruct(model, x, batch_size=batch_size), kind)
