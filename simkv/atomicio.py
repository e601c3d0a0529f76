"""One atomic file writer and one manifest format for every file simkv writes.

Why: a write that fails half-way (a full disk, a crash, Ctrl-C) must leave the user's old
file intact, and ``--force`` may only replace files simkv itself wrote.  Every output goes
through :func:`atomic_writer`: the bytes land in a temporary file in the *same* folder (so
the final ``os.replace`` is a rename on one filesystem, atomic on POSIX), are flushed and
fsynced, and only then replace the target.  On any failure the temporary file is removed
and the target is untouched.

Manifests (``*.manifest.json`` or a folder's ``manifest.json``) share one shape, written by
:func:`write_manifest`: ``{"schema_version", "kind", "simkv_version", "files": {relpath:
sha256}, ...}`` plus whatever the caller adds.  A folder's manifest says which files simkv
owns there; :func:`owned_files` reads it back so a ``--force`` rerun deletes nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from simkv.errors import InputError
from simkv.version import __version__

MANIFEST_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a file object whose contents replace ``path`` only if the block succeeds.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8).  The parent folder must exist.  A target
    that is an existing directory is refused with :class:`InputError` before anything is
    written; an ``OSError`` while writing (ENOSPC, EIO) becomes an :class:`InputError`
    naming the path, and the old file stays as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', not {mode!r}")
    target, fd, tmp = _temp_beside(path)
    with _replacing(tmp, target):
        encoding = None if mode == "wb" else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            _seal(fh.fileno(), target)


@contextlib.contextmanager
def _replacing(tmp: Path, target: Path) -> Iterator[None]:
    """Rename ``tmp`` onto ``target`` if the block succeeds; otherwise remove ``tmp`` (an
    OSError, e.g. ENOSPC, becomes an InputError naming ``target``; the old file is kept)."""
    try:
        yield
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"write failed: {exc.strerror or exc}", source=target) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _seal(fileno: int, target: Path) -> None:
    """Give the temporary file its final mode and flush it to disk before the rename."""
    os.fchmod(fileno, _final_mode(target))
    os.fsync(fileno)


def check_target(path: str | Path) -> Path:
    """``path`` as a place simkv may write a file: not a directory, a device or a missing folder.

    A device such as ``/dev/full`` is refused up front: renaming a temporary file onto it
    would replace the device node itself when simkv runs as root.
    """
    target = Path(path)
    try:
        exists = target.exists()
        if exists and target.is_dir():
            raise InputError("is a directory, not a file", source=target)
        if exists and not target.is_file():
            raise InputError("is not a regular file (a device or socket); simkv writes only "
                             "regular files", source=target)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"folder {parent} does not exist", source=target)
    except OSError as exc:  # a name too long for the filesystem, a path through a file
        raise InputError(f"cannot write here: {exc.strerror or exc}",
                         source=_short(target)) from None
    return target


def _short(path: Path) -> str:
    s = str(path)
    return s if len(s) <= 200 else s[:197] + "..."


def _temp_beside(path: str | Path) -> tuple[Path, int, Path]:
    target = check_target(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp",
                                        dir=parent)
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror or exc}", source=target) from None
    return target, fd, Path(tmp_name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name (pyarrow, pandas).

    The block writes the temporary file; only if it succeeds is the file fsynced and renamed
    onto ``path``.  Any failure removes the temporary file and leaves ``path`` as it was; an
    ``OSError`` (ENOSPC, EIO: pyarrow's IO errors are OSErrors) becomes an InputError.
    """
    target, fd, tmp = _temp_beside(path)
    os.close(fd)
    with _replacing(tmp, target):
        yield tmp
        with open(tmp, "rb+") as fh:
            _seal(fh.fileno(), target)


def _final_mode(target: Path) -> int:
    """The permission bits the file would have had if written in place: the old file's, or
    0o666 less the umask for a new one (mkstemp's own 0600 would hide reports from others)."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_writer(path, "w") as fh:
        fh.write(text)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def manifest_dict(kind: str, files: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """The one manifest shape: schema version, kind, simkv version, owned files and extras."""
    body: dict[str, Any] = {"schema_version": MANIFEST_SCHEMA_VERSION, "kind": kind,
                            "simkv_version": __version__, "files": dict(sorted(files.items()))}
    for key, value in extra.items():
        if key in body:
            raise ValueError(f"manifest field {key!r} is reserved")
        body[key] = value
    return body


def write_manifest(path: str | Path, kind: str, files: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """Write a manifest atomically as sorted, indented JSON (byte-stable) and return it."""
    body = manifest_dict(kind, files, **extra)
    atomic_write_text(path, json.dumps(body, indent=2, sort_keys=True) + "\n")
    return body


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read a manifest written by :func:`write_manifest`; a damaged one is an InputError."""
    p = Path(path)
    try:
        body = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"not a readable simkv manifest ({type(exc).__name__})", source=p) from None
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict) \
            or not isinstance(body.get("schema_version"), int) or isinstance(body.get("schema_version"), bool):
        raise InputError("not a simkv manifest (needs integer schema_version and a files map)", source=p)
    if body["schema_version"] > MANIFEST_SCHEMA_VERSION:
        raise InputError(f"manifest schema_version {body['schema_version']} is newer than this "
                         f"simkv reads ({MANIFEST_SCHEMA_VERSION})", source=p)
    return body


def owned_files(folder: str | Path, manifest_name: str = MANIFEST_NAME) -> list[Path]:
    """The files a folder's manifest says simkv wrote there (only those inside the folder)."""
    root = Path(folder)
    mpath = root / manifest_name
    if not mpath.exists():
        return []
    owned = []
    base = root.resolve()
    for rel in read_manifest(mpath)["files"]:
        p = (root / rel).resolve()
        if p.is_relative_to(base) and p != base:
            owned.append(root / rel)
    return owned
