"""``aezoo models``: list the zoo's variants (TensorFlow is imported only when it runs)."""

from __future__ import annotations

import argparse
import math
from typing import Any

# Per weighted layer, a full-int8 TFLite file stores 1 byte per weight and, per output
# channel, an int32 bias plus per-channel scale/zero point (float32 + int64) for the
# weights and for the bias: 4 + 12 + 12 bytes. The rest (graph, tensor names,
# activation quantization) was about 5 KiB for every default variant when measured.
_BYTES_PER_CHANNEL = 28
_FIXED_OVERHEAD = 5 * 1024
_WEIGHTED = ("Dense", "Conv2D", "Conv2DTranspose")
# Layers that the deterministic (inference) graph never reaches, so TFLite drops them.
_TRAINING_ONLY = ("z_log_var",)


def register(sub: Any) -> None:
    """Add the ``models`` subcommand."""
    p = sub.add_parser("models", help="list the model zoo's variants with parameter counts and int8 sizes")
    p.add_argument("pattern", nargs="?", default="*", help="glob over variant names (default: all)")
    p.add_argument(
        "--input-shape",
        default="28,28,1",
        help="input shape to build each variant with, comma-separated (default: 28,28,1)",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="convert each variant to full-int8 TFLite and report the real size (slower) instead of the estimate",
    )
    p.set_defaults(func=_models)


def int8_size_estimate(model: Any) -> int:
    """Estimate the bytes of a post-training full-int8 TFLite file of ``model``'s inference graph.

    Counts weights at 1 byte and per-channel quantization data per output channel
    (see the constants above); within about 3% of measured sizes for the zoo's defaults.
    """
    total = _FIXED_OVERHEAD
    for layer in model.layers:
        if type(layer).__name__ not in _WEIGHTED or layer.name in _TRAINING_ONLY:
            continue
        kernel = layer.kernel
        channels = kernel.shape[-2] if type(layer).__name__ == "Conv2DTranspose" else kernel.shape[-1]
        total += math.prod(kernel.shape) + _BYTES_PER_CHANNEL * channels
    return total


def _measured_int8_size(model: Any) -> int:
    import numpy as np

    from zoo.keras import tf

    shape = tuple(model.input_shape[1:])
    reps = np.random.default_rng(0).random((8, 1, *shape), dtype=np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([r] for r in reps)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return len(converter.convert())


def _parse_shape(text: str) -> tuple[int, ...]:
    from zoo.errors import UserError

    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UserError(f"--input-shape must be positive integers separated by commas, e.g. 28,28,1. Received: {text!r}")
    return shape


def _models(args: argparse.Namespace) -> int:
    import zoo
    from tqdm import tqdm

    shape = _parse_shape(args.input_shape)
    kind = "image" if len(shape) == 3 else "vector"
    names = zoo.list_models(args.pattern)
    if not names:
        print(f"No model matches {args.pattern!r}. Valid models: {', '.join(zoo.list_models())}")
        return 0
    rows = []
    for name in tqdm(names, desc="models", unit="model", leave=False, disable=not args.measure):
        info = zoo.model_info(name)
        if kind not in info.input_kinds:
            rows.append((name, info.family, ",".join(info.input_kinds), "-", "-", info.summary))
            continue
        model = zoo.build(name, input_shape=shape)
        size = _measured_int8_size(model) if args.measure else int8_size_estimate(model)
        rows.append((name, info.family, ",".join(info.input_kinds), f"{model.count_params():,}", f"{size / 1024:.1f}", info.summary))
    how = "measured by converting (full int8, post-training)" if args.measure else "estimated from the weights (full int8, post-training)"
    header = ("model", "family", "inputs", "params", "int8 KiB", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(f"Input shape {shape}; int8 size {how}.")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[5])
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[5])
    return 0
