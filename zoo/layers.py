"""The zoo's custom layers, their QAT annotations, and quantization helpers.

Only three behaviours need custom layers; everything else is a built-in Keras
layer that TFMOT's default 8-bit registry already knows:

- ``Corruption``: denoising noise, active only when ``training=True``.
- ``Sampling``: the VAE reparameterization and its KL term.
- ``SparsityPenalty``: an identity that adds the sparse AE's activity penalty.

All three are identities (or drop out) in inference, so each carries a no-op
``QuantizeConfig`` and says it holds no prunable weights. Random numbers come
from ``tf.random`` ops: Keras-3-style random ops become Flex ops that LiteRT
cannot run (and in inference no random op is traced at all).

Penalty scaling: training uses loss "mse", the per-pixel mean of the squared
error. The extra terms are added per image divided by ``D`` (the number of input
values), so the total loss is ``(SSE + penalty) / D`` averaged over the batch:
the ratio between reconstruction and penalty does not depend on the image size.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from zoo.keras import keras, tf

import tensorflow_model_optimization as tfmot  # noqa: E402  (after zoo.keras: Keras 2)

PACKAGE = "aezoo"
CORRUPTIONS = ("gaussian", "salt_pepper", "mask")
SPARSITY_KINDS = ("l1", "kl")

_QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
_PrunableLayer = tfmot.sparsity.keras.PrunableLayer


def _smart_cond(pred: Any, true_fn: Any, false_fn: Any) -> Any:
    # A Python bool picks a branch at trace time, so the inference graph holds no random op.
    return tf.__internal__.smart_cond.smart_cond(pred, true_fn, false_fn)


@keras.saving.register_keras_serializable(package=PACKAGE)
class NoOpQuantizeConfig(_QuantizeConfig):
    """QAT annotation for layers that are identities at inference: nothing to quantize."""

    def get_weights_and_quantizers(self, layer: Any) -> list:
        return []

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
        pass

    def get_output_quantizers(self, layer: Any) -> list:
        return []

    def get_config(self) -> dict:
        return {}


class _ZooLayer(keras.layers.Layer, _PrunableLayer):
    """The tf_keras base of the custom layers: no prunable weights, a no-op QAT annotation."""

    def get_prunable_weights(self) -> list:
        return []

    def quantize_config(self) -> NoOpQuantizeConfig:
        """The QuantizeConfig ``qat_model`` annotates this layer with."""
        return NoOpQuantizeConfig()

    def _training(self, training: Any) -> Any:
        # tf_keras passes training=None when called outside fit(); fall back to the learning phase.
        return keras.backend.learning_phase() if training is None else training


class CorruptionBody:
    """Corrupt the input while training; identity in inference (the ``Corruption`` layer).

    Args:
        kind: "gaussian" (add ``strength`` * N(0, 1), clipped to [0, 1]),
            "salt_pepper" (a ``strength`` fraction of values set to 0 or 1, half each)
            or "mask" (a ``strength`` fraction of values set to 0).
        strength: noise standard deviation or corrupted fraction, in [0, 1].
    """

    def __init__(self, kind: str = "gaussian", strength: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.strength = float(strength)

    def call(self, inputs: Any, training: Any = None) -> Any:
        return _smart_cond(self._training(training), lambda: self._corrupt(inputs), lambda: inputs)

    def _corrupt(self, x: Any) -> Any:
        if self.kind == "gaussian":
            return tf.clip_by_value(x + self.strength * tf.random.normal(tf.shape(x), dtype=x.dtype), 0.0, 1.0)
        hit = tf.random.uniform(tf.shape(x), dtype=x.dtype) < self.strength
        if self.kind == "salt_pepper":
            salt = tf.cast(tf.random.uniform(tf.shape(x), dtype=x.dtype) < 0.5, x.dtype)
            return tf.where(hit, salt, x)
        if self.kind == "mask":
            return tf.where(hit, tf.zeros_like(x), x)
        raise ValueError(f"Unknown corruption kind. Expected one of {CORRUPTIONS}. Received: kind={self.kind!r}")

    def get_config(self) -> dict:
        return {**super().get_config(), "kind": self.kind, "strength": self.strength}


class SamplingBody:
    """VAE reparameterization on ``[z_mean, z_log_var]``; adds the weighted KL term (the ``Sampling`` layer).

    Training: ``z_mean + exp(0.5 * z_log_var) * tf.random.normal``. Inference:
    ``z_mean`` (deterministic export). The KL divergence to N(0, I), summed over the
    latent units, is added as ``beta * scale * mean_over_batch(KL)``; builders pass
    ``scale = 1 / D`` to match the per-pixel "mse" loss (see the module docstring).
    """

    def __init__(self, beta: float = 1.0, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.scale = float(scale)

    def call(self, inputs: Any, training: Any = None) -> Any:
        z_mean, z_log_var = inputs
        self.add_loss(self.beta * self.scale * tf.reduce_mean(kl_divergence(z_mean, z_log_var)))

        def sample() -> Any:
            return z_mean + tf.exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean), dtype=z_mean.dtype)

        return _smart_cond(self._training(training), sample, lambda: z_mean)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta": self.beta, "scale": self.scale}


def kl_divergence(z_mean: Any, z_log_var: Any) -> Any:
    """Per-example KL(N(z_mean, exp(z_log_var)) || N(0, I)), summed over latent units (nats)."""
    return -0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=-1)


class SparsityPenaltyBody:
    """Identity on the code that adds a sparsity penalty, in training and evaluation (the ``SparsityPenalty`` layer).

    Args:
        kind: "l1" (sum of |code| per example) or "kl" (sum over units of
            KL(rho || mean activation over the batch); needs codes in (0, 1)).
        weight: penalty weight.
        rho: target mean activation for "kl".
        scale: multiplies the penalty; builders pass ``1 / D`` (see the module docstring).
    """

    def __init__(self, kind: str = "kl", weight: float = 1.0, rho: float = 0.05, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.weight = float(weight)
        self.rho = float(rho)
        self.scale = float(scale)

    def call(self, inputs: Any) -> Any:
        if self.kind == "l1":
            penalty = tf.reduce_mean(tf.reduce_sum(tf.abs(inputs), axis=-1))
        elif self.kind == "kl":
            eps = 1e-6
            rho_hat = tf.clip_by_value(tf.reduce_mean(inputs, axis=0), eps, 1.0 - eps)
            rho = self.rho
            penalty = tf.reduce_sum(rho * tf.math.log(rho / rho_hat) + (1 - rho) * tf.math.log((1 - rho) / (1 - rho_hat)))
        else:
            raise ValueError(f"Unknown sparsity kind. Expected one of {SPARSITY_KINDS}. Received: kind={self.kind!r}")
        self.add_loss(self.weight * self.scale * penalty)
        return inputs

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kind": self.kind,
            "weight": self.weight,
            "rho": self.rho,
            "scale": self.scale,
        }


# The behaviour of each layer is written once (the *Body classes); each Keras gets its own subclass of it.
BODIES = {"Corruption": CorruptionBody, "Sampling": SamplingBody, "SparsityPenalty": SparsityPenaltyBody}


def _subclasses(base: type, register: Any, module: str) -> dict[str, type]:
    classes = {}
    for name, body in BODIES.items():
        cls = type(name, (body, base), {"__module__": module, "__doc__": body.__doc__})
        classes[name] = register(package=PACKAGE)(cls)
    return classes


_tf_keras = _subclasses(_ZooLayer, keras.saving.register_keras_serializable, __name__)
Corruption, Sampling, SparsityPenalty = (_tf_keras[n] for n in BODIES)
CUSTOM_LAYERS = (Corruption, Sampling, SparsityPenalty)
_keras3: dict[str, type] = {}


def keras3_layers() -> dict[str, type]:
    """The custom layers for Keras 3 (same bodies, Keras 3 base; no TFMOT annotation: TFMOT needs tf_keras)."""
    if not _keras3:
        from zoo.keras import keras3

        k3 = keras3()

        class _Keras3Layer(k3.layers.Layer):
            def _training(self, training: Any) -> Any:
                return bool(training)  # Keras 3 passes a bool, or None outside fit: inference

        _keras3.update(_subclasses(_Keras3Layer, k3.saving.register_keras_serializable, __name__))
    return _keras3


def layer(name: str) -> type:
    """The custom layer ``name`` for the Keras the variants are being built with (``zoo.keras.building_with``)."""
    from zoo.keras import active_version

    return _tf_keras[name] if active_version() == 2 else keras3_layers()[name]


def custom_objects() -> dict[str, Any]:
    """Return the custom classes a zoo ``.keras`` file or QAT model may contain, by name."""
    classes = (*CUSTOM_LAYERS, NoOpQuantizeConfig)
    objects = {c.__name__: c for c in classes}
    objects.update({f"{PACKAGE}>{c.__name__}": c for c in classes})
    return objects


@contextlib.contextmanager
def quantize_scope() -> Iterator[None]:
    """TFMOT's ``quantize_scope`` with the zoo's custom layers and QuantizeConfigs.

    Use it around ``quantize_apply`` and when loading a QAT model.
    """
    with tfmot.quantization.keras.quantize_scope(custom_objects()):
        yield


def qat_model(model: Any, scheme: Any = None) -> Any:
    """Return a quantization-aware copy of a tf_keras zoo model (weights copied, uncompiled).

    Every layer is annotated: built-in ones with TFMOT's default 8-bit scheme,
    the zoo's custom layers with their no-op ``QuantizeConfig``; then
    ``quantize_apply`` runs inside ``quantize_scope()``.

    Args:
        model: a zoo model.
        scheme: a TFMOT ``QuantizeScheme`` for ``quantize_apply``, e.g. a pruning- or
            cluster-preserving one (``training.compress``). Defaults to None (TFMOT's
            default 8-bit scheme).
    """
    from zoo.errors import UserError

    if not isinstance(model, keras.Model):
        raise UserError("QAT and the other TFMOT methods need a tf_keras model: the TensorFlow Model Optimization "
                        "toolkit has no Keras 3 support (tensorflow/model-optimization #1119). Build the model with "
                        f"zoo.build(name) (keras_version=2, the default). Received: a {type(model).__module__} model")
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer: Any) -> Any:
        copy = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, CUSTOM_LAYERS):
            return annotate(copy, quantize_config=layer.quantize_config())
        return annotate(copy)

    annotated = keras.models.clone_model(model, clone_function=clone)
    # clone_model re-initializes weights; the annotated copy must start from the trained ones.
    annotated.set_weights(model.get_weights())
    with quantize_scope():
        if scheme is None:
            return tfmot.quantization.keras.quantize_apply(annotated)
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
