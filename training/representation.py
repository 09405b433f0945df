"""Beyond detection: embeddings, a linear probe and int8 latent compression, each beside PCA of the same size.

A zoo autoencoder trained on every class (``aezoo train --all-classes-one-model``)
is an encoder/decoder pair. Its codes are embeddings (:func:`embed`); a linear
classifier on them measures what it learned without labels (:func:`linear_probe`);
its int8-quantized code is a compressed image (:func:`compression_report`). PCA
with as many components is the linear baseline of all three (:class:`PCACodec`)::

    split = all_classes_split("fashion_mnist")
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

import dataclasses
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import UserError
from zoo.files import atomic_path, write_json, write_text

# A perfect reconstruction has infinite PSNR; this floor caps one image at 100 dB.
_MSE_FLOOR = 1e-10
# The quantizer stores a float32 offset and a float32 scale per code dimension.
PARAM_BYTES_PER_DIM = 8
PROBE_MAX_ITER = 1000


# ---------------------------------------------------------------- data
@dataclasses.dataclass
class AllClassesSplit:
    """Every class of a dataset, for models trained without labels.

    Attributes:
        dataset: dataset name or ImageFolder path.
        x_train, train_labels: the train split minus the validation hold-out (54,000 for Fashion-MNIST).
        x_val, val_labels: the hold-out: a fixed 10% of each class's train images (the
            same images the one-class protocol holds out for that class).
        x_test, test_labels: the whole test split.
        class_names: names indexed by class id.
    """

    dataset: str
    x_train: np.ndarray
    train_labels: np.ndarray
    x_val: np.ndarray
    val_labels: np.ndarray
    x_test: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]

    @property
    def x_train_all(self) -> np.ndarray:
        """The whole train split (train + hold-out), for the probe and the quantizer."""
        return np.concatenate([self.x_train, self.x_val])

    @property
    def train_all_labels(self) -> np.ndarray:
        """Labels of :attr:`x_train_all`."""
        return np.concatenate([self.train_labels, self.val_labels])


def all_classes_split(dataset: str = "fashion_mnist", *, data_dir: str | os.PathLike | None = None) -> AllClassesSplit:
    """Return the train split of every class with a deterministic 10% validation hold-out, and the test split.

    The hold-out is the union of :func:`training.data.holdout_indices` over the
    classes: stratified, fixed by the data layer's constant seed, identical every run.
    """
    from training import data

    names = data.class_names(dataset)
    x, labels = data.load_split(dataset, "train", data_dir=data_dir)
    x_test, test_labels = data.load_split(dataset, "test", data_dir=data_dir)
    val_idx = np.sort(np.concatenate([data.holdout_indices(labels, int(k))[1] for k in np.unique(labels)]))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return AllClassesSplit(
        dataset=os.fspath(dataset), x_train=x[train_idx], train_labels=labels[train_idx], x_val=x[val_idx],
        val_labels=labels[val_idx], x_test=x_test, test_labels=test_labels, class_names=names,
    )


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
    import zoo

    path = Path(target)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise UserError(f"Expected a run folder holding model.keras, or a .keras file. Received: {str(target)!r}")
        path = path / "model.keras"
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
    import zoo

    x = _check_images(model, x)
    return np.asarray(zoo.encoder(model).predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


class ModelCodec:
    """An autoencoder as encode (``zoo.encoder``) and decode (``zoo.decoder``)."""

    def __init__(self, model: Any, *, batch_size: int = 256, name: str | None = None):
        import zoo

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
def evaluate_codec(codec: Any, split: AllClassesSplit, *, probe: bool = True, probe_max_iter: int = PROBE_MAX_ITER) -> dict:
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


def raw_pixel_probe(split: AllClassesSplit, *, max_iter: int = PROBE_MAX_ITER) -> dict:
    """The linear probe on raw pixels: the no-representation baseline."""
    return linear_probe(split.x_train_all, split.train_all_labels, split.x_test, split.test_labels, max_iter=max_iter)


# ---------------------------------------------------------------- the training run of an all-classes model
def reconstruction_report(model: Any, split: AllClassesSplit, *, out_dir: str | os.PathLike | None = None, plots: bool = True,
                          history: dict | None = None, label: str = "autoencoder") -> dict:
    """What ``training.train(all_classes=True)`` reports instead of anomaly metrics.

    Reconstruction MSE/PSNR/SSIM on the validation hold-out and the test split, with
    PCA of the same code size fitted on the same training images beside it. Plots:
    training curves, the latent space of test codes, and prior samples for a VAE.
    """
    import zoo

    codec = ModelCodec(model)
    pca = PCACodec(codec.latent_dim).fit(split.x_train)
    report = {
        "dataset": split.dataset, "all_classes": True, "detector": label, "latent_dim": codec.latent_dim,
        "model": {part: reconstruction_quality(x, codec.decode(codec.encode(x))) for part, x in (("val", split.x_val), ("test", split.x_test))},
        "pca": {part: reconstruction_quality(x, pca.decode(pca.encode(x))) for part, x in (("val", split.x_val), ("test", split.x_test))},
    }
    if out_dir is not None and plots:
        from training import generate, plots as _plots

        plot_dir = Path(out_dir) / "plots"
        what = f"{split.dataset}, all classes"
        if history:
            _plots.training_curves(plot_dir / "training_curves.png", history, best_epoch=history.get("best_epoch"), title=f"Training: {what}")
        sel = np.linspace(0, len(split.x_test) - 1, min(3000, len(split.x_test))).astype(int)
        _plots.latent_space(plot_dir / "latent_space.png", codec.encode(split.x_test[sel]), split.test_labels[sel],
                            class_names=split.class_names, title=f"{label} latent space (no labels used): {what}")
        if zoo.is_variational(model):
            generate.sample_grid(model, plot_dir / "samples.png", n=64, title=f"{label}: 64 draws from the prior")
    return report


def format_reconstruction_report(report: dict) -> str:
    """The all-classes report as a few lines of text."""
    lines = [f"{report['detector']} on {report['dataset']} (all classes, latent_dim {report['latent_dim']})"]
    for who in ("model", "pca"):
        name = report["detector"] if who == "model" else f"PCA, {report['latent_dim']} components"
        for part in ("val", "test"):
            q = report[who][part]
            lines.append(f"  {name:<28} {part:<4} MSE {q['mse']:.5f}  PSNR {q['psnr']:.2f} dB  SSIM {q['ssim']:.3f}")
    return "\n".join(lines)


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
        config = Path(target) / "config.json"
        dataset = json.loads(config.read_text()).get("dataset", "fashion_mnist") if config.is_file() else "fashion_mnist"
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


# ---------------------------------------------------------------- the benchmark
# Test-image pairs walked in the benchmark's interpolation grid: (class of A, class of B),
# each the first test image of its class.
WALK_CLASSES = ((0, 3), (9, 7), (2, 8), (1, 5))


def _finished(run_dir: Path) -> bool:
    state = run_dir / "checkpoints" / "state.json"
    return state.is_file() and json.loads(state.read_text()).get("finished", False)


def represent(
    variants: Sequence[str] | None = None,
    dims: Sequence[int] = (8, 32),
    *,
    epochs: int = 10,
    out: str | os.PathLike = "runs/represent",
    dataset: str = "fashion_mnist",
    data_dir: str | None = None,
    seed: int = 0,
    batch_size: int = 128,
    probe_max_iter: int = PROBE_MAX_ITER,
    raw_probe_max_iter: int = 300,
    raw_probe: bool = True,
    split: AllClassesSplit | None = None,
    verbose: int = 0,
) -> dict:
    """Benchmark the zoo beyond detection: train each variant on all classes at each code size, compare with PCA.

    For every (variant, dim): a run folder ``out/VARIANT-DIM`` (``training.train`` with
    ``all_classes=True``; a finished one is reused, an unfinished one resumed), then
    :func:`evaluate_codec`. PCA with ``dim`` components gets the same evaluation, and
    the raw pixels a linear probe (its result is cached in ``out/raw_probe.json``).
    Variational models also get a prior sample grid and an interpolation grid.

    ``split`` replaces the dataset's :func:`all_classes_split` (e.g. a subset for a
    quick check). Writes ``out/represent.json`` and ``out/represent.md``; returns the JSON content.
    """
    import zoo
    from tqdm.auto import tqdm

    from training import generate
    from training.fit import _machine, train

    variants = list(variants) if variants else zoo.list_models()
    for v in variants:
        zoo.model_info(v)  # an unknown name fails now, not after an hour of training
    dims = [int(d) for d in dims]
    out = Path(out)
    t_start = time.perf_counter()
    split = split if split is not None else all_classes_split(dataset, data_dir=data_dir)
    rows, images = [], {}
    raw = None
    if raw_probe:
        cache = out / "raw_probe.json"
        raw = json.loads(cache.read_text()) if cache.is_file() else None
        key = {"max_iter": raw_probe_max_iter, "dataset": dataset, "n_train": int(len(split.x_train) + len(split.x_val))}
        if raw is None or any(raw.get(k) != v for k, v in key.items()):
            raw = {**raw_pixel_probe(split, max_iter=raw_probe_max_iter), **key}
            write_json(cache, raw)
    jobs = [(v, d) for d in dims for v in [None, *variants]]  # None = PCA
    bar = tqdm(jobs, desc="beyond detection", unit="model")
    for variant, d in bar:
        bar.set_postfix_str(f"{variant or 'PCA'} dim {d}")
        if variant is None:
            t0 = time.perf_counter()
            row = evaluate_codec(PCACodec(d, seed=seed).fit(split.x_train), split, probe_max_iter=probe_max_iter)
            row.update(variant="PCA", fit_seconds=time.perf_counter() - t0)
            rows.append(row)
            continue
        run_dir = out / f"{variant}-{d}"
        if _finished(run_dir):
            model = zoo.load_model(run_dir / "model.keras")
        else:
            model = train(model=variant, params={"latent_dim": d}, all_classes=True, dataset=dataset, data_dir=data_dir,
                          epochs=epochs, seed=seed, batch_size=batch_size, out=run_dir, split=split, verbose=verbose,
                          resume=(run_dir / "config.json").is_file()).model
        training_info = json.loads((run_dir / "metrics.json").read_text())["training"]
        row = evaluate_codec(ModelCodec(model, name=f"{variant}-{d}"), split, probe_max_iter=probe_max_iter)
        row.update(variant=variant, run=str(run_dir), training=training_info)
        if zoo.is_variational(model):
            # Read from the saved model: the variant's default beta may have changed since it was trained.
            row["beta"] = float(model.get_layer("z").get_config()["beta"])
        rows.append(row)
        if zoo.is_variational(model):
            pairs = [(int(np.flatnonzero(split.test_labels == a)[0]), int(np.flatnonzero(split.test_labels == b)[0]))
                     for a, b in WALK_CLASSES if a < len(split.class_names) and b < len(split.class_names)]
            images[f"{variant}-{d}"] = {
                "samples": str(generate.sample_grid(model, out / f"samples_{variant}-{d}.png", n=64, seed=seed,
                                                    title=f"{variant}, latent_dim {d}: 64 draws from the prior N(0, I)")),
                "interpolation": str(generate.interpolation_grid(
                    model, out / f"walk_{variant}-{d}.png", split.x_test, pairs, steps=10, labels=split.test_labels,
                    class_names=split.class_names, title=f"{variant}, latent_dim {d}: walks between the z_means of two test images")),
            }
    result = {
        "dataset": dataset, "dims": dims, "variants": variants, "epochs": epochs, "seed": seed, "batch_size": batch_size,
        "probe_max_iter": probe_max_iter, "rows": rows, "raw_pixels_probe": raw, "images": images,
        "n_train": int(len(split.x_train)), "n_probe_train": int(len(split.x_train) + len(split.x_val)), "n_test": int(len(split.x_test)),
        "total_seconds": time.perf_counter() - t_start, "machine": _machine(),
    }
    write_json(out / "represent.json", result)
    write_text(out / "represent.md", represent_markdown(result))
    return result


def represent_markdown(result: dict) -> str:
    """The benchmark's table: per code (variant or PCA) and size, reconstruction, probe and compression."""
    lines = [
        "| code | dim | PSNR dB | SSIM | probe acc | int8 B/image | ratio | int8 PSNR dB | int8 SSIM | train s (epochs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        c, q = r["compression"], r["reconstruction"]
        t = r.get("training")
        train_s = f"{t['train_seconds']:.0f} ({t['epochs_run']})" if t else f"{r.get('fit_seconds', 0):.0f} (fit)"
        acc = f"{r['probe']['accuracy']:.4f}" + ("" if r["probe"]["converged"] else "*")
        name = f"**{r['variant']}**" if r["variant"] == "PCA" else r["variant"] + (f" (beta {r['beta']:g})" if "beta" in r else "")
        lines.append(f"| {name} | {r['latent_dim']} | {q['psnr']:.2f} | {q['ssim']:.3f} | {acc} | {c['bytes_per_image']:.3f} | "
                     f"{c['ratio']:.1f} | {c['psnr']:.2f} | {c['ssim']:.3f} | {train_s} |")
    raw = result.get("raw_pixels_probe")
    if raw:
        acc = f"{raw['accuracy']:.4f}" + ("" if raw["converged"] else "*")
        lines.append(f"| raw pixels | {raw['dim']} | - | - | {acc} | {raw['dim']} | 1.0 | - | - | - |")
    m = result["machine"]
    lines += [
        "",
        f"{result['dataset']}: models trained on all classes ({result['n_train']:,} train images, a fixed 10% of each class held out "
        f"for validation), up to {result['epochs']} epochs, batch {result['batch_size']}, seed {result['seed']}. Measured on the "
        f"{result['n_test']:,} test images. Probe: logistic regression on standardized codes fitted on the whole train split "
        f"({result['n_probe_train']:,} images), max {result['probe_max_iter']} L-BFGS iterations"
        + (f" ({raw['max_iter']} for the 784 raw pixels)" if raw else "") + " (* = stopped before converging). "
        f"int8 B/image = latent_dim bytes + 8 * latent_dim bytes of float32 offset/scale amortized over the {result['n_test']:,} "
        f"test images; ratio = {result['rows'][0]['compression']['raw_bytes_per_image']} raw bytes / that. "
        f"Total {result['total_seconds'] / 60:.1f} min on {m['cpu']}, {m['cores']} cores.",
        "",
    ]
    return "\n".join(lines)
