"""Compression with the TensorFlow Model Optimization toolkit: QAT, pruning, clustering.

Each method fine-tunes a trained autoencoder on its normal training images and
returns a Keras model that ``training.convert.to_tflite`` turns into an int8 detector:

- ``qat``: quantization-aware training (fake-quant wrappers; the converter folds them);
- ``prune``: magnitude pruning to a target sparsity, then ``strip_pruning``;
- ``cluster``: weight clustering to N shared values per kernel, then ``strip_clustering``;
- ``pqat`` / ``cqat``: pruning- or cluster-preserving QAT (prune or cluster first,
  then QAT with the collaborative scheme that keeps the zeros / the shared values).

``optimize_run`` applies one method to a training run folder and writes the result
as a run folder of its own (default: the sibling ``<RUN>-<method>``), so
``aezoo evaluate`` and ``aezoo export`` work on it unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import zoo
from zoo.config import Config, check_choice, check_int, check_number
from zoo.errors import UserError
from zoo.keras import keras, tf

import tensorflow_model_optimization as tfmot  # noqa: E402  (after zoo.keras: Keras 2)

METHODS = ("qat", "prune", "cluster", "pqat", "cqat")
QAT_METHODS = ("qat", "pqat", "cqat")
# Fraction of the pruning fine-tune spent ramping the sparsity up; the rest recovers at full sparsity.
PRUNE_RAMP = 0.7
# Training images whose float activations set the QAT ranges' starting point.
RANGE_CALIBRATION_IMAGES = 1000


@dataclasses.dataclass
class CompressConfig(Config):
    """How to compress a trained model; round-trips to JSON.

    Args:
        method: one of ``qat``, ``prune``, ``cluster``, ``pqat``, ``cqat``.
        epochs: fine-tuning epochs (each stage of ``pqat``/``cqat`` gets this many). Defaults to 3.
        sparsity: target fraction of zero kernel weights for pruning. Defaults to 0.5.
        clusters: shared values per kernel for clustering. Defaults to 16.
        lr: fine-tuning Adam learning rate, lower than training's so fine-tuning does not
            undo the trained weights. Defaults to 2e-4.
        batch_size: fine-tuning batch size. Defaults to 128.
        seed: seed for shuffling and initialisation. Defaults to 0.
    """

    method: str = "qat"
    epochs: int = 3
    sparsity: float = 0.5
    clusters: int = 16
    lr: float = 2e-4
    batch_size: int = 128
    seed: int = 0

    def validate(self) -> "CompressConfig":
        """Check every field; raise UserError quoting the bad value."""
        check_choice(self, "method", METHODS)
        check_number(self, "sparsity", 0.0, 1.0)
        if self.sparsity >= 1.0:
            raise UserError(f"sparsity must be a fraction in (0, 1), e.g. 0.5. Received: sparsity={self.sparsity!r}")
        for name, low in (("clusters", 2), ("epochs", 1), ("batch_size", 1), ("seed", 0)):
            check_int(self, name, low)
        check_number(self, "lr", 0.0, 10.0)
        return self


# -- the collaborative QAT schemes --------------------------------------------------------------------------


def _preserving_scheme(method: str) -> Any:
    """The pruning- or cluster-preserving 8-bit QAT scheme, extended to ``Conv2DTranspose``.

    TFMOT 0.8's collaborative registries leave ``Conv2DTranspose`` out (the conv
    decoders' layers), so those layers get TFMOT's default 8-bit transpose config
    with the preserving per-tensor weight quantizer: the same quantization as plain
    QAT, plus the sparsity mask / the cluster centroids.
    """
    # The collaborative registries and quantizers are not exported by TFMOT's public API.
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cluster_preserve,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as prune_preserve,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as default_8bit,
    )

    if method == "pqat":
        inner = prune_preserve.Default8bitPrunePreserveQuantizeRegistry()
        make_quantizer = prune_preserve.PrunePreserveDefault8BitWeightsQuantizer
    else:
        inner = cluster_preserve.Default8bitClusterPreserveQuantizeRegistry(preserve_sparsity=False)

        def make_quantizer() -> Any:
            return cluster_preserve.ClusterPreserveDefault8BitWeightsQuantizer(preserve_sparsity=False)

    class Registry(tfmot.quantization.keras.QuantizeRegistry):
        def supports(self, layer: Any) -> bool:
            return isinstance(layer, keras.layers.Conv2DTranspose) or inner.supports(layer)

        def get_quantize_config(self, layer: Any) -> Any:
            if isinstance(layer, keras.layers.Conv2DTranspose):
                config = default_8bit.Default8BitConvTransposeQuantizeConfig(["kernel"], ["activation"], False)
                config.weight_quantizer = make_quantizer()
                return config
            return inner.get_quantize_config(layer)

    class Scheme(tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme):
        def get_quantize_registry(self) -> Any:
            return Registry()

    return Scheme()


@contextlib.contextmanager
def _per_tensor_centroids() -> Iterator[None]:
    """Make cluster-preserving QAT keep one set of centroids per kernel, as ``cluster`` made.

    TFMOT guesses per-channel clustering for every Conv2D (and Conv2DTranspose) whose
    channels hold about the same number of unique values, which a per-kernel clustering
    with few clusters always does; each channel's centroids then drift apart during QAT
    (8 clusters became up to 8 x channels values). The guess happens while the
    wrappers are built, inside ``quantize_apply``.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cluster_preserve,
    )

    def per_tensor(layer: Any, weight: Any, data_format: Any) -> tuple:
        centroids, index = cluster_preserve.get_unique(weight)
        return centroids, tf.size(centroids), index, False

    saved = cluster_preserve.get_centroids
    cluster_preserve.get_centroids = per_tensor
    try:
        yield
    finally:
        cluster_preserve.get_centroids = saved


def _finish_qat(trained: keras.Model) -> keras.Model:
    """A default-scheme QAT copy of ``trained`` whose wrappers carry their layers' names.

    - Names: ``quantize_apply`` prefixes ``quant_``, but the zoo finds the code and
      decoder layers by name (``zoo.encoder``, ``zoo.decoder``, ``zoo.is_variational``,
      the ELBO score), so a QAT run keeps the float model's names.
    - Default scheme: the collaborative quantizers keep variables (mask, centroids,
      indices) that their serialized QuantizeConfig does not describe, so such a model
      cannot be loaded back. Their kernels already hold the preserved values, and the
      default-scheme copy with the same kernels and ranges converts to the same TFLite model.
    """
    from zoo.layers import quantize_scope

    def rename(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
            config["name"] = layer.layer.name
        return layer.__class__.from_config(config)

    with quantize_scope():
        plain = keras.models.clone_model(trained, clone_function=rename)
    plain.build(trained.inputs[0].shape)
    source = {getattr(layer, "layer", layer).name: layer for layer in trained.layers}

    def short(var: Any) -> str:
        return var.name.rsplit("/", 1)[-1]

    for layer in plain.layers:
        if layer.weights:
            values = {short(w): w for w in source[layer.name].weights}
            layer.set_weights([values[short(w)].numpy() for w in layer.weights])
        if type(layer).__name__ == "QuantizeLayer":  # not exported by TFMOT's public API
            # TFMOT's QuantizeLayer.build never marks the layer built, so a saved build
            # config makes load_model build it twice (5 variables for 3 saved ones).
            # Without one, loading builds it once, when the functional graph is rebuilt.
            layer._build_input_shape = None
    return plain


def _init_activation_ranges(qat: keras.Model, float_model: keras.Model, x: np.ndarray) -> dict[str, list[float]]:
    """Start every activation quantizer at the range the float model really produces on ``x``.

    TFMOT starts activation ranges at [-6, 6] and moves them by a 0.999 moving
    average, so a short QAT fine-tune trains (and exports) with ranges far wider
    than the activations: a coarse int8 grid that costs AUROC. Post-training int8
    calibrates min/max on data instead and loses nothing; this gives QAT the same start.
    """
    by_name = {layer.name: layer for layer in float_model.layers}
    wrapped = [w for w in qat.layers if isinstance(w, tfmot.quantization.keras.QuantizeWrapper) and w.layer.name in by_name]
    probe = keras.Model(float_model.inputs, [by_name[w.layer.name].input for w in wrapped] + [by_name[w.layer.name].output for w in wrapped])
    values = probe.predict(x, batch_size=256, verbose=0)
    inputs, outputs = values[: len(wrapped)], values[len(wrapped):]
    ranges: dict[str, list[float]] = {}
    for wrapper, layer_in, layer_out in zip(wrapped, inputs, outputs):
        for var in wrapper.non_trainable_weights:
            short = var.name.rsplit("/", 1)[-1].split(":")[0]
            if short.startswith("post_activation_"):
                act = layer_out
            elif short.startswith("pre_activation_"):
                # The quantizer sits before the activation (e.g. sigmoid): recompute the layer without it.
                linear = wrapper.layer.__class__.from_config({**by_name[wrapper.layer.name].get_config(), "activation": "linear"})
                linear.build(layer_in.shape)
                linear.set_weights(by_name[wrapper.layer.name].get_weights())
                act = linear(tf.constant(layer_in)).numpy()
            else:
                continue
            # Ranges must contain 0 for an exact int8 zero point, as TFMOT's own quantizers assume.
            var.assign(min(float(act.min()), 0.0) if short.endswith("_min") else max(float(act.max()), 0.0))
            ranges.setdefault(wrapper.name, []).append(float(var.numpy()))
    for layer in qat.layers:
        if type(layer).__name__ == "QuantizeLayer":  # the input quantizer: pixels in [0, 1]
            for var in layer.non_trainable_weights:
                short = var.name.split(":")[0]
                if short.endswith("_min"):
                    var.assign(min(float(x.min()), 0.0))
                elif short.endswith("_max"):
                    var.assign(max(float(x.max()), 0.0))
    return ranges


# -- compression ---------------------------------------------------------------------------------------------


def _kernel(layer: Any) -> Any:
    """The layer's kernel variable, or None (a QAT wrapper's ``layer.kernel`` is a fake-quant tensor)."""
    found = [w for w in getattr(layer, "weights", []) if w.name.rsplit("/", 1)[-1].startswith("kernel:")]
    return found[0] if found else None


def _has_kernel(layer: Any) -> bool:
    return _kernel(layer) is not None


def _wrap_kernels(model: keras.Model, wrap: Any) -> keras.Model:
    """Clone ``model`` with ``wrap(layer)`` around every layer that has a kernel.

    Pruning and clustering touch kernels only; the custom layers (no weights) and
    Flatten/Reshape stay as they are, so TFMOT never sees a layer it does not know.
    ``model`` must be a private copy: the wrappers share its layers' weights.
    """
    return keras.models.clone_model(model, clone_function=lambda layer: wrap(layer) if _has_kernel(layer) else layer)


def _prune_schedule(config: CompressConfig, steps: int) -> Any:
    """Polynomial sparsity from 0 to ``config.sparsity`` over the first ``PRUNE_RAMP`` of the fine-tune."""
    frequency = max(1, steps // 20)
    # end_step on a pruning step, so the last pruning step reaches the target exactly.
    end_step = frequency * max(1, int(steps * PRUNE_RAMP) // frequency)
    return tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(config.sparsity), begin_step=0,
                                                end_step=end_step, frequency=frequency)


def compress(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    config: CompressConfig,
    *,
    verbose: int | str = "auto",
) -> tuple[keras.Model, dict[str, Any]]:
    """Fine-tune a copy of ``model`` with one TFMOT method.

    Args:
        model: a trained zoo autoencoder (it is not modified).
        x_train: normal training images, float32 in [0, 1].
        x_val: normal validation images, for the validation loss shown while fine-tuning.
        config: the method and its settings.
        verbose: Keras ``fit`` verbosity. Defaults to "auto".

    Returns:
        ``(compressed_model, stats)``: the model ready for ``training.convert.to_tflite``
        (QAT methods return a QAT model, layer names kept, which the converter folds
        into int8 kernels; pruning and clustering a plain float model), and ``stats``:
        :func:`weight_stats` plus the fine-tuning losses and time.
    """
    from training.fit import compile_network, copy_network, keras_verbosity, make_pipeline

    config.validate()
    batch = min(config.batch_size, len(x_train))
    keras.utils.set_random_seed(config.seed)
    train = make_pipeline(x_train, batch_size=batch, shuffle=True, seed=config.seed)
    val = make_pipeline(x_val, batch_size=batch, shuffle=False, seed=config.seed)
    steps = math.ceil(len(x_train) / batch) * config.epochs
    stages: list[dict[str, Any]] = []

    def fine_tune(stage: str, m: keras.Model, callbacks: list | None = None) -> keras.Model:
        compile_network(m, config.lr)
        t0 = time.perf_counter()
        h = m.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks or [],
                  verbose=keras_verbosity(verbose))
        stages.append({"stage": stage, "seconds": time.perf_counter() - t0,
                       **{k: [float(v) for v in vs] for k, vs in h.history.items()}})
        return m

    base = copy_network(model)
    if config.method in ("prune", "pqat"):
        pruned = _wrap_kernels(base, lambda layer: tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=_prune_schedule(config, steps)))
        base = copy_network(tfmot.sparsity.keras.strip_pruning(fine_tune("prune", pruned, [tfmot.sparsity.keras.UpdatePruningStep()])))
    elif config.method in ("cluster", "cqat"):
        init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS
        clustered = _wrap_kernels(base, lambda layer: tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=config.clusters, cluster_centroids_init=init))
        base = copy_network(tfmot.clustering.keras.strip_clustering(fine_tune("cluster", clustered)))

    if config.method in QAT_METHODS:
        scheme = None if config.method == "qat" else _preserving_scheme(config.method)
        with _per_tensor_centroids():
            qat = zoo.qat_model(base, scheme=scheme)
        _init_activation_ranges(qat, base, np.asarray(x_train[:RANGE_CALIBRATION_IMAGES], np.float32))
        fine_tune("qat", qat)
        base = _finish_qat(qat)

    stats = weight_stats(base)
    stats["fine_tune"] = stages
    return base, stats


def weight_stats(model: keras.Model) -> dict[str, Any]:
    """Sparsity and number of unique values of every kernel in ``model``, by layer name.

    QAT wrappers are looked through, so the figures describe the float kernels that
    the converter quantizes.
    """
    layers: dict[str, dict[str, float | int]] = {}
    zeros = total = 0
    for layer in model.layers:
        kernel = _kernel(layer)
        if kernel is None:
            continue
        w = kernel.numpy()
        z = int(np.sum(w == 0))
        layers[layer.name] = {"size": int(w.size), "sparsity": z / w.size, "unique_values": int(np.unique(w).size)}
        zeros += z
        total += w.size
    return {"sparsity": zeros / max(total, 1), "kernel_weights": int(total), "kernels": layers}


# -- a compressed run folder -------------------------------------------------------------------------------


def default_out(run: str | os.PathLike, method: str) -> Path:
    """The default folder of a compressed run: ``<RUN>-<method>`` beside ``run``."""
    run = Path(run)
    return run.with_name(f"{run.resolve().name}-{method}")


def optimize_run(run: str | os.PathLike, config: CompressConfig, *, out: str | os.PathLike | None = None, split: Any = None,
                 plots: bool = True, verbose: int | str = "auto") -> Path:
    """Compress a training run's model and write the result as a run folder of its own.

    The folder holds what ``training.train`` writes, so ``aezoo evaluate`` and ``aezoo
    export`` accept it: the compressed network with its score refitted on the normal
    training images and its threshold on the normal validation images (the source
    run's score and method); config.json (the source TrainConfig plus a "compression"
    section: the CompressConfig, the source run and its model's sha256); metrics.json
    beside PCA and kNN, plus "compression" (weight stats, fine-tuning, the source AUROC).

    Args:
        run: the training run folder.
        config: the compression method and settings.
        out: the folder to write. Defaults to ``<RUN>-<method>`` beside ``run``; must not exist.
        split: a prepared ``OneClassSplit`` (skips loading the run's data).
        plots: draw the PNG plots. verbose: Keras ``fit`` verbosity.
    """
    from training import data, runs
    from training.detector import AutoencoderDetector, load_run
    from training.evaluate import evaluate_split
    from zoo.files import atomic_dir, check_replaceable, sha256_file, write_json

    config.validate()
    source = runs.Run(run)
    detector, train_config = load_run(source.path)
    _check_compressible(source, train_config, config)
    out = Path(out) if out is not None else default_out(source.path, config.method)
    if out.exists():
        raise UserError(f"{out} already exists; choose another --out or delete it. Received: --out {out}")
    split = split if split is not None else data.one_class_split(train_config.data_source(), train_config.normal_class)
    compressed, stats = compress(detector.model_, split.x_train, split.x_val, config, verbose=verbose)
    result = AutoencoderDetector(train_config, network=compressed).calibrate(split.x_train, split.x_val)
    source_metrics = source.file(runs.METRICS)
    source_auroc = runs.read_json(source_metrics, "metrics")["model"]["auroc"] if source_metrics.is_file() else None
    compression = {"config": config.to_dict(), "source_run": str(source.path.resolve()),
                   "source_model_sha256": sha256_file(source.file(runs.MODEL))}
    check_replaceable(out, kind="run folder", marker=runs.CONFIG)
    with atomic_dir(out, marker=runs.CONFIG) as tmp:
        result.save(tmp)
        write_json(tmp / runs.CONFIG, {**train_config.to_dict(), "preprocessing": split.preprocessing, "compression": compression})
        report = evaluate_split(result, split, out_dir=tmp, plots=plots, label=f"{train_config.model} ({config.method})")
        report["compression"] = {**compression, "source_auroc": source_auroc, **stats}
        write_json(tmp / runs.METRICS, report)
        write_json(tmp / runs.STATE, {"finished": True, "compressed": True})
    return out


def _check_compressible(source: Any, train_config: Any, config: CompressConfig) -> None:
    compression = source.compression()
    if compression and config.method in QAT_METHODS and compression["config"]["method"] in QAT_METHODS:
        raise UserError(f"{source.path} is already quantization-aware ({compression['config']['method']}); "
                        f"compress its float source run instead. Received: --method {config.method}")
    if train_config.all_classes:
        raise UserError(f"optimize compresses a one-class detector run; {source.path} was trained on every class "
                        "(--all-classes-one-model). Received: all_classes=True")


def format_stats(report: dict) -> str:
    """One line per kernel: sparsity and unique values (from a compressed run's metrics.json)."""
    c = report["compression"]
    lines = [f"{c['config']['method']}: kernel sparsity {c['sparsity']:.3f} over {c['kernel_weights']} weights"]
    for name, k in c["kernels"].items():
        lines.append(f"  {name:<14} {k['size']:>7} weights  sparsity {k['sparsity']:.3f}  unique values {k['unique_values']}")
    return "\n".join(lines)
