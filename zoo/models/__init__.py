"""The model families, and the lookups over them: importing this package registers every variant.

    zoo.models.list_models("conv_*"), zoo.models.build("conv_ae", latent_dim=8)
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any

from zoo.config import check_names, from_json_value
from zoo.errors import UserError
from zoo.keras import building_with
from zoo.models.common import contract_problems
from zoo.models import conv, conv1d, dense, denoising, sparse, vae  # noqa: F401  (registers the variants)
from zoo.registry import ModelConfig, ModelInfo, registered


def list_models(pattern: str = "*") -> list[str]:
    """Return the sorted names of registered variants matching a glob ``pattern``."""
    if not isinstance(pattern, str):
        raise UserError(f"pattern must be a glob string such as 'conv_*'. Received: pattern={pattern!r}")
    return sorted(n for n in registered() if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> ModelInfo:
    """Return the registry entry of ``name``; an unknown name is a UserError with suggestions."""
    if name not in registered():
        valid = sorted(registered())
        close = difflib.get_close_matches(str(name), valid, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UserError(f"Unknown model {name!r}.{hint} Valid models: {', '.join(valid)}. Received: name={name!r}")
    return registered()[name]


def config_for(name: str, **params: Any) -> ModelConfig:
    """Return the variant's config dataclass with ``params`` over its defaults.

    Parameter names are checked here; values are checked when the model is built.
    """
    info = model_info(name)
    check_names(f"parameter(s) for model {name!r}", list(params), [f.name for f in dataclasses.fields(info.config_cls)])
    return info.config_cls(**{k: from_json_value(v) for k, v in params.items()})


def build(name: str, keras_version: int = 2, **params: Any) -> Any:
    """Build variant ``name``: an uncompiled flat functional model named ``name``.

    Args:
        name: a name from ``list_models()``.
        keras_version: 2 (tf_keras, what TFMOT and the training stack use) or 3 (a Keras 3
            ``keras.Model`` from the same variant function). Defaults to 2.
        **params: the variant's keyword arguments (e.g. ``input_shape``, ``latent_dim``);
            lists are accepted where tuples are expected (JSON configs).

    Raises:
        UserError: unknown name (with close matches), unknown parameter (with the
            valid ones) or an invalid value (quoting it).
    """
    config = config_for(name, **params)
    with building_with(keras_version):
        model = model_info(name).fn(**dataclasses.asdict(config))
    problems = contract_problems(model, name)
    if problems:
        raise UserError(f"variant {name!r} breaks the zoo's layer-naming contract (zoo.registry): "
                        + "; ".join(problems))
    return model
