"""The detector bundle on disk: ``model.tflite`` + ``detector.json`` (TensorFlow-free).

The format is documented in docs/BUNDLE.md. This module is the one schema of
detector.json: every field is checked for type and range when a bundle is read
(on the device) and before one is written (in training), and the spec's own
sha256 covers the threshold, the score parameters and the preprocessing, so a
corrupted number is refused instead of silently changing verdicts. A hash anyone can
recompute does not stop an edit made on purpose: for that, a bundle is signed at export
with the owner's Ed25519 private key (over the same content, the model's sha256 included;
``edge.signing``), and a device given the public key (``public_key=`` or
``$AEZOO_PUBLIC_KEY``) refuses any bundle not signed with it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from edge.inputs import INPUT_KINDS
from edge.schema import fail as _fail
from edge.schema import get as _get
from edge.schema import integer as _int
from edge.schema import number as _number
from edge.schema import one_of
from edge.signing import PUBLIC_KEY_ENV
from zoo import files
from zoo.errors import UserError

FORMAT = "aezoo-detector"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
SPEC_FILE = "detector.json"
MODEL_FILE = "model.tflite"
# Every file an export may write into a bundle: `--overwrite` replaces a folder holding only these.
BUNDLE_FILES = frozenset({SPEC_FILE, MODEL_FILE, "aezoo_model.c", "aezoo_model.h", "micro.json", "aezoo_detect.c",
                          "aezoo_detect.h"})
QUANT_MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
# Full-integer modes: calibrated on representative inputs, integer input and output tensors.
INTEGER_MODES = ("int8", "int16x8")
# Who made an int8 model: TensorFlow's TFLiteConverter, or the LiteRT Quantizer (litert-quantizer) on the float .tflite.
QUANTIZERS = ("tflite-converter", "litert")
TENSOR_DTYPES = ("int8", "uint8", "int16", "float32")


# -- the schema: one checker per field ------------------------------------------------------------------------


def _shape(value: Any) -> bool:
    return isinstance(value, list) and 1 <= len(value) <= 3 and all(_int(d, 1) for d in value)


def _check_tensor(spec: dict, where: str, path: str) -> None:
    _get(spec, where, f"{path}.shape", _shape, "a list of 1 to 3 positive integers")
    dtype = _get(spec, where, f"{path}.dtype", one_of(TENSOR_DTYPES), f"one of {TENSOR_DTYPES}")
    if dtype == "float32":
        _get(spec, where, f"{path}.scale", lambda v: v is None, "null for a float tensor")
        _get(spec, where, f"{path}.zero_point", lambda v: v is None, "null for a float tensor")
    else:
        _get(spec, where, f"{path}.scale", lambda v: _number(v) and v > 0, "a positive number")
        _get(spec, where, f"{path}.zero_point", lambda v: _int(v, -(2**31)), "an integer")


def check_spec(spec: Any, where: str = SPEC_FILE, *, known_kinds: Any = None) -> dict:
    """Return ``spec`` (as version 2) if every field has the right type and range, else raise UserError.

    A version-1 spec (one ``output`` = the reconstruction, no preprocessing kind) is
    upgraded in memory; the file is not changed.
    """
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise UserError(f"{where} is not an aezoo detector spec: expected \"format\": \"{FORMAT}\". "
                        f"Received: format={spec.get('format') if isinstance(spec, dict) else type(spec).__name__!r}")
    if spec.get("format_version") not in READABLE_VERSIONS:
        raise UserError(f"{where} has format_version {spec.get('format_version')!r}; this runtime reads versions "
                        f"{list(READABLE_VERSIONS)}. Re-export the bundle with this version of aezoo.")
    spec = _upgrade_v1(spec) if spec["format_version"] == 1 else spec
    _get(spec, where, "model.file", lambda v: isinstance(v, str) and v and "/" not in v and "\\" not in v and v not in (".", ".."),
         "a file name inside the bundle")
    _get(spec, where, "model.sha256", lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
         "64 lowercase hex digits")
    _get(spec, where, "model.bytes", lambda v: _int(v, 1), "a positive integer")
    _get(spec, where, "model.quant", one_of(QUANT_MODES), f"one of {QUANT_MODES}")
    quantizer = spec["model"].get("quantizer", QUANTIZERS[0])
    if quantizer not in QUANTIZERS:
        _fail(where, "model.quantizer", f"one of {QUANTIZERS}", quantizer)
    _check_tensor(spec, where, "input")
    outputs = _get(spec, where, "outputs", lambda v: isinstance(v, list) and v and all(isinstance(o, dict) for o in v),
                   "a non-empty list of output tensors")
    names = [o.get("name") for o in outputs]
    for i, output in enumerate(outputs):
        if not isinstance(names[i], str) or not names[i]:
            _fail(where, f"outputs[{i}].name", "a non-empty string", names[i])
        _check_tensor({f"outputs[{i}]": output}, where, f"outputs[{i}]")
    if len(set(names)) != len(names):
        _fail(where, "outputs", "tensors with distinct names", names)
    kind = _get(spec, where, "preprocessing.kind", one_of(INPUT_KINDS), f"one of {sorted(INPUT_KINDS)}")
    INPUT_KINDS[kind].check_spec(spec, where)
    _get(spec, where, "score.kind", lambda v: isinstance(v, str) and (known_kinds is None or v in known_kinds),
                f"one of {sorted(known_kinds)}" if known_kinds is not None else "a score kind")
    _get(spec, where, "score.params", lambda v: isinstance(v, dict), "an object")
    if spec["score"].get("higher_is_anomalous", True) is not True:  # every score kind here grows with the anomaly
        _fail(where, "score.higher_is_anomalous", "true (or absent)", spec["score"]["higher_is_anomalous"])
    _get(spec, where, "threshold.value", _number, "a finite number")
    _get(spec, where, "threshold.method", lambda v: isinstance(v, str), "a string")
    _get(spec, where, "class_names", lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v), "a list of strings")
    _get(spec, where, "provenance", lambda v: isinstance(v, dict), "an object")
    return spec


def _upgrade_v1(spec: dict) -> dict:
    """A version-1 spec in version-2 form (in memory): one reconstruction output, an image preprocessing."""
    spec = copy.deepcopy(spec)
    newer = sorted({"outputs", "integrity"} & set(spec))
    if newer:  # a version-2 spec relabelled as 1 (which would skip its integrity check) is not a version-1 spec
        raise UserError(f"a version-1 {SPEC_FILE} has no {newer}: this is a later spec with format_version 1 written "
                        "into it. Restore the file, or re-export the bundle")
    if not isinstance(spec.get("output"), dict) or not isinstance(spec.get("preprocessing"), dict) or not isinstance(spec.get("score"), dict):
        raise UserError(f"a version-1 {SPEC_FILE} needs 'output', 'preprocessing' and 'score' objects. Received keys: {sorted(spec)}")
    spec["format_version"], spec["upgraded_from_version"] = FORMAT_VERSION, 1
    spec["outputs"] = [{"name": "reconstruction", **spec.pop("output")}]
    spec["preprocessing"] = {"kind": "image", **spec["preprocessing"]}
    spec["score"] = {"params": {}, **spec["score"]}
    return spec


def spec_digest(spec: dict) -> str:
    """sha256 of the spec's content (canonical JSON, without its own ``integrity`` entry)."""
    return hashlib.sha256(_body(spec)).hexdigest()


def _body(spec: dict) -> bytes:
    """What the integrity hash and the signature cover: the spec without its integrity section, canonical JSON."""
    return json.dumps({k: v for k, v in spec.items() if k != "integrity"}, sort_keys=True, separators=(",", ":")).encode()


def _verify_signature(spec: dict, path: Path, public_key: Any) -> None:
    from edge import signing

    integrity = spec.get("integrity") if isinstance(spec.get("integrity"), dict) else {}
    signed_by, wanted = integrity.get("key_id"), signing.key_id(public_key)
    if not signing.verified(_body(spec), integrity.get("ed25519", ""), public_key):
        why = "it is not signed" if signed_by is None else f"it was signed with key {signed_by}" if signed_by != wanted \
            else "its content was changed after signing"
        raise UserError(f"{path} is not a bundle signed with the key {wanted} this device trusts: {why}. Nothing was "
                        "loaded. Sign it with `aezoo export ... --sign-key KEY` (or `aezoo calibrate ... --sign-key KEY`).")


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _verify_integrity(spec: dict, path: Path) -> None:
    recorded = spec.get("integrity", {}).get("spec_sha256") if isinstance(spec.get("integrity"), dict) else None
    if spec.get("format_version", 1) >= 2 and recorded != spec_digest(spec):
        raise UserError(f"{path} was modified after export: its content does not match its integrity.spec_sha256 "
                        f"(threshold, score or preprocessing edited?). Expected: {recorded}, actual: {spec_digest(spec)}. "
                        "Re-export the bundle with `aezoo export`.")


def read_bundle(bundle: str | os.PathLike, *, verify: bool = True, known_kinds: Any = None,
                public_key: Any = None) -> tuple[bytes, dict]:
    """Read a bundle directory; return (tflite bytes, spec as version 2).

    Args:
        bundle: The bundle directory (holding detector.json and the model file).
        verify: Check the model's and the spec's sha256. Defaults to True.
        known_kinds: score kinds this runtime can compute (None: any).
        public_key: the PEM file of the public key the bundle must be signed with (None: ``$AEZOO_PUBLIC_KEY``;
            unset, only corruption is detected).

    Raises:
        UserError: when the directory, detector.json or the model file is missing or
            malformed, a field has the wrong type or range, or a sha256 does not match.
    """
    if bundle is None or not isinstance(bundle, (str, os.PathLike)):
        raise UserError(f"expected the path of a detector bundle directory. Received: {bundle!r}")
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UserError(f"expected a detector bundle directory (with {SPEC_FILE} and {MODEL_FILE}). Received: {str(bundle)!r}"
                        + (" (a file, not a directory)" if bundle.exists() else " (does not exist)"))
    spec_path = bundle / SPEC_FILE
    if not spec_path.is_file():
        raise UserError(f"{str(bundle)!r} is not a detector bundle: {SPEC_FILE} is missing. "
                        "Export one with `aezoo export RUN --out DIR`.")
    try:
        raw = json.loads(spec_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{spec_path} is not valid JSON: {exc}") from None
    spec = check_spec(raw, str(spec_path), known_kinds=known_kinds)
    if verify:
        _verify_integrity(raw, spec_path)
        if public_key is not None or os.environ.get(PUBLIC_KEY_ENV):
            from edge.signing import load_public_key

            _verify_signature(raw, spec_path, load_public_key(public_key))
    model_path = bundle / spec["model"]["file"]
    if not model_path.is_file():
        raise UserError(f"the bundle's model file is missing: {model_path}")
    data = model_path.read_bytes()
    if verify and (sha256_bytes(data) != spec["model"]["sha256"] or len(data) != spec["model"]["bytes"]):
        raise UserError(
            f"corrupted or modified model file {model_path}: the sha256 file hash does not match {SPEC_FILE}. "
            f"Expected: {spec['model']['sha256']}, actual: {sha256_bytes(data)} ({len(data)} bytes, expected {spec['model']['bytes']})."
        )
    return data, spec


def _no_constant(name: str) -> None:
    # json accepts NaN/Infinity by default; a spec holding them is not valid JSON for other readers.
    raise ValueError(f"{name} is not a JSON number")


def finish_spec(spec: dict, tflite: bytes, private_key: Any = None) -> dict:
    """The spec as written: model file facts filled in, checked, sealed with its integrity digest (and signed with
    ``private_key``, an ``edge.signing`` key, if given)."""
    spec = copy.deepcopy(spec)
    spec["format"], spec["format_version"] = FORMAT, FORMAT_VERSION
    spec["model"] = {**spec.get("model", {}), "file": MODEL_FILE, "bytes": len(tflite), "sha256": sha256_bytes(tflite)}
    spec.pop("integrity", None)
    check_spec(spec, "bundle spec")
    spec["integrity"] = {"spec_sha256": spec_digest(spec),
                         "covers": "every key of detector.json except this one (canonical JSON, sorted keys)"}
    if private_key is not None:
        from edge.signing import sign

        spec["integrity"].update(sign(_body(spec), private_key))
    return spec


def write_bundle(out: str | os.PathLike, tflite: bytes, spec: dict, extra: dict[str, bytes | str] | None = None,
                 *, overwrite: bool = False, private_key: Any = None) -> Path:
    """Write a bundle directory atomically: the model, detector.json (signed with ``private_key``, if given) and
    ``extra`` files.

    An existing ``out`` is replaced only when it is a bundle itself and ``overwrite``
    is True; anything else there is refused, never deleted.
    """
    spec = finish_spec(spec, tflite, private_key)
    content: dict[str, bytes] = {MODEL_FILE: tflite, SPEC_FILE: (json.dumps(spec, indent=2) + "\n").encode("utf-8")}
    content.update({name: c.encode("utf-8") if isinstance(c, str) else c for name, c in (extra or {}).items()})
    if not set(content) <= BUNDLE_FILES:
        raise RuntimeError(f"write_bundle: {sorted(set(content) - BUNDLE_FILES)} are not in BUNDLE_FILES")
    files.check_replaceable(out, kind="detector bundle", marker=SPEC_FILE, overwrite=overwrite, owned=BUNDLE_FILES)
    with files.atomic_dir(out, marker=SPEC_FILE) as tmp:
        for name, data in content.items():
            (tmp / name).write_bytes(data)
    return Path(out)
