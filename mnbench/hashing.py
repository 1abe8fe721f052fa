"""Content hashes of files: how exports, quantized files and result records name the bytes they hold."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes, read in 1 MiB blocks (exports run to hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_sha256(path: str | Path, sha256: str) -> bool:
    """Whether `path` is a file whose bytes have this sha256 (False where it cannot be read)."""
    try:
        return Path(path).is_file() and file_sha256(path) == sha256
    except OSError:
        return False
