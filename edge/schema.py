"""Field checkers of detector.json, shared by the bundle schema (edge.bundle) and the input kinds (edge.inputs).

Each check names the field's path, what it must be and what it is, so an edited or
damaged bundle is refused with a message a user can act on.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from zoo.errors import UserError


def fail(where: str, path: str, expected: str, value: Any) -> None:
    """Raise the one error of a bad field: ``where: path must be expected. Received: path=value``."""
    raise UserError(f"{where}: {path} must be {expected}. Received: {path}={value!r}")


def number(value: Any) -> bool:
    """True for a finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(value: Any, low: int = 0) -> bool:
    """True for an int >= ``low`` (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# The least standardization scale a bundle may hold: dividing by less turns ordinary values into inf in float32.
MIN_SCALE = 1e-30


def numbers(value: Any, n: int, *, positive: bool = False) -> bool:
    """True for a list of ``n`` finite numbers (all >= ``MIN_SCALE`` with ``positive``)."""
    return isinstance(value, list) and len(value) == n and all(number(x) for x in value) and \
        (not positive or min(value, default=1) >= MIN_SCALE)


def one_of(options: Any) -> Callable[[Any], bool]:
    """A check accepting one of the string ``options`` (and nothing unhashable: an edited spec may hold a list)."""
    return lambda v: isinstance(v, str) and v in options


def get(spec: dict, where: str, path: str, check: Callable[[Any], bool], expected: str) -> Any:
    """The value at the dotted ``path`` of ``spec`` if ``check`` accepts it, else a UserError naming the field."""
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"{where} lacks {path!r} ({expected}). Received keys at that level: "
                            f"{sorted(node) if isinstance(node, dict) else type(node).__name__}")
        node = node[part]
    if not check(node):
        fail(where, path, expected, node)
    return node
