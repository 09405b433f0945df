"""Conversion to TFLite and export of a detector bundle: the one int8 conversion of the project.

``to_tflite`` converts a detector's score graph (``AutoencoderDetector.graph_``: the
input to the outputs its score reads) with ``tf.lite.TFLiteConverter``; for full
int8 it calibrates activation ranges on normal training images. ``export_detector``
writes the bundle: the model, and detector.json with the preprocessing, the score
(kind and parameters), the outputs in the model's order, and a threshold calibrated
again on the exported model's own scores of the normal validation images.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import INTEGER_MODES, QUANT_MODES, QUANTIZERS
from zoo.errors import UserError
from zoo.quiet import native_stderr_silenced

EXPORT_FORMATS = ("bundle", "c-array")
REPRESENTATIVE_IMAGES = 500
# Validation inputs run under TFLite Micro to check its outputs, scores and verdicts.
MICRO_CHECK_INPUTS = 64
# A microcontroller build quantizes dense layers per tensor: per-channel scales and zero points of the 512-unit
# layers cost 15 KB, which put the default detector at 66,304 bytes; per tensor it is 51,216 bytes with a 17 KB
# arena instead of 22 KB, at about the same development AUROC (BENCHMARKS.md, TFLite Micro).
MICRO_PER_TENSOR_DENSE = True
# An int8 score head (nap's whitening) is fitted with this many squared quantization steps of its input features
# added to every variance: kernels that round a feature one step apart then move the score by at most about
# 1 / QUANT_NOISE_STEPS per feature, instead of by the inverse of a near-zero variance (docs/BUNDLE.md).
QUANT_NOISE_STEPS = 0.0


def to_tflite(graph: Any, quant: str, representative: np.ndarray | None = None, *, batch_size: int | None = None,
              quantizer: str = "tflite-converter", per_tensor_dense: bool = False) -> bytes:
    """Convert a Keras graph (one input, one or more outputs) to TFLite, traced with ``training=False``.

    Training-only behaviour (denoising corruption, VAE sampling) is left out, so a VAE
    exports its mean path.

    Args:
        graph: a Keras model (tf_keras or Keras 3) with one float32 input.
        quant: "float32", "float16" (float16 weights), "dynamic" (int8 weights, float
            activations), "int8" (full integer: weights, activations, input and outputs) or
            "int16x8" (int8 weights, 16-bit activations, input and outputs: TFLite's 16x8 mode).
        representative: normal float32 inputs shaped like the graph's input, to calibrate
            activation ranges; required for "int8".
        batch_size: fixed batch dimension (1 for TFLite Micro), or None for a dynamic batch.
        quantizer: for "int8", "tflite-converter" (default) or "litert" (the LiteRT Quantizer's
            static int8 recipe on the float model, calibrated on ``representative``).
        per_tensor_dense: for the TFLite converter's int8, one scale per dense layer instead of one per output
            unit (what a microcontroller build uses: see :data:`MICRO_PER_TENSOR_DENSE`).
    """
    if quant not in QUANT_MODES:
        raise UserError(f"quant must be one of {', '.join(QUANT_MODES)}. Received: quant={quant!r}")
    if quantizer not in QUANTIZERS:
        raise UserError(f"quantizer must be one of {', '.join(QUANTIZERS)}. Received: quantizer={quantizer!r}")
    if quantizer == "litert" and quant == "int16x8":
        raise UserError("--quantizer litert makes int8 models; int16x8 comes from the TFLite converter (the default)")
    if quantizer == "litert" and quant == "int8":
        floating = _convert(graph, "float32", None, batch_size, strip=False)
        return strip_names(litert_int8(floating, _check_representative(representative, tuple(graph.inputs[0].shape[1:]))))
    return _convert(graph, quant, representative, batch_size, per_tensor_dense=per_tensor_dense)


def _convert(graph: Any, quant: str, representative: np.ndarray | None, batch_size: int | None, *, strip: bool = True,
             per_tensor_dense: bool = False) -> bytes:
    """TFLiteConverter on ``graph`` traced with ``training=False``."""
    from zoo.keras import tf

    if len(graph.inputs) != 1:
        raise UserError(f"to_tflite needs a graph with one input. Received: {graph.name!r} with {len(graph.inputs)} inputs")
    in_shape = tuple(graph.inputs[0].shape[1:])
    if quant in INTEGER_MODES:
        representative = _check_representative(representative, in_shape)
    spec = tf.TensorSpec((batch_size, *in_shape), tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def infer(x):
        # Explicit training=False: the one definition of "inference path" for every zoo variant.
        return graph(x, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([infer.get_concrete_function()], _trackable(graph))
    if quant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quant in INTEGER_MODES:
        step = batch_size or 1
        converter.representative_dataset = lambda: ([representative[i : i + step]]
                                                    for i in range(0, len(representative) - step + 1, step))
        sixteen = quant == "int16x8"
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
                                               if sixteen else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16 if sixteen else tf.int8
        converter._experimental_disable_per_channel_quantization_for_dense_layers = per_tensor_dense
    try:
        with native_stderr_silenced(), warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": the int8 input's range comes from the representative data.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            converted = converter.convert()
        return strip_names(bytes(converted)) if strip else bytes(converted)
    except Exception as exc:  # the converter raises ConverterError/RuntimeError with MLIR text
        raise RuntimeError(f"TFLite conversion of {graph.name!r} with quant={quant!r} failed: {exc}") from exc


def _trackable(graph: Any) -> Any:
    """What the converter freezes the variables of: a tf_keras model tracks its own; a Keras 3 model's variables wrap
    TensorFlow ones that it does not expose as trackables, so they are handed over in a ``tf.Module`` (without it
    the converted model reads unfrozen variables and fails on its first invoke)."""
    from zoo.keras import tf, version_of

    if version_of(graph) == 2:
        return graph
    holder = tf.Module()
    holder.weights = [getattr(v, "value", v) for v in graph.weights]
    return holder


def litert_int8(floating: bytes, representative: np.ndarray) -> bytes:
    """Full-integer int8 of a float .tflite with the LiteRT Quantizer, calibrated on ``representative``.

    ``litert-quantizer`` is what ``ai-edge-quantizer`` (frozen at 0.10) became, with the same API.
    """
    try:
        from litert_quantizer import quantizer as aeq, recipe
    except ImportError:
        raise UserError("--quantizer litert needs the LiteRT Quantizer: pip install litert-quantizer") from None
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=floating).get_signature_list()
    key = next(iter(signatures))
    name = signatures[key]["inputs"][0]
    q = aeq.Quantizer(floating)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    with native_stderr_silenced(), warnings.catch_warnings(), _quiet_stdout():
        warnings.simplefilter("ignore")
        calibration = q.calibrate({key: [{name: representative[i : i + 1]} for i in range(len(representative))]})
        return bytes(q.quantize(calibration).quantized_model)


@contextlib.contextmanager
def _quiet_stdout() -> Any:
    """The LiteRT Quantizer prints its progress and a size summary to stdout."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def strip_names(tflite: bytes) -> bytes:
    """Drop tensor and subgraph names (about a third of a small model's bytes; nothing reads them).

    Outputs are identified by their order, recorded in detector.json, not by name.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _check_representative(representative: Any, in_shape: tuple) -> np.ndarray:
    if representative is None:
        raise UserError("quant='int8' needs representative inputs to calibrate activations. Received: representative=None")
    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim != len(in_shape) + 1 or tuple(rep.shape[1:]) != in_shape or len(rep) == 0:
        raise UserError(f"representative must be float32 inputs shaped (N, {', '.join(map(str, in_shape))}). "
                        f"Received: representative.shape={rep.shape}")
    return rep


def representative_inputs(x_train: np.ndarray, n: int = REPRESENTATIVE_IMAGES, seed: int = 0) -> np.ndarray:
    """``n`` normal training inputs in a seeded random order: what int8 calibration sees."""
    idx = np.random.default_rng(seed).permutation(len(x_train))[:n]
    return np.asarray(x_train, np.float32)[np.sort(idx)]


def run_tflite(tflite: bytes, x: np.ndarray, *, chunk: int = 1000) -> list[np.ndarray]:
    """Dequantized outputs of a TFLite model (dynamic batch) on ``x``, in the model's output order."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_silenced():
        interp = Interpreter(model_content=tflite)
        interp.allocate_tensors()
    inp, outs = interp.get_input_details()[0], interp.get_output_details()
    scale, zero = inp["quantization"]
    parts: list[list[np.ndarray]] = [[] for _ in outs]
    for i in range(0, len(x), chunk):
        b = np.asarray(x[i : i + chunk], np.float32)
        if tuple(interp.get_input_details()[0]["shape"]) != (len(b), *b.shape[1:]):
            interp.resize_tensor_input(inp["index"], [len(b), *b.shape[1:]])
            interp.allocate_tensors()
        info = None if not scale else np.iinfo(inp["dtype"])
        q = b if not scale else np.clip(np.rint(b / scale) + zero, info.min, info.max)
        interp.set_tensor(inp["index"], q.astype(inp["dtype"]))
        interp.invoke()
        for k, d in enumerate(outs):
            raw = interp.get_tensor(d["index"]).astype(np.float64)
            s, z = d["quantization"]
            parts[k].append((raw - z) * s if s else raw)
    return [np.concatenate(p) for p in parts]


def output_order(tflite: bytes, graph: Any, probe: np.ndarray) -> list[str]:
    """The graph's output names in the TFLite model's output order.

    The converter names outputs after the traced function, not the graph; they are
    matched by shape, and where shapes tie, by the values on ``probe`` inputs.
    """
    got = run_tflite(tflite, probe)
    want = graph.predict(probe, verbose=0)
    names: list[str] = []
    for out in got:
        candidates = [n for n, v in want.items() if v.shape[1:] == out.shape[1:] and n not in names]
        if not candidates:
            raise RuntimeError(f"a TFLite output {out.shape[1:]} matches no graph output {sorted(want)}")
        names.append(min(candidates, key=lambda n: float(np.mean(np.abs(want[n] - out)))))
    return names


def deployed_score(detector: Any, quant: str, representative: np.ndarray | None, x_train: np.ndarray,
                   quantizer: str = "tflite-converter", per_tensor_dense: bool = False) -> tuple[Any, Any]:
    """(score, graph) to export: for int8 (and int16x8), the score's head refitted on that model's own features.

    Whitening amplifies the small quantization errors of features of low variance, so a
    head fitted on float features misjudges int8 ones; fitted on what the int8 model
    computes for the normal training inputs, it sees the numbers the device will give it.
    """
    score = detector.score_
    features = score.feature_graph(detector.model_) if quant in INTEGER_MODES else None
    if features is None:
        return score, detector.graph_
    tflite = to_tflite(features, quant, representative, quantizer=quantizer, per_tensor_dense=per_tensor_dense)
    names = output_order(tflite, features, np.asarray(x_train[:4], np.float32))
    values = run_tflite(tflite, x_train)[names.index("features")]
    step = _output_scale(tflite, names.index("features"))
    score = copy.deepcopy(score).fit_head(values, noise_var=QUANT_NOISE_STEPS * step**2)
    return score, score.graph(detector.model_)


def _output_scale(tflite: bytes, k: int) -> float:
    """The quantization step of a model's ``k``-th output."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_silenced():
        return float(Interpreter(model_content=tflite).get_output_details()[k]["quantization"][0])


def _tensor_spec(details: dict, name: str | None = None) -> dict:
    scale, zero = details["quantization"]
    quantized = np.dtype(details["dtype"]).kind != "f"
    spec = {"shape": [int(v) for v in details["shape"][1:]], "dtype": np.dtype(details["dtype"]).name,
            "scale": float(scale) if quantized else None, "zero_point": int(zero) if quantized else None}
    return {"name": name, **spec} if name is not None else spec


def bundle_spec(tflite: bytes, output_names: list[str], *, quant: str, batch: Any, score: Any, preprocessing: dict,
                class_names: list[str], provenance: dict, quantizer: str = "tflite-converter") -> dict:
    """detector.json without its threshold: tensors, preprocessing, score, classes, provenance."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_silenced():
        probe = Interpreter(model_content=tflite)
    ins, outs = probe.get_input_details(), probe.get_output_details()
    shape = [int(v) for v in ins[0]["shape"][1:]]
    return {
        # A microcontroller build runs TFLite's reference kernels; so does its bundle's Detector (edge.micro).
        "model": {"quant": quant, "quantizer": quantizer if quant == "int8" else "tflite-converter", "batch": batch,
                  "kernels": "reference" if batch == 1 else "default"},
        "input": _tensor_spec(ins[0]),
        "outputs": [_tensor_spec(d, n) for d, n in zip(outs, output_names)],
        "preprocessing": _preprocessing_spec(preprocessing, shape),
        "score": {**score.to_dict(), "higher_is_anomalous": True},
        "threshold": {"value": 0.0, "method": "uncalibrated"},
        "class_names": list(class_names),
        "provenance": provenance,
    }


def _preprocessing_spec(preprocessing: dict, shape: list[int]) -> dict:
    """The bundle's preprocessing from the split's record, written by the record's input kind (images by default)."""
    from training.inputs import unit_named

    return unit_named(preprocessing.get("kind", "image")).bundle_preprocessing(preprocessing, shape)


def _calibrate(scores: np.ndarray, detector: Any, x_val: np.ndarray) -> dict:
    """The threshold record of the exported model, from its own ``scores`` of the normal validation inputs.

    "best_f1" cannot be recomputed without labeled anomalies: the float threshold's
    quantile among the float scores is carried over to the exported scores.
    """
    from edge.threshold import threshold_record

    c = detector.config
    if c.threshold_method == "best_f1":
        q = float(np.mean(detector.decision_function(x_val) <= detector.threshold_))
        record = threshold_record(scores, method="percentile", percentile=100.0 * q, k=c.k,
                                  calibrated_on="exported model's scores of the normal validation inputs")
        record.update(method="best_f1", transfer=f"quantile {q:.6f} of the float model's validation scores, "
                                                 "carried over to the exported model's validation scores")
    else:
        record = threshold_record(scores, method=c.threshold_method, percentile=c.percentile, k=c.k,
                                  calibrated_on="exported model's scores of the normal validation inputs")
    record["float_model_value"] = float(detector.threshold_)
    return record


def _calibrated(spec: dict, tflite: bytes, detector: Any, x_val: np.ndarray) -> tuple[dict, dict]:
    """(threshold record, runtime agreement) of the exported model on the normal validation inputs, scoring them once
    per LiteRT kernel set: the bundle's own kernels' scores set the threshold (``_calibrate``), and both sets and the
    Keras model that was converted (at its own threshold) are compared (``edge.agreement``)."""
    from edge import agreement
    from edge.bundle import finish_spec

    scores = agreement.kernel_scores(tflite, finish_spec(spec, tflite), _to_device(x_val, spec))
    # The bundle's own kernels set its threshold: a microcontroller build's are the reference ones (model.kernels).
    threshold = _calibrate(scores[f"litert_{spec['model']['kernels']}"], detector, x_val)
    thresholds = {k: float(threshold["value"]) for k in scores}
    scores["keras"], thresholds["keras"] = np.asarray(detector.decision_function(x_val), np.float64), float(detector.threshold_)
    return threshold, {"on": "the normal validation inputs", **agreement.compare(scores, thresholds)}


def _to_device(x: np.ndarray, spec: dict) -> np.ndarray:
    """Model-space inputs back to what a device passes in (the input kind undoes its standardization)."""
    from edge.inputs import for_spec

    return for_spec(spec).to_device(x)


def device_quant(quant: str, score_kind: str, *, fmt: str = "bundle", quantizer: str = "tflite-converter",
                 compression: dict | None = None) -> str:
    """``quant``, with "auto" resolved: the score kind's device mode (``Score.device_quant``: int16x8 for nap), but
    int8 for a c-array (TFLite Micro builds are int8 here), the LiteRT Quantizer, and a QAT / pruned / clustered run
    (what its fine-tuning prepared for)."""
    from training.scores import make_score

    if quant != "auto":
        return quant
    fine_tuned = bool(compression) and compression.get("method") != "post-training"
    if fmt == "c-array" or quantizer != "tflite-converter" or fine_tuned:
        return "int8"
    return make_score(score_kind).device_quant


def export_detector(detector: Any, out: str | os.PathLike, x_train: np.ndarray, x_val: np.ndarray, *,
                    class_names: list[str] | None = None, provenance: dict | None = None, preprocessing: dict | None = None,
                    quant: str = "auto", fmt: str = "bundle", n_representative: int = REPRESENTATIVE_IMAGES,
                    overwrite: bool = False, quantizer: str = "tflite-converter", sign_key: Any = None) -> Path:
    """Convert a fitted ``AutoencoderDetector`` and write its bundle (and, for ``fmt="c-array"``, the C files).

    The network may be a tf_keras or a Keras 3 model, e.g. one you compiled and fitted yourself and wrapped with
    ``AutoencoderDetector(network=model).calibrate(x_train, x_val)``: it is converted with the LiteRT converter.

    Args:
        detector: the fitted detector (its score graph is converted).
        out: the bundle directory; an existing bundle is replaced only with ``overwrite``.
        x_train: normal training inputs: ``n_representative`` of them calibrate int8.
        x_val: normal validation inputs: the threshold is calibrated on them.
        class_names: recorded in detector.json (default: ["normal"]).
        provenance: recorded in detector.json (default: the detector's model, score and seed, the Keras version
            and the package versions).
        preprocessing: what the device applies to raw inputs: the split's record (``one_class_split(...).preprocessing``:
            image resize, vector or series standardization); None for images in [0, 1] (uint8 / 255). Vectors and
            series need it: ``{"kind": "vector", "features": F, "mean": [...], "scale": [...]}`` at least.
        quant: "float32", "float16", "dynamic", "int8", "int16x8" (16-bit activations: the same verdict on
            LiteRT's XNNPACK and reference kernels, at several times the int8 latency; BENCHMARKS.md), or "auto"
            (:func:`device_quant`: int16x8 for the nap score, int8 otherwise).
        fmt: "bundle" or "c-array" (int8, batch 1, plus C source/header and a TFLite Micro check).
        quantizer: who makes the int8 model (:data:`QUANTIZERS`); recorded in detector.json.
        sign_key: the owner's private key file (``aezoo keygen``) to sign the bundle with: a device given the public
            key loads only bundles it signed (``edge.Detector.load(public_key=...)``, ``$AEZOO_PUBLIC_KEY``).
    """
    from edge.bundle import BUNDLE_FILES, SPEC_FILE, check_spec, write_bundle
    from edge.signing import load_private_key
    from zoo import files

    if fmt not in EXPORT_FORMATS:
        raise UserError(f"format must be one of {', '.join(EXPORT_FORMATS)}. Received: format={fmt!r}")
    if preprocessing is None and len(detector.model_.inputs[0].shape) != 4:
        raise UserError(f"a {tuple(detector.model_.inputs[0].shape[1:])} input is not an image: give preprocessing= "
                        "(one_class_split(...).preprocessing, or {'kind': 'vector', 'features': F, 'mean': [...], "
                        "'scale': [...]}) so the device prepares raw inputs as training did")
    provenance = provenance if provenance is not None else _own_provenance(detector)
    quant = device_quant(quant, detector.score_kind, fmt=fmt, quantizer=quantizer, compression=provenance.get("compression"))
    if fmt == "c-array" and quant != "int8":
        raise UserError(f"--format c-array exports the full-integer model for TFLite Micro: use --quant int8. Received: quant={quant!r}")
    if len(x_val) == 0:
        raise UserError("threshold calibration needs normal validation inputs. Received: 0")
    files.check_replaceable(out, kind="detector bundle", marker=SPEC_FILE, overwrite=overwrite, owned=BUNDLE_FILES)
    key = load_private_key(sign_key) if sign_key is not None else None
    batch = 1 if fmt == "c-array" else None
    rep = representative_inputs(x_train, n_representative, int(provenance.get("seed") or 0)) \
        if quant in INTEGER_MODES else None
    # The head is fitted on features quantized as the exported model quantizes them.
    per_tensor = fmt == "c-array" and MICRO_PER_TENSOR_DENSE
    score, graph = deployed_score(detector, quant, rep, x_train, quantizer, per_tensor_dense=per_tensor)
    tflite = to_tflite(graph, quant, rep, batch_size=batch, quantizer=quantizer, per_tensor_dense=per_tensor)
    names = output_order(tflite, graph, np.asarray(x_val[: batch or 4], np.float32))
    spec = bundle_spec(tflite, names, quant=quant, batch=batch or "dynamic", score=score, quantizer=quantizer,
                       preprocessing=preprocessing or {}, class_names=list(class_names or ["normal"]), provenance=provenance)
    spec["threshold"], agreement = _calibrated(spec, tflite, detector, x_val)
    spec["provenance"] = {**spec["provenance"], "agreement": agreement}
    check_spec({"format": "aezoo-detector", "format_version": 2, **spec,
                "model": {**spec["model"], "file": "model.tflite", "sha256": "0" * 64, "bytes": len(tflite)}})
    extra: dict[str, bytes | str] = {}
    if fmt == "c-array":
        extra, spec["micro"] = micro_files(tflite, spec, x_val)
    return write_bundle(out, tflite, spec, extra, overwrite=overwrite, private_key=key)


def _own_provenance(detector: Any) -> dict:
    """The provenance of a detector wrapped around a user's own network (no run folder behind it)."""
    from training.runs import provenance
    from zoo.keras import version_of

    c = detector.config
    return provenance({"model": c.model, "score": detector.score_kind, "seed": c.seed}, keras=version_of(detector.model_))


def micro_files(tflite: bytes, spec: dict, x_val: np.ndarray) -> tuple[dict[str, str], dict]:
    """The C source and header of ``tflite``, and the TFLite Micro check report (also as micro.json)."""
    from edge.bundle import finish_spec
    from edge.c_array import c_sources
    from edge.micro import check_micro

    finished = finish_spec(spec, tflite)
    report = check_micro(tflite, finished, _to_device(x_val[:MICRO_CHECK_INPUTS], spec)).to_dict()
    return {**c_sources(tflite, finished), "micro.json": json.dumps(report, indent=2) + "\n"}, report


def export_run(run: str | os.PathLike, out: str | os.PathLike, *, quant: str = "auto", fmt: str = "bundle",
               n_representative: int = REPRESENTATIVE_IMAGES, overwrite: bool = False,
               quantizer: str = "tflite-converter", sign_key: Any = None) -> Path:
    """Export a run folder's detector: representative inputs and threshold from its normal training/validation data.

    Test data is never used.
    """
    from training import data, runs
    from training.detector import load_run

    run = runs.Run(run)
    detector, config = load_run(run.path)
    if config.all_classes:
        raise UserError(f"{run.path} was trained on all classes; a detector bundle needs a run of one normal class")
    out_path = Path(out).resolve()
    if out_path == run.path.resolve() or run.path.resolve() in out_path.parents:
        raise UserError(f"--out {out} is inside the run folder {run.path}; export the bundle beside the run instead")
    split = data.one_class_split(config.data_source(), config.normal_class)
    prov = runs.provenance(config.to_dict(), run=run.path.resolve().name, class_names=list(split.class_names),
                           compression=run.compression(), run_threshold=detector.threshold_record_)
    with run.lock():
        return export_detector(detector, out, x_train=split.x_train, x_val=split.x_val, class_names=list(split.class_names),
                               provenance=prov, preprocessing=split.preprocessing, quant=quant, fmt=fmt,
                               n_representative=n_representative, overwrite=overwrite, quantizer=quantizer,
                               sign_key=sign_key)
