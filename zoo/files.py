"""Atomic file writes and checksums (TensorFlow-free: edge/ uses these too)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from zoo.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Whatever writes to the yielded path (numpy, Keras, matplotlib), readers never
    see a half-written ``path``: on an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600; give the file the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON to ``path`` (NaN and infinity are refused: they are not JSON)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def pid_alive(pid: int) -> bool:
    """True when a process with this PID runs (or exists under another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_old(path: Path) -> Path:
    # A name no user picks by chance: a user's own ".NAME.old" must never be taken for a swap's leftover.
    return path.with_name(f".{path.name}.aezoo-swap-old")


def recover_dir(path: str | os.PathLike) -> None:
    """Finish or undo a swap of ``path`` that a crash interrupted (see :func:`atomic_dir`).

    ``.NAME.aezoo-swap-old`` without ``NAME``: the crash fell between the two renames, so the
    old content is put back. Both present: the swap was done, only the clean-up is left.
    Temporaries ``.NAME.tmp-PID-*`` of processes that no longer run are removed.
    """
    path = Path(path)
    old = _swap_old(path)
    if old.is_dir() and not old.is_symlink():
        if path.exists() or path.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name[len(f".{path.name}.tmp-"):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(path: str | os.PathLike, *, kind: str, marker: str, overwrite: bool = False,
                      owned: Iterable[str] | None = None) -> None:
    """Refuse to write a ``kind`` folder at ``path`` unless nothing of value would be lost.

    Allowed: nothing there, an empty folder, or (with ``overwrite``) a folder that is
    already a ``kind`` (it holds ``marker``) and, when ``owned`` names what such a folder
    holds, nothing else: a file the user put beside ours is never replaced. Anything else
    is a UserError and stays untouched.
    """
    path = Path(path)
    recover_dir(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        if not any(path.iterdir()):
            return
        if (path / marker).is_file():
            others = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir()
                            if owned is not None and p.name not in owned)
            if overwrite and others:
                raise UserError(f"{path} holds a {kind} and also {', '.join(others[:5])}"
                                f"{' ...' if len(others) > 5 else ''}, which no export wrote: --overwrite replaces a "
                                f"{kind}, never anything else, so nothing was written and nothing deleted. Move those "
                                f"out, or choose another --out. Received: --out {path}")
            if overwrite:
                return
            raise UserError(f"{path} already holds a {kind}; pass --overwrite to replace it, or choose another --out. "
                            f"Received: --out {path}")
        raise UserError(f"{path} is a folder with other files, not a {kind}: nothing was written and nothing deleted. "
                        f"Choose another --out. Received: --out {path}")
    raise UserError(f"{path} exists and is not a folder: nothing was written. Choose another --out. Received: --out {path}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` as a whole.

    Call :func:`check_replaceable` first: this function replaces what is at ``path``.
    Between the two renames of a swap the old content sits in ``.NAME.old``;
    :func:`recover_dir` (run on the next write) puts it back after a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if marker is not None and not (tmp / marker).is_file():
            raise RuntimeError(f"atomic_dir: the new content lacks {marker}")
        if path.exists():
            old = _swap_old(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_writable_file(path: str | os.PathLike | None, *, overwrite: bool = False) -> None:
    """Refuse an output file path that would destroy something or cannot be written, before any work starts.

    A directory, an existing file (unless ``overwrite``), a parent that is a file, or a
    parent that cannot be written is a UserError naming the path.
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; expected the path of a file to write. Received: {path}")
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; nothing was written. Choose another file name or delete it first. "
                        f"Received: {path}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {parent} is not writable")
