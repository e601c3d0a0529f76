"""The atomic writer keeps the old file on failure; manifests round-trip and bound ownership."""

from __future__ import annotations

import json

import pytest

from simkv.atomicio import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    owned_files,
    read_manifest,
    sha256_file,
    write_manifest,
)
from simkv.errors import InputError


def test_replaces_only_on_success(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(p, "w") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]  # no temp file left
    atomic_write_text(p, "new")
    assert p.read_text() == "new"


def test_directory_target_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"x")


def test_missing_folder_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        atomic_write_bytes(tmp_path / "no" / "f.bin", b"x")


def test_full_disk_is_input_error_and_old_kept(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    import os

    def fail(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(InputError, match="No space left"):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 1


def test_manifest_round_trip_and_owned(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"abc")
    # sha256("abc"), by hand from the FIPS 180-2 test vector
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(tmp_path / "a.parquet") == digest
    write_manifest(tmp_path / "manifest.json", "test", {"a.parquet": digest, "../escape": "x"}, seed=3)
    body = read_manifest(tmp_path / "manifest.json")
    assert body["kind"] == "test" and body["seed"] == 3 and body["schema_version"] == 1
    assert owned_files(tmp_path) == [tmp_path / "a.parquet"]  # ../escape is outside: not owned


def test_damaged_manifest(tmp_path):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"files": []}))
    with pytest.raises(InputError, match="manifest.json"):
        read_manifest(m)
    m.write_text("[" * 100000)
    with pytest.raises(InputError, match="not a readable"):
        read_manifest(m)


def test_permissions_as_if_written_in_place(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        p = tmp_path / "new.html"
        atomic_write_text(p, "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644  # 0o666 less umask 022, not mkstemp's 0600
        p.chmod(0o640)
        atomic_write_text(p, "y")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640  # an existing file keeps its mode
    finally:
        os.umask(mask)
