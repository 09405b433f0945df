"""The model registry: ``@register_model``, ``list_models``, ``build``, ``config_for``.

A variant is a small function returning a flat functional ``keras.Model``; the
function's name is its registry key and its keyword arguments (with their
defaults) are its hyperparameters. Each variant gets a config dataclass generated
from that signature, so a parameter is written exactly once::

    @register_model
    def conv_ae(input_shape=(28, 28, 1), latent_dim=32, *, filters=(8, 16, 32)):
        ...

    zoo.build("conv_ae", latent_dim=16)
    zoo.config_for("conv_ae", latent_dim=16).to_dict()
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
import json
import os
from typing import Any, Callable, ClassVar

from zoo.errors import UserError

INPUT_KINDS = ("image", "vector")

_REGISTRY: dict[str, "ModelInfo"] = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a variant without building it."""

    name: str
    family: str  # the module under zoo.models, e.g. "conv"
    input_kinds: tuple[str, ...]  # "image" (H, W, C) and/or "vector" (features,)
    summary: str  # first line of the variant's docstring
    fn: Callable[..., Any] = dataclasses.field(repr=False, compare=False)
    config_cls: type = dataclasses.field(repr=False, compare=False)


class ModelConfig:
    """Mixin of every generated variant config: JSON round trip.

    Tuples become JSON lists; ``from_dict`` turns lists back into tuples, so
    ``cfg == type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict())))``.
    """

    model_name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-ready dict (tuples as lists)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Rebuild a config from ``to_dict()`` output; unknown keys are a UserError."""
        _check_names(cls.model_name, data, [f.name for f in dataclasses.fields(cls)])
        return cls(**{k: _from_json(v) for k, v in data.items()})

    def to_json(self) -> str:
        """Return the config as a JSON string."""
        return json.dumps(self.to_dict())


def _to_json(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def register_model(
    fn: Callable[..., Any] | None = None, *, input_kinds: tuple[str, ...] = INPUT_KINDS
) -> Any:
    """Register a variant under its function name (``@register_model`` or with options).

    Args:
        fn: the variant function; all its parameters must have defaults.
        input_kinds: which inputs the variant accepts, a subset of ``("image", "vector")``.
            Defaults to both.
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
            fn=f,
            config_cls=config_cls,
        )
        return f

    return decorate(fn) if fn is not None else decorate


def _load_families() -> None:
    # Importing zoo.models imports every family module, which registers its variants.
    importlib.import_module("zoo.models")


def list_models(pattern: str = "*") -> list[str]:
    """Return the sorted names of registered variants matching a glob ``pattern``."""
    _load_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> ModelInfo:
    """Return the registry entry of ``name``; an unknown name is a UserError with suggestions."""
    _load_families()
    if name not in _REGISTRY:
        valid = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UserError(f"Unknown model {name!r}.{hint} Valid models: {', '.join(valid)}. Received: name={name!r}")
    return _REGISTRY[name]


def _check_names(name: str, params: dict[str, Any], valid: list[str]) -> None:
    unknown = [k for k in params if k not in valid]
    if unknown:
        close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
        hint = "".join(f" Did you mean {c[0]!r} for {k!r}?" for k, c in close.items() if c)
        raise UserError(
            f"Unknown parameter(s) for model {name!r}: {', '.join(unknown)}.{hint} "
            f"Valid parameters: {', '.join(valid)}. Received: {', '.join(f'{k}={params[k]!r}' for k in unknown)}"
        )


def config_for(name: str, **params: Any) -> ModelConfig:
    """Return the variant's config dataclass with ``params`` over its defaults.

    Parameter names are checked here; values are checked when the model is built.
    """
    info = model_info(name)
    _check_names(name, params, [f.name for f in dataclasses.fields(info.config_cls)])
    return info.config_cls(**{k: _from_json(v) for k, v in params.items()})


def build(name: str, **params: Any) -> Any:
    """Build variant ``name``: an uncompiled flat functional ``keras.Model`` named ``name``.

    Args:
        name: a name from ``list_models()``.
        **params: the variant's keyword arguments (e.g. ``input_shape``, ``latent_dim``);
            lists are accepted where tuples are expected (JSON configs).

    Raises:
        UserError: unknown name (with close matches), unknown parameter (with the
            valid ones) or an invalid value (quoting it).
    """
    config = config_for(name, **params)
    model = model_info(name).fn(**dataclasses.asdict(config))
    if model.name != name:
        raise AssertionError(f"Variant {name} returned a model named {model.name!r}.")
    return model


def load_model(path: str | os.PathLike) -> Any:
    """Load a ``.keras`` file saved from a zoo model (custom layers registered, QAT models too)."""
    from zoo.keras import keras
    from zoo.layers import custom_objects, quantize_scope

    if not str(path).endswith(".keras"):
        raise UserError(f"Expected a .keras model file. Received: path={str(path)!r}")
    if not os.path.isfile(path):
        raise UserError(f"Model file not found. Received: path={str(path)!r}")
    # Inside TFMOT's scope so that `aezoo optimize --method qat` models load as plain files too.
    with quantize_scope():
        return keras.models.load_model(path, custom_objects=custom_objects(), compile=False)
