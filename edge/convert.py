"""Keras model -> TFLite flatbuffer bytes (TensorFlow-based; the device never imports this)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from zoo.errors import UserError

QUANT_MODES = ("float32", "float16", "dynamic", "int8")


def to_tflite(
    model,
    quant: str,
    representative: np.ndarray | None = None,
    *,
    batch_size: int | None = None,
) -> bytes:
    """Convert a Keras autoencoder's deterministic reconstruction path to TFLite.

    The model is traced with ``training=False``, so training-only behaviour
    (denoising corruption, VAE sampling) is left out and a VAE exports its mean path.

    Args:
        model: A tf_keras model with one float32 input and one output.
        quant: ``"float32"`` (no quantization), ``"float16"`` (float16 weights),
            ``"dynamic"`` (int8 weights, float activations) or ``"int8"`` (full
            integer: int8 weights, activations, input and output).
        representative: Float32 images in [0, 1] shaped like the model input, used
            to calibrate activation ranges. Required for ``"int8"``; a few hundred
            normal training images are enough.
        batch_size: Fixed batch dimension. Defaults to None (dynamic batch, so the
            LiteRT interpreter can be resized for batches); use 1 for TFLite Micro,
            whose kernels need static shapes.

    Returns:
        The ``.tflite`` flatbuffer bytes.
    """
    from zoo.keras import tf

    if quant not in QUANT_MODES:
        raise UserError(f"quant must be one of {', '.join(QUANT_MODES)}. Received: quant={quant!r}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(
            f"to_tflite needs a model with one input and one output. "
            f"Received: model={model.name!r} with {len(model.inputs)} inputs, {len(model.outputs)} outputs"
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if quant == "int8":
        if representative is None:
            raise UserError("quant='int8' needs representative images to calibrate activations. Received: representative=None")
        representative = np.asarray(representative, dtype=np.float32)
        if representative.ndim != len(in_shape) + 1 or tuple(representative.shape[1:]) != in_shape or len(representative) == 0:
            raise UserError(
                f"representative must be float32 images shaped (N, {', '.join(map(str, in_shape))}). "
                f"Received: representative.shape={representative.shape}"
            )

    spec = tf.TensorSpec((batch_size, *in_shape), tf.float32, name="image")

    # Explicit training=False: the one definition of "inference path" for every zoo variant.
    @tf.function(input_signature=[spec])
    def reconstruct(x):
        return model(x, training=False)

    concrete = reconstruct.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        reps = representative
        step = batch_size or 1

        def representative_dataset():
            for i in range(0, len(reps) - step + 1, step):
                yield [reps[i : i + step]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError/RuntimeError with MLIR text
        raise RuntimeError(f"TFLite conversion of {model.name!r} with quant={quant!r} failed: {exc}") from exc


# -- export of a training run to a detector bundle ------------------------------------------------------------

EXPORT_FORMATS = ("bundle", "c-array")
C_ARRAY_NAME = "aezoo_model"


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for dist in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy", "autoencoder-zoo"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _load_run(run: str | os.PathLike):
    """(model, config dict, threshold dict) of a run folder, via ``training.load_run`` when present."""
    try:
        from training import load_run
    except ImportError:
        try:
            from training.fit import load_run
        except ImportError:
            load_run = None
    if load_run is not None:
        model, config, threshold = load_run(run)
        return model, (config.to_dict() if hasattr(config, "to_dict") else dict(config)), threshold

    run = Path(run)
    for name in ("model.keras", "config.json", "threshold.json"):
        if not (run / name).is_file():
            raise UserError(f"{str(run)!r} is not a training run folder: {name} is missing. Train one with `aezoo train`.")
    import zoo

    config = json.loads((run / "config.json").read_text())
    threshold = json.loads((run / "threshold.json").read_text())
    return zoo.load_model(run / "model.keras"), config, threshold


def _bundle_spec(interp_details: tuple[dict, dict], *, quant: str, image_shape: tuple, batch, score: str,
                 class_names: list[str], provenance: dict) -> dict:
    ins, outs = interp_details
    h, w, c = (int(d) for d in image_shape)
    if c not in (1, 3):
        raise UserError(f"a detector bundle needs grayscale (1) or RGB (3) input channels. Received: input shape {image_shape}")

    def tensor(d):
        scale, zero = d["quantization"]
        quantized = np.dtype(d["dtype"]).kind != "f"
        return {
            "shape": [h, w, c],
            "batch": batch,
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale) if quantized else None,
            "zero_point": int(zero) if quantized else None,
        }

    return {
        "format": "aezoo-detector",
        "format_version": 1,
        "model": {"quant": quant},
        "input": tensor(ins),
        "output": tensor(outs),
        "preprocessing": {
            "layout": "NHWC",
            "height": h,
            "width": w,
            "channels": c,
            "color_mode": "L" if c == 1 else "RGB",
            "pixel_range": [0.0, 1.0],
            "uint8_divisor": 255.0,
            "resize": "none",
        },
        "score": {"kind": score, "higher_is_anomalous": True, "reference": "the [0, 1] float input (before quantization)"},
        "threshold": {"value": float("nan"), "method": "uncalibrated"},
        "class_names": list(class_names),
        "provenance": provenance,
    }


def export_model(
    model,
    out: str | os.PathLike,
    *,
    quant: str,
    x_train: np.ndarray,
    x_val: np.ndarray,
    threshold: dict,
    class_names: list[str],
    provenance: dict,
    fmt: str = "bundle",
    n_representative: int = 500,
    float_scores_val: np.ndarray | None = None,
) -> Path:
    """Convert ``model`` and write a detector bundle (and, for ``fmt="c-array"``, the C files).

    The bundle's threshold is recalibrated on the exported model's own scores of the
    normal validation images ``x_val``, with the method of ``threshold`` (the run's
    threshold.json: "score", "method", optional "percentile"/"k"), because quantized
    scores shift. "best_f1" cannot be recomputed without labeled anomalies, so the
    float threshold's quantile among the float model's ``x_val`` scores is carried
    over to the exported scores.

    Args:
        model: The trained tf_keras autoencoder.
        out: The bundle directory to write (replaced atomically).
        quant: "float32", "float16", "dynamic" or "int8".
        x_train: Normal training images; the first ``n_representative`` (after a
            seeded shuffle) calibrate int8 activations.
        x_val: Normal validation images: the threshold is calibrated on them.
        threshold: The run's threshold.json dictionary.
        class_names: The dataset's class names.
        provenance: Training facts to record (dataset, normal_class, seed, model, params...).
        fmt: "bundle" or "c-array" (int8, batch 1, plus C source/header and a TFLite Micro check).
        n_representative: How many training images calibrate int8. Defaults to 500.
        float_scores_val: The float model's ``x_val`` scores (computed here if None; used by "best_f1").

    Returns:
        The bundle directory.
    """
    from edge import bundle as _bundle
    from edge.detector import Detector
    from edge.scoring import SCORE_KINDS, calibrate_threshold, score_reconstruction

    if fmt not in EXPORT_FORMATS:
        raise UserError(f"format must be one of {', '.join(EXPORT_FORMATS)}. Received: format={fmt!r}")
    if fmt == "c-array" and quant != "int8":
        raise UserError(f"--format c-array exports the full-integer model for TFLite Micro: use --quant int8. Received: quant={quant!r}")
    if len(x_val) == 0:
        raise UserError("threshold calibration needs normal validation images. Received: 0 images in x_val")
    score = threshold.get("score", "mse")
    method = threshold.get("method", "percentile")
    score_note = None
    if score not in SCORE_KINDS:
        # e.g. "elbo": it needs the encoder's z_mean/z_log_var, which the reconstruction-only
        # detector does not output; the device scores the mean-path reconstruction instead.
        score_note = f"the run scored with {score!r}, which needs more than the reconstruction; the detector uses 'mse'"
        warnings.warn(score_note + " (threshold recalibrated on it).", UserWarning, stacklevel=2)
        score = "mse"
    seed = int(provenance.get("seed") or 0)
    rep = None
    if quant == "int8":
        idx = np.random.default_rng(seed).permutation(len(x_train))[:n_representative]
        rep = np.asarray(x_train, np.float32)[np.sort(idx)]
    batch = 1 if fmt == "c-array" else None
    tflite = to_tflite(model, quant, rep, batch_size=batch)

    from ai_edge_litert.interpreter import Interpreter

    probe = Interpreter(model_content=tflite)
    spec = _bundle_spec(
        (probe.get_input_details()[0], probe.get_output_details()[0]),
        quant=quant, image_shape=tuple(model.inputs[0].shape[1:]), batch=batch or "dynamic", score=score,
        class_names=class_names, provenance={**provenance, "versions": _versions()},
    )
    del probe
    if score_note:
        spec["score"]["note"] = score_note
    spec["model"] = {"file": _bundle.MODEL_FILE, "sha256": _bundle.sha256_bytes(tflite), "bytes": len(tflite), "quant": quant}
    detector = Detector(tflite, spec)
    scores = detector.score(x_val)
    params = {k: threshold[k] for k in ("percentile", "k") if k in threshold}
    entry = {"method": method, **params}
    if method == "best_f1" and score_note is None:
        if float_scores_val is None:
            float_scores_val = score_reconstruction(x_val, model.predict(x_val, verbose=0), score)
        q = float(np.mean(np.asarray(float_scores_val) <= float(threshold["value"])))
        value = float(np.quantile(scores, q))
        entry["transfer"] = f"quantile {q:.6f} of the float model's x_val scores, carried over to the exported model's x_val scores"
    else:
        value = calibrate_threshold(scores, method, **params)
    entry.update({
        "value": value,
        "calibrated_on": "exported model's scores of the normal validation images (x_val)",
        "n_images": int(len(x_val)),
        "fraction_val_above": float(np.mean(scores > value)),
        "float_model_value": float(threshold["value"]) if threshold.get("value") is not None else None,
    })
    spec["threshold"] = {"value": value, **{k: v for k, v in entry.items() if k != "value"}}

    extra: dict[str, bytes | str] = {}
    if fmt == "c-array":
        from edge.micro import check_micro, to_c_array

        src, hdr = to_c_array(tflite, name=C_ARRAY_NAME, spec=spec)
        extra[f"{C_ARRAY_NAME}.c"] = src
        extra[f"{C_ARRAY_NAME}.h"] = hdr
        report = check_micro(tflite, detector.quantize(x_val[:16]))
        extra["micro.json"] = json.dumps(report.to_dict(), indent=2) + "\n"
        spec["micro"] = report.to_dict()
    return _bundle.write_bundle(out, tflite, spec, extra)


def export_run(run: str | os.PathLike, out: str | os.PathLike, *, quant: str = "int8", fmt: str = "bundle",
               data_dir: str | None = None, n_representative: int = 500) -> Path:
    """Export a training run folder (model.keras, config.json, threshold.json) to a detector bundle.

    Representative images come from the run's normal training images and the threshold
    from its normal validation images (``training.data.one_class_split``); test data is
    never used. See ``export_model`` for the rest.
    """
    from training.data import one_class_split

    model, config, threshold = _load_run(run)
    for key in ("dataset", "normal_class", "model"):
        if key not in config:
            raise UserError(f"{run}/config.json lacks {key!r}. Received keys: {sorted(config)}")
    # threshold.json names the method; its parameters may live in config.json (TrainConfig).
    threshold = {**{k: config[k] for k in ("percentile", "k") if k in config}, **threshold}
    split = one_class_split(config["dataset"], int(config["normal_class"]), data_dir=data_dir or config.get("data_dir"))
    provenance = {
        "run": str(Path(run).resolve().name),
        "dataset": config["dataset"],
        "normal_class": int(config["normal_class"]),
        "normal_class_name": split.class_names[int(config["normal_class"])] if split.class_names else None,
        "seed": config.get("seed"),
        "model": config["model"],
        "params": config.get("params", {}),
        "epochs": config.get("epochs"),
        "run_threshold": threshold,
    }
    return export_model(
        model, out, quant=quant, x_train=split.x_train, x_val=split.x_val, threshold=threshold,
        class_names=list(split.class_names), provenance=provenance, fmt=fmt, n_representative=n_representative,
    )
