"""Ed25519 signatures of detector bundles: the owner signs with a private key, a device checks with the public key.

The device holds only the public key, so a device that is opened up cannot sign a bundle
another device would accept. Uses the ``cryptography`` package (the ``signing`` extra of
the distribution, ``pip install cryptography`` on a device); nothing here is needed to load
unsigned bundles.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from zoo.errors import UserError

PUBLIC_KEY_ENV = "AEZOO_PUBLIC_KEY"  # the public key a device checks every bundle against


def _serialization() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: F401 (the algorithm must be there)
    except ImportError:
        raise UserError("signed bundles need the `cryptography` package: pip install cryptography "
                        "(or the distribution's extra: pip install 'autoencoder-zoo[signing]')") from None
    return serialization


def new_keypair(private_path: str | os.PathLike) -> Path:
    """Write a new private key (PEM, readable by its owner only) and its public key beside it (``.pub``); return the
    public key's path. An existing file at either path is refused, never replaced."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    serialization = _serialization()
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise UserError(f"{path} already exists: a key is never replaced. Choose another file name")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public_path.write_bytes(public_pem)
    return public_path


def _read_pem(path: str | os.PathLike, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {str(path)!r}")
    return path.read_bytes()


def load_private_key(path: str | os.PathLike) -> Any:
    """The Ed25519 private key in the PEM file ``path`` (written by ``aezoo keygen``)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    serialization = _serialization()
    try:
        key = serialization.load_pem_private_key(_read_pem(path, "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not an unencrypted PEM private key (make one with `aezoo keygen KEY`): {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UserError(f"{path} holds a {type(key).__name__}; expected an Ed25519 key (`aezoo keygen KEY`)")
    return key


def load_public_key(path: str | os.PathLike | None) -> Any:
    """The Ed25519 public key in the PEM file ``path``, or of ``$AEZOO_PUBLIC_KEY`` when ``path`` is None (unset: None,
    no signature is required)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = path if path is not None else os.environ.get(PUBLIC_KEY_ENV) or None
    if path is None:
        return None
    serialization = _serialization()
    try:
        key = serialization.load_pem_public_key(_read_pem(path, f"public key (--public-key or ${PUBLIC_KEY_ENV})"))
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a PEM public key (the .pub file `aezoo keygen` writes): {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UserError(f"{path} holds a {type(key).__name__}; expected an Ed25519 public key (`aezoo keygen`)")
    return key


def key_id(public_key: Any) -> str:
    """A short public name of a key pair (the start of the public key's sha256): which key signed."""
    serialization = _serialization()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(body: bytes, private_key: Any) -> dict:
    """``{"ed25519": hex signature of body, "key_id": ...}``."""
    return {"ed25519": private_key.sign(body).hex(), "key_id": key_id(private_key.public_key())}


def verified(body: bytes, signature: Any, public_key: Any) -> bool:
    """True when ``signature`` (hex) is ``public_key``'s signature of ``body``."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(bytes.fromhex(str(signature)), body)
    except (InvalidSignature, ValueError):
        return False
    return True
