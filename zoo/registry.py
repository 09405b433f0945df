"""The model registry: ``@register_model`` and the config dataclass generated for each variant.

The lookups (``list_models``, ``model_info``, ``config_for``, ``build``) live in
``zoo.models``, which imports every family first; this module knows no family.

A variant is a small function returning a flat functional ``keras.Model``; the
function's name is its registry key and its keyword arguments (with their
defaults) are its hyperparameters. Each variant gets a config dataclass generated
from that signature, so a parameter is written exactly once::

    @register_model
    def conv_ae(input_shape=(28, 28, 1), latent_dim=32, *, filters=(8, 16, 32)):
        ...

    zoo.build("conv_ae", latent_dim=16)
    zoo.config_for("conv_ae", latent_dim=16).to_dict()

The layer-naming contract, checked on every build (``zoo.models.common.contract_problems``;
a variant that breaks it is refused with the layer it expected): the model is named
after the variant; its input layer is ``input``; its code layer is ``latent`` (a VAE:
``z_mean``, ``z_log_var`` and the sampled ``z``); its encoder layers start with
``enc_`` and at least one is ``enc_conv*`` or ``enc_dense*`` (the nap score reads
them); its decoder layers start with ``dec_``, the last of them the output.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from typing import Any, Callable, ClassVar

from zoo.config import Config
from zoo.errors import UserError

INPUT_KINDS = ("image", "series", "vector")

_REGISTRY: dict[str, "ModelInfo"] = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a variant without building it."""

    name: str
    family: str  # the module under zoo.models, e.g. "conv"
    input_kinds: tuple[str, ...]  # "image" (H, W, C), "series" (window, channels), "vector" (features,)
    summary: str  # first line of the variant's docstring
    score: str  # the anomaly score its detectors use unless told otherwise (training.scores)
    fn: Callable[..., Any] = dataclasses.field(repr=False, compare=False)
    config_cls: type = dataclasses.field(repr=False, compare=False)


class ModelConfig(Config):
    """Base of every generated variant config (frozen): JSON round trip from :class:`zoo.config.Config`.

    ``cfg == type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict())))``.
    """

    model_name: ClassVar[str]


def register_model(
    fn: Callable[..., Any] | None = None, *, input_kinds: tuple[str, ...] = INPUT_KINDS, score: str = "mse"
) -> Any:
    """Register a variant under its function name (``@register_model`` or with options).

    Args:
        fn: the variant function; all its parameters must have defaults.
        input_kinds: which inputs the variant accepts, a subset of :data:`INPUT_KINDS`.
            Defaults to all three.
        score: the anomaly score its detectors use by default. Defaults to "mse". Each variant's
            was chosen on a development split of the training data, never on the test split
            (`aezoo zoo compare-scores`, BENCHMARKS.md).
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        name = f.__name__
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        bad = set(input_kinds) - set(INPUT_KINDS)
        if bad or not input_kinds:
            raise ValueError(f"input_kinds must be a non-empty subset of {INPUT_KINDS}. Received: {input_kinds!r}")
        fields = []
        for p in inspect.signature(f).parameters.values():
            if p.default is inspect.Parameter.empty:
                raise ValueError(f"Every parameter of a registered model needs a default; {name}({p.name}) has none.")
            fields.append((p.name, Any, dataclasses.field(default=p.default)))
        class_name = "".join(part.capitalize() for part in name.split("_")) + "Config"
        config_cls = dataclasses.make_dataclass(
            class_name, fields, bases=(ModelConfig,), namespace={"model_name": name}, frozen=True
        )
        config_cls.__module__ = f.__module__
        config_cls.__doc__ = f"Hyperparameters of ``{name}`` (see its docstring)."
        summary = (inspect.getdoc(f) or "").split("\n", 1)[0]
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=f.__module__.rsplit(".", 1)[-1],
            input_kinds=tuple(input_kinds),
            summary=summary,
            score=score,
            fn=f,
            config_cls=config_cls,
        )
        return f

    return decorate(fn) if fn is not None else decorate


def registered() -> dict[str, ModelInfo]:
    """The variants registered so far, by name (``zoo.models`` imports every family, registering them all)."""
    return dict(_REGISTRY)


def load_model(path: str | os.PathLike) -> Any:
    """Load a ``.keras`` file saved from a zoo model (custom layers registered, QAT models too)."""
    from zoo.keras import keras
    from zoo.layers import custom_objects, quantize_scope

    if not str(path).endswith(".keras"):
        raise UserError(f"Expected a .keras model file. Received: path={str(path)!r}")
    if not os.path.isfile(path):
        raise UserError(f"Model file not found. Received: path={str(path)!r}")
    # Inside TFMOT's scope so that `aezoo optimize --method qat` models load as plain files too.
    try:
        with quantize_scope():
            return keras.models.load_model(path, custom_objects=custom_objects(), compile=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise UserError(f"{path} is not a readable .keras model of the zoo (damaged or truncated?): "
                        f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _weights_by_name(model: Any) -> dict[str, Any]:
    """``{"<layer name>/<i>": array}``: the key both Keras versions of a zoo model share."""
    return {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """Write ``model``'s weights by layer name to an .npz that tf_keras and Keras 3 zoo models both load."""
    import numpy as np

    from zoo.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **_weights_by_name(model))


def load_weights(model: Any, source: Any) -> Any:
    """Set ``model``'s weights by layer name from an .npz of :func:`save_weights`, or from another zoo model.

    Every weighted layer of ``model`` must find its weights, of the same shapes: a mismatch
    names the layer. Returns ``model``.
    """
    import numpy as np

    if isinstance(source, (str, os.PathLike)):
        with np.load(source, allow_pickle=False) as data:
            stored = {k: data[k] for k in data.files}
    else:
        stored = _weights_by_name(source)
    for layer in model.layers:
        want = layer.get_weights()
        got = [stored.get(f"{layer.name}/{i}") for i in range(len(want))]
        if any(g is None or g.shape != w.shape for g, w in zip(got, want)):
            raise UserError(f"the weights of layer {layer.name!r} are missing or of another shape "
                            f"(expected {[w.shape for w in want]}); is the source the same variant with the same parameters?")
        if want:
            layer.set_weights(got)
    return model


# Per weighted layer, a full-int8 TFLite file stores 1 byte per weight and, per output
# channel, an int32 bias plus per-channel scale/zero point (float32 + int64) for the
# weights and for the bias: 4 + 12 + 12 bytes. The rest (ops, shape arithmetic of a
# dynamic batch, activation quantization; tensor names are stripped) came to about
# 0.73 KB per weighted layer when the default variants were converted (TF 2.21).
_BYTES_PER_CHANNEL = 28
_BYTES_PER_LAYER = 730
_WEIGHTED = ("Dense", "Conv2D", "Conv2DTranspose")  # the temporal variants are (k, 1) Conv2D layers too
# Layers that the deterministic (inference) graph never reaches, so TFLite drops them.
_TRAINING_ONLY = ("z_log_var",)


def int8_size_estimate(model: Any) -> int:
    """Estimate the bytes of a post-training full-int8 TFLite file of ``model``'s inference graph.

    Counts weights at 1 byte and per-channel quantization data per output channel
    (see the constants above); within 1% of measured sizes for the zoo's default shapes
    once the weights are trained (0.04-0.97%, every variant at 28x28x1 and 64x3). An
    untrained model converts smaller: its all-zero biases share one buffer.
    """
    total = 0
    for layer in model.layers:
        if type(layer).__name__ not in _WEIGHTED or layer.name in _TRAINING_ONLY:
            continue
        kernel = layer.kernel
        channels = kernel.shape[-2] if type(layer).__name__ == "Conv2DTranspose" else kernel.shape[-1]
        total += math.prod(kernel.shape) + _BYTES_PER_CHANNEL * channels + _BYTES_PER_LAYER
    return total
