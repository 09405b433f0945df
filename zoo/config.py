"""The one base of every config dataclass (model, training, compression): JSON round trip and checks.

TensorFlow-free. A config is a plain dataclass that mixes in :class:`Config`::

    @dataclasses.dataclass
    class TrainConfig(Config):
        epochs: int = 30

        def validate(self) -> "TrainConfig":
            check_int(self, "epochs", low=1)
            return self

    TrainConfig.from_json(TrainConfig(epochs=5).to_json()) == TrainConfig(epochs=5)

Tuples become JSON lists and come back as tuples; an unknown key is a ``UserError``
that lists the valid ones and suggests the closest.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from typing import Any, Sequence, TypeVar

from zoo.errors import UserError

C = TypeVar("C", bound="Config")


def to_json_value(value: Any) -> Any:
    """Tuples (and lists) as JSON lists, recursively; other values unchanged."""
    if isinstance(value, (tuple, list)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def from_json_value(value: Any) -> Any:
    """JSON lists back to tuples, recursively; dicts (e.g. model params) are kept as they are."""
    if isinstance(value, list):
        return tuple(from_json_value(v) for v in value)
    return value


def check_names(what: str, given: Sequence[str], valid: Sequence[str]) -> None:
    """Raise UserError for names in ``given`` that are not in ``valid``, suggesting close ones."""
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return
    hints = {k: difflib.get_close_matches(str(k), list(valid), n=1) for k in unknown}
    hint = "".join(f" Did you mean {c[0]!r} for {k!r}?" for k, c in hints.items() if c)
    raise UserError(f"unknown {what} {', '.join(map(repr, unknown))}.{hint} Valid: {', '.join(valid)}. "
                    f"Received: {', '.join(map(str, unknown))}")


class Config:
    """Mixin for config dataclasses: ``to_dict``/``from_dict``/``to_json``/``from_json`` and ``validate``.

    Every construction is validated, so a bad value fails where it is given, quoting it.
    """

    def __post_init__(self) -> None:
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (tuples as lists)."""
        return {f.name: to_json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: Any) -> C:
        """Rebuild from :meth:`to_dict` output and validate; unknown keys or bad values are a UserError."""
        if not isinstance(data, dict):
            raise UserError(f"{cls.__name__} expects a JSON object. Received: {type(data).__name__}")
        check_names(f"{cls.__name__} key(s)", list(data), [f.name for f in dataclasses.fields(cls)])  # type: ignore[arg-type]
        return cls(**{k: from_json_value(v) for k, v in data.items()})

    def to_json(self) -> str:
        """Return the config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Parse :meth:`to_json` output; malformed JSON is a UserError."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{cls.__name__}: expected a JSON object. Received text that is not JSON ({exc})") from None
        return cls.from_dict(data)

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with ``changes``; an unknown field is a UserError."""
        check_names(f"{type(self).__name__} field(s)", list(changes), [f.name for f in dataclasses.fields(self)])  # type: ignore[arg-type]
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def validate(self: C) -> C:
        """Check every field; raise UserError quoting the bad value. Subclasses extend it."""
        return self


# -- field checks shared by the configs: each names the field and quotes the value ---------------------------


def check_int(obj: Any, name: str, low: int = 0, high: int | None = None) -> int:
    """``obj.name`` must be an int in [low, high]."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in {low}..{high}"
        raise UserError(f"{name} must be an integer {bounds}. Received: {name}={value!r}")
    return value


def check_number(obj: Any, name: str, low: float, high: float | None = None, *, open_low: bool = True) -> float:
    """``obj.name`` must be a finite number in (low, high] (or [low, high] with ``open_low=False``)."""
    value = getattr(obj, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bounds = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'}{']' if high is not None else ')'}"
        raise UserError(f"{name} must be a number in {bounds}. Received: {name}={value!r}")
    return float(value)


def check_choice(obj: Any, name: str, choices: Sequence[str]) -> str:
    """``obj.name`` must be one of ``choices``."""
    value = getattr(obj, name)
    if value not in choices:
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}.{hint} Received: {name}={value!r}")
    return value
