"""Argument types shared by the ``aezoo`` subcommands: each names what it expected and what it received."""

from __future__ import annotations

import argparse
import json

from edge.cli import int_arg

__all__ = ["int_arg", "positive_float", "fraction", "param", "int_list", "name_list", "size"]


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number. Received: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number. Received: {value}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.5. Received: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.5. Received: {value}")
    return value


def param(text: str) -> tuple[str, object]:
    """``key=value`` with a JSON value (a bare word stays a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value (e.g. latent_dim=16). Received: {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def int_list(text: str) -> list[int]:
    """Class ids separated by commas, e.g. ``0,6``."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected class ids separated by commas, e.g. 0,6. Received: {text!r}")
    return values


def float_list(text: str) -> list[float]:
    """Non-negative numbers separated by commas, e.g. ``0,0.25,1``."""
    try:
        values = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        values = []
    if not values or not all(0.0 <= v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative numbers separated by commas, e.g. 0,0.25,1. Received: {text!r}")
    return values


def name_list(text: str) -> list[str]:
    """Names separated by commas, e.g. ``conv_ae,vae``."""
    names = [part for part in text.replace(" ", "").split(",") if part]
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, e.g. conv_ae,vae. Received: {text!r}")
    return names


def size(text: str) -> tuple[int, int]:
    """``HEIGHT,WIDTH`` (or one number for a square), integers in 8..1024."""
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(8 <= p <= 1024 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH with integers in 8..1024, e.g. 28,28. Received: {text!r}")
    return parts  # type: ignore[return-value]
