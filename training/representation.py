"""Beyond detection: embeddings, a linear probe and int8 latent compression, each beside PCA of the same size.

A zoo autoencoder trained on every class (``aezoo train --all-classes-one-model``)
is an encoder/decoder pair. Its codes are embeddings (:func:`embed`); a linear
classifier on them measures what it learned without labels (:func:`linear_probe`);
its int8-quantized code is a compressed image (:func:`compression_report`). PCA
with as many components is the linear baseline of all three (:class:`PCACodec`)::

    split = training.all_classes_split("fashion_mnist")
    model = training.train(model="conv_ae", all_classes=True, epochs=10, out="runs/ae").model
    evaluate_codec(ModelCodec(model), split)          # reconstruction, probe, compression
    evaluate_codec(PCACodec(16).fit(split.x_train), split)

Definitions used by every number here:

- PSNR: per image, ``10 log10(1 / MSE)`` (pixels in [0, 1]), then averaged over images.
- SSIM: :func:`edge.scoring.ssim` (7x7 uniform window), averaged over images.
- Compressed code: each code dimension is mapped to int8 by an affine map fitted on
  the codes of the training split (offset = minimum, scale = range / 255; values
  outside that range are clipped). Bytes per image = ``latent_dim`` (one int8 per
  dimension) + the quantizer's ``8 * latent_dim`` bytes (float32 offset and scale
  per dimension) amortized over the images compressed together (the test split).
  The raw image is one byte per pixel value (784 for Fashion-MNIST).
- PCA reconstructions are clipped to [0, 1], like the autoencoders' sigmoid outputs.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import zoo
from training import runs
from zoo.errors import UserError
from zoo.files import atomic_path

# A perfect reconstruction has infinite PSNR; this floor caps one image at 100 dB.
_MSE_FLOOR = 1e-10
# The quantizer stores a float32 offset and a float32 scale per code dimension.
PARAM_BYTES_PER_DIM = 8
PROBE_MAX_ITER = 1000


# ---------------------------------------------------------------- quality
def psnr(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Per-image peak signal-to-noise ratio in dB for pixels in [0, 1], shape (N,)."""
    from edge.scoring import score_reconstruction

    mse = score_reconstruction(x, x_hat, "mse")
    return 10.0 * np.log10(1.0 / np.maximum(mse, _MSE_FLOOR))


def reconstruction_quality(x: np.ndarray, x_hat: np.ndarray) -> dict:
    """Mean per-image MSE, PSNR (dB) and SSIM of reconstructions ``x_hat`` of images ``x``."""
    from edge.scoring import score_reconstruction, ssim

    return {
        "mse": float(score_reconstruction(x, x_hat, "mse").mean()),
        "psnr": float(psnr(x, x_hat).mean()),
        "ssim": float(ssim(x, x_hat).mean()),
    }


# ---------------------------------------------------------------- codecs
def load_model_target(target: str | os.PathLike) -> Any:
    """Load a zoo model from a run folder (its model.keras) or a .keras file."""
    path = Path(target)
    if path.is_dir():
        if not (path / runs.MODEL).is_file():
            raise UserError(f"Expected a run folder holding {runs.MODEL}, or a .keras file. Received: {str(target)!r}")
        path = path / runs.MODEL
    elif not path.is_file():
        raise UserError(f"Expected a run folder or a .keras file; nothing exists there. Received: {str(target)!r}")
    return zoo.load_model(path)


def _check_images(model: Any, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    want = tuple(model.inputs[0].shape[1:])
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise UserError(f"Model {model.name!r} expects images of shape {want}. Received: images of shape {x.shape[1:]}")
    return x


def embed(model: Any, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Return the latent codes of images ``x``: float32 (N, latent_dim) from ``zoo.encoder`` (VAE: z_mean).

    Deterministic: inference mode (no corruption, no sampling).
    """
    x = _check_images(model, x)
    return np.asarray(zoo.encoder(model).predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


class ModelCodec:
    """An autoencoder as encode (``zoo.encoder``) and decode (``zoo.decoder``)."""

    def __init__(self, model: Any, *, batch_size: int = 256, name: str | None = None):
        self.model = model
        self.batch_size = batch_size
        self.name = name or model.name
        self._encoder = zoo.encoder(model)
        self._decoder = zoo.decoder(model)
        self.latent_dim = int(self._encoder.outputs[0].shape[-1])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Images -> float32 codes (N, latent_dim)."""
        x = _check_images(self.model, x)
        return np.asarray(self._encoder.predict(x, batch_size=self.batch_size, verbose=0), dtype=np.float32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes -> images in [0, 1]."""
        return np.asarray(self._decoder.predict(np.asarray(codes, np.float32), batch_size=self.batch_size, verbose=0))


class PCACodec:
    """PCA with ``n_components`` components as an encoder/decoder: the linear baseline at the same code size.

    Args:
        n_components: the code size.
        seed: random state of the PCA solver. Defaults to 0.
    """

    def __init__(self, n_components: int, *, seed: int = 0):
        self.n_components = n_components
        self.seed = seed
        self.latent_dim = n_components
        self.name = f"PCA-{n_components}"

    def fit(self, x: np.ndarray) -> "PCACodec":
        """Fit the components on images ``x`` (N, ...)."""
        from sklearn.decomposition import PCA

        flat = np.asarray(x, np.float32).reshape(len(x), -1)
        if not isinstance(self.n_components, int) or not 1 <= self.n_components <= min(flat.shape):
            raise UserError(f"n_components must be an integer in 1..{min(flat.shape)}. Received: n_components={self.n_components!r}")
        self.pca_ = PCA(n_components=self.n_components, svd_solver="randomized", random_state=self.seed).fit(flat)
        self.input_shape_ = tuple(np.shape(x)[1:])
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Images -> float32 PCA coefficients (N, n_components)."""
        return self.pca_.transform(np.asarray(x, np.float32).reshape(len(x), -1)).astype(np.float32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Coefficients -> images clipped to [0, 1]."""
        flat = self.pca_.inverse_transform(np.asarray(codes, np.float32))
        return np.clip(flat, 0.0, 1.0).reshape(len(flat), *self.input_shape_).astype(np.float32)


class Int8CodeQuantizer:
    """Per-dimension affine int8 quantization of codes: ``q = round((c - offset) / scale) - 128``.

    ``fit`` takes the offset (minimum) and scale (range / 255) of each dimension
    from training codes; codes outside that range are clipped to -128..127.
    """

    def fit(self, codes: np.ndarray) -> "Int8CodeQuantizer":
        """Fit offset_ and scale_ (float32, one per dimension) on codes (N, d)."""
        codes = np.asarray(codes, np.float32)
        if codes.ndim != 2 or len(codes) == 0:
            raise UserError(f"Expected codes of shape (N, latent_dim). Received: shape={codes.shape}")
        low, high = codes.min(axis=0), codes.max(axis=0)
        self.offset_ = low.astype(np.float32)
        # A constant dimension (e.g. a dead sparse unit) gets scale 1 so it still round-trips exactly.
        self.scale_ = np.where(high > low, (high - low) / 255.0, 1.0).astype(np.float32)
        return self

    @property
    def param_bytes(self) -> int:
        """Bytes of the quantizer's parameters (float32 offset + scale per dimension)."""
        return PARAM_BYTES_PER_DIM * len(self.scale_)

    def quantize(self, codes: np.ndarray) -> np.ndarray:
        """Float codes -> int8 codes."""
        q = np.round((np.asarray(codes, np.float32) - self.offset_) / self.scale_) - 128.0
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """int8 codes -> float32 codes."""
        return ((np.asarray(q, np.float32) + 128.0) * self.scale_ + self.offset_).astype(np.float32)


def roundtrip(codec: Any, quantizer: Int8CodeQuantizer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress and decompress images: encode -> int8 codes -> dequantize -> decode.

    Returns:
        (int8 codes (N, latent_dim), decoded images shaped like ``x``).
    """
    q = quantizer.quantize(codec.encode(x))
    return q, codec.decode(quantizer.dequantize(q))


def compression_report(codec: Any, train_codes: np.ndarray, x: np.ndarray) -> dict:
    """Compress images ``x`` to int8 codes (quantizer fitted on ``train_codes``) and measure the decoded images.

    Returns:
        ``latent_dim``, ``code_bytes`` (= latent_dim), ``param_bytes`` (= 8 * latent_dim),
        ``n_images``, ``bytes_per_image`` (= code_bytes + param_bytes / n_images),
        ``raw_bytes_per_image``, ``ratio`` (raw / compressed), ``mse``/``psnr``/``ssim`` of
        the decoded images, ``float_psnr`` (the same codes without quantization) and
        ``clipped_fraction`` (code values outside the training range).
    """
    quantizer = Int8CodeQuantizer().fit(train_codes)
    codes = codec.encode(x)
    q = quantizer.quantize(codes)
    x_hat = codec.decode(quantizer.dequantize(q))
    n, d = q.shape
    raw = math.prod(np.shape(x)[1:])
    per_image = d + quantizer.param_bytes / n
    outside = (codes < quantizer.offset_) | (codes > quantizer.offset_ + 255.0 * quantizer.scale_)
    return {
        "latent_dim": int(d), "code_bytes": int(q.itemsize * d), "param_bytes": quantizer.param_bytes, "n_images": int(n),
        "bytes_per_image": float(per_image), "raw_bytes_per_image": int(raw), "ratio": float(raw / per_image),
        **reconstruction_quality(x, x_hat),
        "float_psnr": float(psnr(x, codec.decode(codes)).mean()),
        "clipped_fraction": float(outside.mean()),
    }


# ---------------------------------------------------------------- linear probe
def linear_probe(
    train_codes: np.ndarray,
    train_labels: np.ndarray,
    test_codes: np.ndarray,
    test_labels: np.ndarray,
    *,
    max_iter: int = PROBE_MAX_ITER,
) -> dict:
    """Fit a logistic regression on standardized codes; return its test accuracy.

    Args:
        train_codes, train_labels: features (N, d) and class ids to fit on.
        test_codes, test_labels: where the accuracy is measured.
        max_iter: L-BFGS iterations. Defaults to 1000.

    Returns:
        ``{"accuracy", "n_train", "n_test", "dim", "iterations", "converged", "seconds"}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_codes = np.asarray(train_codes, np.float32).reshape(len(train_codes), -1)
    test_codes = np.asarray(test_codes, np.float32).reshape(len(test_codes), -1)
    if len(train_codes) != len(train_labels) or len(test_codes) != len(test_labels):
        raise UserError(f"Expected one label per code. Received: {len(train_codes)} train codes, {len(train_labels)} labels; "
                        f"{len(test_codes)} test codes, {len(test_labels)} labels")
    t0 = time.perf_counter()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(train_codes, train_labels)
    accuracy = float(np.mean(clf.predict(test_codes) == np.asarray(test_labels)))
    return {
        "accuracy": accuracy, "n_train": int(len(train_codes)), "n_test": int(len(test_codes)), "dim": int(train_codes.shape[1]),
        "iterations": int(np.max(clf[-1].n_iter_)),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------- one codec, everything
def evaluate_codec(codec: Any, split: Any, *, probe: bool = True, probe_max_iter: int = PROBE_MAX_ITER) -> dict:
    """Reconstruction quality, linear-probe accuracy and int8 compression of one codec on ``split``.

    The quantizer and the probe are fitted on the codes of the whole train split;
    everything is measured on the test split.
    """
    train_codes = codec.encode(split.x_train_all)
    test_codes = codec.encode(split.x_test)
    result = {"name": codec.name, "latent_dim": int(codec.latent_dim),
              "reconstruction": reconstruction_quality(split.x_test, codec.decode(test_codes))}
    if probe:
        result["probe"] = linear_probe(train_codes, split.train_all_labels, test_codes, split.test_labels, max_iter=probe_max_iter)
    result["compression"] = compression_report(codec, train_codes, split.x_test)
    return result


def raw_pixel_probe(split: Any, *, max_iter: int = PROBE_MAX_ITER) -> dict:
    """The linear probe on raw pixels: the no-representation baseline."""
    return linear_probe(split.x_train_all, split.train_all_labels, split.x_test, split.test_labels, max_iter=max_iter)


# ---------------------------------------------------------------- embed CLI helper
def embed_target(target: str | os.PathLike, *, dataset: str | None = None, split: str = "test", data_dir: str | None = None,
                 out: str | os.PathLike | None = None, plot: str | os.PathLike | None = None, tsne: bool = False,
                 tsne_samples: int = 2000, seed: int = 0, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Encode a dataset split with a run folder's or .keras file's encoder; optionally save codes and a latent plot.

    Args:
        target: run folder or .keras file.
        dataset: defaults to the run's dataset (config.json), else "fashion_mnist".
        split: dataset split to encode. Defaults to "test".
        out: .npy file for the codes (float32, N x latent_dim, in dataset order).
        plot: PNG of the codes in 2-D colored by class (PCA of the codes; t-SNE with ``tsne``).
        tsne: use t-SNE on ``tsne_samples`` evenly spaced images instead of PCA on all.

    Returns:
        (codes, labels).
    """
    from training import data
    from training import plots as _plots

    model = load_model_target(target)
    if dataset is None:
        dataset = runs.dataset_of(target)
    x, labels = data.load_split(dataset, split, data_dir=data_dir)
    codes = embed(model, x, batch_size=batch_size)
    if out is not None:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, codes)
    if plot is not None:
        if tsne:
            sel = np.linspace(0, len(codes) - 1, min(tsne_samples, len(codes))).astype(int)
            _plots.latent_space(plot, codes[sel], labels[sel], class_names=data.class_names(dataset), projection="tsne", seed=seed,
                                title=f"{model.name} codes: t-SNE of {len(sel)} {split} images, colored by class")
        else:
            _plots.latent_space(plot, codes, labels, class_names=data.class_names(dataset),
                                title=f"{model.name} codes: PCA of {len(codes)} {split} images, colored by class")
    return codes, labels
