"""The detector bundle on disk: ``model.tflite`` + ``detector.json`` (TensorFlow-free).

The format is documented in docs/BUNDLE.md. This module reads and checks a bundle
(so a device refuses a damaged one with a clear message) and writes one atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from zoo import files
from zoo.errors import UserError

FORMAT = "aezoo-detector"
FORMAT_VERSION = 1
SPEC_FILE = "detector.json"
MODEL_FILE = "model.tflite"

# Keys every detector.json must have; each maps to the keys it must contain.
REQUIRED = {
    "model": ("file", "sha256", "bytes", "quant"),
    "input": ("shape", "dtype", "scale", "zero_point"),
    "output": ("shape", "dtype", "scale", "zero_point"),
    "preprocessing": ("height", "width", "channels", "color_mode", "pixel_range", "uint8_divisor", "resize"),
    "score": ("kind",),
    "threshold": ("value", "method"),
    "class_names": (),
    "provenance": (),
}


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def check_spec(spec: Any, where: str = SPEC_FILE) -> dict:
    """Return ``spec`` if it is a detector.json dictionary this version can use, else raise UserError."""
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise UserError(f"{where} is not an aezoo detector spec: expected \"format\": \"{FORMAT}\". "
                        f"Received: format={spec.get('format') if isinstance(spec, dict) else type(spec).__name__!r}")
    if spec.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{where} has format_version {spec.get('format_version')!r}; this runtime reads version "
                        f"{FORMAT_VERSION}. Re-export the bundle with this version of aezoo.")
    for key, subkeys in REQUIRED.items():
        if key not in spec:
            raise UserError(f"{where} lacks the {key!r} entry. Received keys: {sorted(spec)}")
        missing = [k for k in subkeys if k not in spec[key]]
        if missing:
            raise UserError(f"{where} entry {key!r} lacks {missing}. Received: {spec[key]!r}")
    pre = spec["preprocessing"]
    if pre["color_mode"] not in ("L", "RGB") or pre["channels"] != {"L": 1, "RGB": 3}[pre["color_mode"]]:
        raise UserError(f"{where}: preprocessing needs color_mode 'L' with 1 channel or 'RGB' with 3. Received: {pre!r}")
    return spec


def read_bundle(bundle: str | os.PathLike, *, verify: bool = True) -> tuple[bytes, dict]:
    """Read a bundle directory; return (tflite bytes, spec).

    Args:
        bundle: The bundle directory (holding detector.json and the model file).
        verify: Check the model's sha256 against detector.json. Defaults to True.

    Raises:
        UserError: when the directory, detector.json or the model file is missing or
            malformed, or the model's sha256 does not match.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UserError(f"expected a detector bundle directory (with {SPEC_FILE} and {MODEL_FILE}). Received: {str(bundle)!r}"
                        + (" (a file, not a directory)" if bundle.exists() else " (does not exist)"))
    spec_path = bundle / SPEC_FILE
    if not spec_path.is_file():
        raise UserError(f"{str(bundle)!r} is not a detector bundle: {SPEC_FILE} is missing. "
                        "Export one with `aezoo export RUN --out DIR`.")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{spec_path} is not valid JSON: {exc}") from None
    check_spec(spec, str(spec_path))
    model_path = bundle / spec["model"]["file"]
    if not model_path.is_file():
        raise UserError(f"the bundle's model file is missing: {model_path}")
    data = model_path.read_bytes()
    if verify:
        actual = sha256_bytes(data)
        if actual != spec["model"]["sha256"]:
            raise UserError(
                f"corrupted or modified model file {model_path}: the sha256 file hash does not match {SPEC_FILE}. "
                f"Expected: {spec['model']['sha256']}, actual: {actual} ({len(data)} bytes, expected {spec['model']['bytes']})."
            )
    return data, spec


def write_bundle(out: str | os.PathLike, tflite: bytes, spec: dict, extra: dict[str, bytes | str] | None = None) -> Path:
    """Write a bundle directory atomically: the model, detector.json and ``extra`` files.

    The model's file name, size and sha256 are filled into ``spec["model"]`` here,
    so they always describe the bytes written.
    """
    spec = dict(spec)
    spec["model"] = {**spec.get("model", {}), "file": MODEL_FILE, "bytes": len(tflite), "sha256": sha256_bytes(tflite)}
    check_spec(spec, "bundle spec")
    with files.atomic_dir(out) as tmp:
        (tmp / MODEL_FILE).write_bytes(tflite)
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        for name, content in (extra or {}).items():
            path = tmp / name
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_bytes(content)
    return Path(out)
