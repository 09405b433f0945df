"""Score kinds on the training side: each is one small unit that fits on normal training data and builds a graph.

A score kind has three parts, and only the first two live here:

- ``fit(model, x_train)``: its parameters, from normal training images only;
- ``graph(model)``: a Keras model from the input to the named outputs the score
  reads (the reconstruction, or whitened hidden features, ...). This graph is what
  ``training.convert`` turns into the int8 TFLite model, so the device runs it too;
- the reduction of those outputs to one number per image, in numpy:
  ``edge.scoring`` (the device computes exactly the same).

``score(x) = edge.scoring.compute(kind, x, graph(model)(x), params)`` for the float
Keras model, and ``Detector.score(x)`` is the same function on the TFLite outputs.

Register a new kind with ``@register_score`` on a subclass of :class:`Score`, and its
reduction with ``edge.scoring.score_kind``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar

import numpy as np

import zoo
from edge.scoring import SCORE_KINDS as DEVICE_KINDS
from edge.scoring import compute
from zoo.errors import NotFittedError, UserError

_SCORES: dict[str, type["Score"]] = {}
PREDICT_BATCH = 512


def register_score(cls: type["Score"]) -> type["Score"]:
    """Register a :class:`Score` subclass under its ``kind`` (which edge.scoring must know too)."""
    if cls.kind not in DEVICE_KINDS:
        raise AssertionError(f"score {cls.kind!r} has no numpy reduction in edge.scoring")
    _SCORES[cls.kind] = cls
    return cls


def score_kinds() -> tuple[str, ...]:
    """The registered score kinds."""
    return tuple(_SCORES)


def make_score(kind: str, options: dict | None = None) -> "Score":
    """A new, unfitted score of ``kind`` with ``options``; unknown kinds or options are a UserError."""
    if kind not in _SCORES:
        raise UserError(f"unknown score kind; expected one of {', '.join(_SCORES)}. Received: score={kind!r}")
    cls = _SCORES[kind]
    options = dict(options or {})
    valid = [f.name for f in dataclasses.fields(cls.Options)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UserError(f"score {kind!r} has no option(s) {unknown}; its options are {valid or 'none'}. "
                        f"Received: score_options={options}")
    return cls(cls.Options(**options))


def builds_with_models_keras(method: Callable) -> Callable:
    """Run a method that builds Keras graphs around ``model`` with that model's Keras: a score works on tf_keras
    models (the zoo's default, what TFMOT compresses) and on Keras 3 models (a user's own ``fit``) alike."""

    @functools.wraps(method)
    def wrapper(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        from zoo.keras import building_with, version_of

        with building_with(version_of(model)):
            return method(self, model, *args, **kwargs)

    return wrapper


class Score:
    """Base of the score kinds: no parameters, the autoencoder's reconstruction as the only output."""

    kind: ClassVar[str] = ""
    # The full-integer mode the zoo exports this kind with: int8 runs on XNNPACK and under TFLite Micro.
    device_quant: ClassVar[str] = "int8"

    @dataclasses.dataclass
    class Options:
        """A kind's options (none by default)."""

    def __init__(self, options: Any = None):
        self.options = options if options is not None else self.Options()
        self.check_options()
        self.state_: dict[str, np.ndarray] = {}

    def check_options(self) -> None:
        """Raise UserError for a bad option value (subclasses with options override it)."""

    def check_model(self, model: Any) -> None:
        """Raise UserError when ``model`` cannot give this score (e.g. ELBO of a plain autoencoder)."""

    def fit(self, model: Any, x_train: np.ndarray) -> "Score":
        """Fit the score's parameters on normal training images (none for this kind)."""
        self.check_model(model)
        return self

    @builds_with_models_keras
    def graph(self, model: Any) -> Any:
        """The Keras model ``input -> {name: output}`` whose outputs ``edge.scoring`` reduces."""
        from zoo.keras import active as keras

        self.check_model(model)
        return keras.Model(model.inputs, {"reconstruction": model.outputs[0]}, name=f"{model.name}_{self.kind}")

    def params(self) -> dict:
        """JSON parameters of the numpy reduction (stored in threshold.json and detector.json)."""
        return {}

    def feature_graph(self, model: Any) -> Any:
        """The graph up to the score's fitted head (``{"features": ...}``), or None for a kind without one.

        An int8 export refits the head on the features the int8 model computes (``fit_head``),
        so the head sees the numbers the device will give it.
        """
        return None

    def fit_head(self, features: np.ndarray, *, noise_var: float = 0.0) -> "Score":
        """Refit the head on ``features`` of normal training inputs (kinds without a head have nothing to refit);
        ``noise_var``: the variance of the features' rounding, for int8 ones."""
        return self

    def score(self, model: Any, x: np.ndarray, *, graph: Any = None, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """One float64 score per image of ``x``: the graph's outputs reduced by ``edge.scoring.compute``."""
        graph = graph if graph is not None else self.graph(model)
        x = np.asarray(x, np.float32)
        outputs = graph.predict(x, batch_size=batch_size, verbose=0) if len(x) else {}
        return compute(self.kind, x, outputs, self.params()) if len(x) else np.empty(0)

    # -- persistence: options and parameters in JSON, arrays in an .npz -------------------------------------

    def to_dict(self) -> dict:
        """``{"kind", "options", "params"}``: the one record of a score (threshold.json's "score", detector.json's)."""
        return {"kind": self.kind, "options": dataclasses.asdict(self.options), "params": self.params()}

    def save_state(self, path: Any) -> None:
        """Write the fitted arrays (if any) to ``path`` (.npz)."""
        from zoo.files import atomic_path

        if self.state_:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **self.state_)

    def load_state(self, path: Any) -> "Score":
        """Read the arrays written by :meth:`save_state`."""
        if self.needs_state():
            try:
                with np.load(path, allow_pickle=False) as data:
                    self.state_ = {k: data[k] for k in data.files}
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot read the {self.kind} score's parameters from {path}: {exc}") from None
        return self

    def needs_state(self) -> bool:
        """True when the kind has fitted arrays."""
        return False


@register_score
class MSE(Score):
    """Mean squared reconstruction error."""

    kind = "mse"


@register_score
class MAE(Score):
    """Mean absolute reconstruction error."""

    kind = "mae"


@register_score
class SSIM(Score):
    """1 - structural similarity of image and reconstruction."""

    kind = "ssim"

    def check_model(self, model: Any) -> None:
        if len(model.inputs[0].shape) != 4:
            raise UserError(f"the 'ssim' score compares images; {model.name} takes vectors {tuple(model.inputs[0].shape[1:])}. "
                            "Use mse or mae.")


@register_score
class ELBO(Score):
    """Negative ELBO of a variational model, decoded at z_mean (deterministic, as on the device)."""

    kind = "elbo"

    def check_model(self, model: Any) -> None:
        if not zoo.is_variational(model):
            raise UserError(f"the 'elbo' score needs a variational model (vae, conv_vae: layers z_mean and z_log_var). "
                            f"Received: model {model.name!r}")

    @builds_with_models_keras
    def graph(self, model: Any) -> Any:
        from zoo.keras import active as keras

        self.check_model(model)
        outputs = {"reconstruction": model.outputs[0], "z_mean": model.get_layer("z_mean").output,
                   "z_log_var": model.get_layer("z_log_var").output}
        return keras.Model(model.inputs, outputs, name=f"{model.name}_elbo")


POOLINGS = ("gap", "fine")
# A feature's spread is floored at this fraction of the largest spread in its part (a layer): a nearly dead
# channel would otherwise be blown up by standardization, and in int8 it holds mostly rounding noise.
REL_STD_FLOOR = 0.05
# The whitening of nap features whose covariance is singular (constant on the normal data): variances floored at this.
VARIANCE_FLOOR = 1e-3


def _floored_var(v: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Per-feature variance, each part's floored at ``REL_STD_FLOOR`` of its largest standard deviation."""
    var = v.var(axis=0)
    for a, b in zip(np.cumsum([0, *sizes[:-1]]), np.cumsum(sizes)):
        floor = (REL_STD_FLOOR * np.sqrt(var[a:b].max())) ** 2
        var[a:b] = np.maximum(var[a:b], max(floor, 1e-12))
    return var


@register_score
class NAP(Score):
    """Mahalanobis distance of hidden activations along the encoder, of an image and of its reconstruction.

    RaPP's NAP (Kim et al., ICLR 2020) in a form that fits a microcontroller: the
    reconstruction goes back through the encoder; the activations of every encoder
    layer (convolutions pooled per channel) and of the code, for the image and for
    its reconstruction, are compared; the differences (and, with ``joint``, the
    image's own activations) are centred and whitened with the inverse Cholesky
    factor of their Ledoit-Wolf covariance on normal training images. The whitening
    is a Dense layer inside the exported graph; the device sums the squares.
    """

    kind = "nap"
    # Whitening differences of nearly equal activations magnifies one-step int8 rounding: XNNPACK and the
    # reference kernels disagreed on 0.2-7% of the verdicts; with 16-bit activations on none, and the AUROC
    # is near float (BENCHMARKS.md, "Device fidelity", development data only).
    device_quant = "int16x8"

    @dataclasses.dataclass
    class Options:
        """``layers``: how many of the last encoder layers (the code counts as one) are compared;
        ``pool``: "gap" (mean per channel of a convolution) or "fine" (the last convolution
        2x2-average-pooled); ``joint``: also the image's own features, not only the differences."""

        layers: int = 2
        pool: str = "gap"
        joint: bool = True

    def check_options(self) -> None:
        if self.options.pool not in POOLINGS:
            raise UserError(f"nap: pool must be one of {', '.join(POOLINGS)}. Received: pool={self.options.pool!r}")
        if not isinstance(self.options.joint, bool):
            raise UserError(f"nap: joint must be true or false. Received: joint={self.options.joint!r}")
        layers = self.options.layers
        if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= 16:
            raise UserError(f"nap: layers must be an integer in 1..16. Received: layers={layers!r}")

    def needs_state(self) -> bool:
        return True

    def _activations(self, model: Any) -> Any:
        """``input -> [activations]`` of the last ``layers`` encoder layers (convolutions, dense layers, the code).

        The last two by default, as RaPP's lead in this project: the early layers' pooled
        differences carry little signal and, in int8, mostly rounding noise.
        """
        from zoo.keras import active as keras
        from zoo.models.common import code_layer

        layers = [layer for layer in model.layers if layer.name.startswith(("enc_conv", "enc_dense"))] + [code_layer(model)]
        return keras.Model(model.inputs, [layer.output for layer in layers[-self.options.layers:]], name="nap_activations")

    def _pool(self, a: Any, name: str, last: bool) -> Any:
        from zoo.keras import active as keras

        if len(a.shape) == 2:
            return a
        if self.options.pool == "fine" and last:
            return keras.layers.Flatten(name=f"{name}_flat")(keras.layers.AveragePooling2D(2, padding="same", name=name)(a))
        return keras.layers.GlobalAveragePooling2D(name=name)(a)

    def _pathway(self, model: Any, norms: tuple[list, list] | None = None) -> tuple[Any, Any, Any]:
        """(input, reconstruction, compared vector) as Keras tensors of one graph.

        Per layer: the pooled activations of the image (F) and the pooled difference of the
        activations of image and reconstruction (D), subtracted before pooling so that an
        int8 graph quantizes the (small) difference on its own fine scale. With ``norms``,
        each part is standardized before the concatenation (which has one int8 scale).
        """
        from zoo.keras import active as keras

        acts = self._activations(model)
        x = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="input")
        x_hat = model(x, training=False)
        a_x, a_hat = acts(x), acts(x_hat)
        n = len(a_x)
        f = [self._pool(a, f"nap_f{i}", i == n - 1) for i, a in enumerate(a_x)]
        d = [self._pool(keras.layers.Subtract(name=f"nap_sub{i}")([a, b]), f"nap_d{i}", i == n - 1)
             for i, (a, b) in enumerate(zip(a_x, a_hat))]
        if norms is not None:
            f, d = [nf(p) for nf, p in zip(norms[0], f)], [nd(p) for nd, p in zip(norms[1], d)]
        parts = f + d if self.options.joint else d
        return x, x_hat, keras.layers.Concatenate(name="nap_concat")(parts)

    def _norms(self) -> tuple[list, list]:
        """The fitted standardization layers of the F and D parts."""
        from zoo.keras import active as keras

        st = self.state_
        bounds = np.cumsum([0, *[int(n) for n in st["part_sizes"]]])
        spans = list(zip(bounds[:-1], bounds[1:]))
        return ([keras.layers.Normalization(mean=st["f_mean"][a:b], variance=st["f_var"][a:b], name=f"nap_nf{i}")
                 for i, (a, b) in enumerate(spans)],
                [keras.layers.Normalization(mean=st["d_mean"][a:b], variance=st["d_var"][a:b], name=f"nap_nd{i}")
                 for i, (a, b) in enumerate(spans)])

    @builds_with_models_keras
    def feature_graph(self, model: Any) -> Any:
        """``input -> {"reconstruction", "features"}``: the graph without the whitening head (standardized parts)."""
        from zoo.keras import active as keras

        x, x_hat, v = self._pathway(model, self._norms())
        return keras.Model(x, {"reconstruction": x_hat, "features": v}, name=f"{model.name}_nap_features")

    @builds_with_models_keras
    def fit(self, model: Any, x_train: np.ndarray) -> "NAP":
        from zoo.keras import active as keras

        self.check_model(model)
        x = np.asarray(x_train, np.float32)
        if len(x) < 2:
            raise UserError(f"the nap score needs at least 2 normal training inputs. Received: {len(x)}")
        inp, _, raw = self._pathway(model)
        v = keras.Model(inp, raw).predict(x, batch_size=PREDICT_BATCH, verbose=0).astype(np.float64)
        width = v.shape[1] // 2 if self.options.joint else v.shape[1]
        sizes = self._part_sizes(model)
        f, d = (v[:, :width], v[:, width:]) if self.options.joint else (None, v)
        f_mean, f_var = (f.mean(axis=0), _floored_var(f, sizes)) if f is not None else (np.zeros(width), np.ones(width))
        d_mean, d_var = d.mean(axis=0), _floored_var(d, sizes)
        self.state_ = {"part_sizes": np.asarray(sizes), "f_mean": f_mean.astype(np.float32), "f_var": f_var.astype(np.float32),
                       "d_mean": d_mean.astype(np.float32), "d_var": d_var.astype(np.float32)}
        standardized = (d - d_mean) / np.sqrt(d_var)
        if f is not None:
            standardized = np.concatenate([(f - f_mean) / np.sqrt(f_var), standardized], axis=1)
        return self.fit_head(standardized)

    def _part_sizes(self, model: Any) -> list[int]:
        outs = self._activations(model).outputs
        return [int(t.shape[-1]) if len(t.shape) == 2 or self.options.pool == "gap" or i < len(outs) - 1
                else int(np.prod([-(-int(t.shape[1]) // 2), -(-int(t.shape[2]) // 2), int(t.shape[3])]))
                for i, t in enumerate(outs)]

    def fit_head(self, features: np.ndarray, *, noise_var: float = 0.0) -> "NAP":
        """Fit the whitening on standardized features (the float ones, or those an int8 model computes).

        ``noise_var`` is added to every feature's variance: for int8 features, the variance of a
        rounding step (see ``training.convert.QUANT_NOISE_STEPS``), so a feature that barely moves
        on normal data is not whitened into an amplifier of the kernels' rounding differences.
        """
        from sklearn.covariance import LedoitWolf

        v = np.asarray(features, np.float64)
        cov = LedoitWolf(assume_centered=False).fit(v).covariance_ + np.eye(v.shape[1]) * float(noise_var)
        # precision = L L^T, so (v - m)^T precision (v - m) = ||L^T (v - m)||^2: a Dense layer.
        try:
            whiten = np.linalg.cholesky(np.linalg.inv(cov))
        except np.linalg.LinAlgError:
            # Singular when features do not vary on normal data (an int8 model can round weak ones to one
            # value each): floor every variance at a small fraction of the features' unit scale.
            cov = cov + np.eye(len(cov)) * VARIANCE_FLOOR * max(float(np.trace(cov)) / len(cov), 1.0)
            whiten = np.linalg.cholesky(np.linalg.inv(cov))
        self.state_ = {**self.state_, "mean": v.mean(axis=0).astype(np.float32), "whiten": whiten.astype(np.float32)}
        return self

    @builds_with_models_keras
    def graph(self, model: Any) -> Any:
        from zoo.keras import active as keras

        self.check_model(model)
        if "whiten" not in self.state_:
            raise NotFittedError("the nap score is not fitted yet: call fit(model, x_train) with normal training inputs first")
        x, x_hat, v = self._pathway(model, self._norms())
        mean, whiten = self.state_["mean"], self.state_["whiten"]
        if whiten.shape != (v.shape[-1], v.shape[-1]) or mean.shape != (v.shape[-1],):
            raise UserError(f"the nap parameters do not fit this model: {v.shape[-1]} features, whitening matrix "
                            f"{whiten.shape}, mean {mean.shape}")
        dense = keras.layers.Dense(len(mean), name="nap_whiten")
        w = dense(v)
        dense.set_weights([whiten, -mean @ whiten])
        return keras.Model(x, {"reconstruction": x_hat, "whitened": w}, name=f"{model.name}_nap")

    def params(self) -> dict:
        return {"features": int(self.state_["mean"].shape[0])} if self.state_ else {}
