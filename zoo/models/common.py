"""Building blocks shared by the families, argument checks, and model surgery.

Layer names are stable across variants so later stages (TFMOT wrappers, TFLite
tensors, ``encoder``/``decoder``) can find them: encoder layers start with
``enc_``, the code layer is ``latent`` (VAE: ``z_mean``/``z_log_var``, sampled
``z``), and every decoder layer starts with ``dec_``.

Input kinds, by the rank of ``input_shape``: "image" (height, width, channels) with
values in [0, 1], "series" (window, channels) of standardized sensor readings, and
"vector" (features,). Images end in a sigmoid; series in a linear layer (standardized
values are unbounded). Temporal convolutions are 2-D convolutions with (k, 1) kernels
over a (window, 1, channels) view: TFMOT quantizes Conv2D, not Conv1D, and TFLite
converts Conv1D to exactly this anyway.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from zoo.errors import UserError
from zoo.keras import building_with, version_of
from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.layers import CORRUPTIONS, SPARSITY_KINDS, layer

CODE_LAYERS = ("z_mean", "latent")  # encoder output, in order of preference
DECODER_PREFIX = "dec_"
# The hidden layers the nap score reads (besides the code): the encoder's convolutions and dense layers.
HIDDEN_PREFIXES = ("enc_conv", "enc_dense")
VAE_LAYERS = ("z_mean", "z_log_var", "z")


# ---------------------------------------------------------------- argument checks
def check_input_shape(name: str, input_shape: Any, kinds: Sequence[str]) -> tuple[int, ...]:
    """Return ``input_shape`` as a tuple of positive ints, or raise a UserError.

    ``kinds`` is what the variant accepts: "image" = (height, width, channels),
    "series" = (window, channels), "vector" = (features,).
    """
    try:
        shape = tuple(int(d) for d in input_shape)
        ok = all(d > 0 and d == float(e) for d, e in zip(shape, input_shape))
    except (TypeError, ValueError):
        ok = False
    if ok and len(shape) == 3 and "image" in kinds:
        if min(shape[:2]) < 8:
            raise UserError(f"{name} needs images of at least 8x8 pixels. Received: input_shape={input_shape!r}")
        return shape
    if ok and len(shape) == 2 and "series" in kinds:
        if shape[0] < 4:
            raise UserError(f"{name} needs windows of at least 4 samples. Received: input_shape={input_shape!r}")
        return shape
    if ok and len(shape) == 1 and "vector" in kinds:
        return shape
    expected = " or ".join({"image": "an image shape (height, width, channels)", "series": "a series window shape "
                            "(window, channels)", "vector": "a vector shape (features,)"}[k] for k in kinds)
    raise UserError(f"{name} needs {expected}. Received: input_shape={input_shape!r}")


def check_int(name: str, arg: str, value: Any, low: int = 1) -> int:
    """Return ``value`` if it is an int >= ``low``, else raise a UserError quoting it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{name}: {arg} must be an integer >= {low}. Received: {arg}={value!r}")
    return value


def check_ints(name: str, arg: str, value: Any, low: int = 1) -> tuple[int, ...]:
    """Return ``value`` as a non-empty tuple of ints >= ``low``, else raise a UserError."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value):
        return tuple(value)
    raise UserError(f"{name}: {arg} must be a non-empty list of integers >= {low}. Received: {arg}={value!r}")


def check_float(name: str, arg: str, value: Any, low: float, high: float | None = None, *, open_low: bool = False) -> float:
    """Return ``value`` as a float in [low, high] (or (low, high] with ``open_low``), else raise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if (value > low if open_low else value >= low) and (high is None or value <= high):
            return float(value)
    bounds = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'}{']' if high is not None else ')'}"
    raise UserError(f"{name}: {arg} must be a number in {bounds}. Received: {arg}={value!r}")


def check_choice(name: str, arg: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a UserError listing them."""
    if value not in choices:
        raise UserError(f"{name}: {arg} must be one of {', '.join(map(repr, choices))}. Received: {arg}={value!r}")
    return value


def check_corruption(name: str, corruption: Any, strength: Any) -> tuple[str, float]:
    """Validate a denoising corruption kind and its strength (std or fraction, in (0, 1])."""
    return check_choice(name, "corruption", corruption, CORRUPTIONS), check_float(name, "strength", strength, 0.0, 1.0, open_low=True)


def check_sparsity(name: str, sparsity: Any, weight: Any, rho: Any) -> tuple[str, float, float]:
    """Validate a sparsity penalty kind, its weight (>= 0) and target rho (in (0, 1))."""
    kind = check_choice(name, "sparsity", sparsity, SPARSITY_KINDS)
    weight = check_float(name, "sparsity_weight", weight, 0.0)
    rho = check_float(name, "rho", rho, 0.0, 1.0, open_low=True)
    if rho >= 1.0:
        raise UserError(f"{name}: rho must be a number in (0, 1). Received: rho={rho!r}")
    return kind, weight, rho


def output_activation(shape: tuple[int, ...]) -> str:
    """The decoder's last activation for inputs of ``shape``: linear for series windows, else sigmoid."""
    return "linear" if len(shape) == 2 else "sigmoid"


# ---------------------------------------------------------------- blocks
def dense_encoder(x: Any, hidden_units: Sequence[int]) -> Any:
    """Flatten (if needed) and apply ReLU Dense layers ``enc_dense1..n``."""
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="enc_flatten")(x)
    for i, units in enumerate(hidden_units, 1):
        x = keras.layers.Dense(units, activation="relu", name=f"enc_dense{i}")(x)
    return x


def dense_decoder(z: Any, hidden_units: Sequence[int], output_shape: tuple[int, ...]) -> Any:
    """Mirror of ``dense_encoder``: ReLU ``dec_dense1..n``, ``dec_out`` (:func:`output_activation`), ``dec_reshape``."""
    x = z
    for i, units in enumerate(reversed(hidden_units), 1):
        x = keras.layers.Dense(units, activation="relu", name=f"dec_dense{i}")(x)
    x = keras.layers.Dense(math.prod(output_shape), activation=output_activation(output_shape), name="dec_out")(x)
    if len(output_shape) > 1:
        x = keras.layers.Reshape(output_shape, name="dec_reshape")(x)
    return x


def conv_encoder(x: Any, filters: Sequence[int], kernel_size: Any, strides: Any = 2) -> tuple[Any, list[tuple[int, int]]]:
    """Strided ReLU convolutions ``enc_conv1..n`` then ``enc_flatten`` (``strides`` 2, or (2, 1) along time only).

    Returns the flattened features and the spatial size before each convolution
    (the decoder's targets, so odd sizes like 7 come back exactly).
    """
    sizes = []
    for i, f in enumerate(filters, 1):
        sizes.append(tuple(x.shape[1:3]))
        x = keras.layers.Conv2D(f, kernel_size, strides=strides, padding="same", activation="relu", name=f"enc_conv{i}")(x)
    last = tuple(x.shape[1:])
    return keras.layers.Flatten(name="enc_flatten")(x), [*sizes, last]


def conv_decoder(z: Any, filters: Sequence[int], kernel_size: Any, sizes: list, channels: int, strides: Any = 2,
                 last_activation: str = "sigmoid") -> Any:
    """Mirror of ``conv_encoder``: ``dec_dense``, ``dec_reshape``, strided ``dec_deconv1..n``.

    The last transposed convolution has ``channels`` filters and ``last_activation``.
    ``output_padding`` (0 or 1 per strided axis) makes each step hit the encoder's size.
    """
    step = (strides, strides) if isinstance(strides, int) else tuple(strides)
    last = sizes[-1]
    x = keras.layers.Dense(math.prod(last), activation="relu", name="dec_dense")(z)
    x = keras.layers.Reshape(last, name="dec_reshape")(x)
    out_filters = [*reversed(filters[:-1]), channels]
    targets = list(reversed(sizes[:-1]))
    for i, (f, target) in enumerate(zip(out_filters, targets), 1):
        current = x.shape[1:3]
        # 'same' padding, odd kernel, explicit output_padding: out = stride * (in - 1) + 1 + output_padding.
        pad = tuple(int(t - (s * (c - 1) + 1)) for t, c, s in zip(target, current, step))
        last_layer = i == len(out_filters)
        x = keras.layers.Conv2DTranspose(
            f,
            kernel_size,
            strides=step,
            padding="same",
            output_padding=pad,
            activation=last_activation if last_layer else "relu",
            name=f"dec_deconv{i}",
        )(x)
    return x


def temporal_encoder(inputs: Any, filters: Sequence[int], kernel_size: int) -> tuple[Any, list]:
    """``enc_reshape`` to (window, 1, channels), then ``conv_encoder`` with (k, 1) kernels striding time only."""
    window, channels = tuple(inputs.shape[1:])
    x = keras.layers.Reshape((window, 1, channels), name="enc_reshape")(inputs)
    return conv_encoder(x, filters, (kernel_size, 1), strides=(2, 1))


def temporal_decoder(z: Any, filters: Sequence[int], kernel_size: int, sizes: list, shape: tuple[int, int]) -> Any:
    """Mirror of ``temporal_encoder``: ``conv_decoder`` along time, a linear last layer, ``dec_out`` back to (window, channels)."""
    x = conv_decoder(z, filters, (kernel_size, 1), sizes, shape[-1], strides=(2, 1), last_activation="linear")
    return keras.layers.Reshape(shape, name="dec_out")(x)


def check_odd(name: str, arg: str, value: Any) -> int:
    """Return ``value`` if it is an odd int >= 1 (a 'same' transposed convolution mirrors only odd kernels exactly)."""
    if check_int(name, arg, value) % 2 == 0:
        raise UserError(f"{name}: {arg} must be an odd integer. Received: {arg}={value!r}")
    return value


def _decoder3(model: Any, dec_layers: list) -> Any:
    """Keras 3: the decoder layers re-applied in order to a new code Input (each zoo decoder is a chain)."""
    with building_with(3):
        x = code = keras.Input(shape=tuple(dec_layers[0].input.shape[1:]), name="code")
        for lay in dec_layers:
            x = lay(x)
        return keras.Model(code, x, name=f"{model.name}_decoder")


def corrupt(x: Any, corruption: str, strength: float) -> Any:
    """The denoising corruption layer ``corrupt`` (identity in inference)."""
    return layer("Corruption")(corruption, strength, name="corrupt")(x)


def sparsify(code: Any, kind: str, weight: float, rho: float, input_size: int) -> Any:
    """The sparsity penalty layer ``sparsity`` on the code, scaled by 1 / input size."""
    return layer("SparsityPenalty")(kind, weight, rho, scale=1.0 / input_size, name="sparsity")(code)


# ---------------------------------------------------------------- model surgery
def code_layer(model: Any) -> Any:
    """Return the layer whose output is the model's code (``z_mean`` or ``latent``)."""
    names = {layer.name for layer in model.layers}
    for name in CODE_LAYERS:
        if name in names:
            return model.get_layer(name)
    raise UserError(f"Model {model.name!r} has no code layer (expected one named {' or '.join(CODE_LAYERS)}).")


def contract_problems(model: Any, name: str) -> list[str]:
    """What in ``model`` breaks the zoo's layer-naming contract for variant ``name`` ([] when nothing).

    The contract (what ``encoder``, ``decoder``, the scores and TFMOT's wrappers rely on): the model is named
    ``name``; its input layer is ``input``; its code layer is ``latent``, or for a VAE ``z_mean``, ``z_log_var``
    and the sampled ``z``; at least one encoder layer is ``enc_conv*`` or ``enc_dense*`` (the nap score reads
    them); decoder layers start with ``dec_`` and the last one is the output.
    """
    names = [layer.name for layer in model.layers]
    problems = []
    if model.name != name:
        problems.append(f"the model is named {model.name!r}: expected {name!r} (the variant's name)")
    if not names or names[0] != "input":
        problems.append(f"its first layer is {names[0] if names else None!r}: expected the input layer named 'input'")
    vae = [n for n in VAE_LAYERS if n in names]
    if "latent" not in names and len(vae) != len(VAE_LAYERS):
        problems.append("it has no code layer: expected one named 'latent' (or, for a VAE, 'z_mean', 'z_log_var' and "
                        f"'z'). Received layers: {names}")
    if not any(n.startswith(HIDDEN_PREFIXES) for n in names):
        problems.append(f"no encoder layer is named {' or '.join(p + '*' for p in HIDDEN_PREFIXES)} (the nap score "
                        f"reads them). Received layers: {names}")
    if not names or not names[-1].startswith(DECODER_PREFIX):
        problems.append(f"its output layer is {names[-1] if names else None!r}: expected a decoder layer named "
                        f"{DECODER_PREFIX}*")
    return problems


def is_variational(model: Any) -> bool:
    """True if the model is a VAE (has ``z_mean`` and ``z_log_var`` layers)."""
    names = {layer.name for layer in model.layers}
    return {"z_mean", "z_log_var"} <= names


def encoder(model: Any) -> Any:
    """Return ``input -> code`` sharing the model's layers (VAE: the mean ``z_mean``)."""
    with building_with(version_of(model)):
        return keras.Model(model.inputs, code_layer(model).output, name=f"{model.name}_encoder")


def _key(tensor: Any) -> tuple[str, int, int]:
    layer, node_index, tensor_index = tensor._keras_history
    return layer.name, node_index, tensor_index


def decoder(model: Any) -> Any:
    """Return ``code -> reconstruction``: the ``dec_*`` layers re-applied to a new Input.

    The layers (and weights) are shared with ``model``; works on loaded models too.
    """
    dec_layers = [lay for lay in model.layers if lay.name.startswith(DECODER_PREFIX)]
    if not dec_layers:
        raise UserError(f"Model {model.name!r} has no decoder layers (named {DECODER_PREFIX}*).")
    if version_of(model) == 3:
        return _decoder3(model, dec_layers)
    # Node 0 of each layer is its place in ``model``; calling it below adds node 1, 2, ...
    first_in = dec_layers[0].get_input_at(0)
    code = keras.Input(shape=tuple(first_in.shape[1:]), name="code")
    tensors = {_key(first_in): code}
    for layer in dec_layers:
        inputs, output = layer.get_input_at(0), layer.get_output_at(0)
        if isinstance(inputs, (list, tuple)):
            out = layer([tensors[_key(t)] for t in inputs])
        else:
            out = layer(tensors[_key(inputs)])
        tensors[_key(output)] = out
    return keras.Model(code, tensors[_key(model.output)], name=f"{model.name}_decoder")
