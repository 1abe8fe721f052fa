"""The JSON manifest beside every ONNX file mnbench makes (an export, its int8 file): where it lives, and whether it
still describes the bytes beside it.

A manifest names its file's sha256 and the cache key it was made under; whatever reads one (the export cache, the
int8 cache, a torch session rebuilding the exported network, the gate looking a baseline's file up by its sha256)
reads it here, so a replaced or damaged file is refused the same way everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from mnbench import atomic
from mnbench.errors import MnbenchError
from mnbench.hashing import file_sha256, has_sha256

MODEL_SUFFIX = ".onnx"
MANIFEST_SUFFIX = ".json"


def manifest_path_for(model_path: str | Path) -> Path:
    """`models/v2-...-3f2a9c1b0d4e.onnx` -> `models/v2-...-3f2a9c1b0d4e.json`."""
    return Path(model_path).with_suffix(MANIFEST_SUFFIX)


def write_manifest(model_path: str | Path, manifest: dict[str, Any]) -> None:
    atomic.write_text(manifest_path_for(model_path), json.dumps(manifest, indent=2) + "\n")


def read_manifest(model_path: str | Path) -> dict[str, Any] | None:
    """The manifest beside `model_path` as written, or None where there is none or it is not a JSON object. Its
    sha256 is not checked: for what a manifest says about how its file was made, not for trusting the file."""
    try:
        manifest = json.loads(manifest_path_for(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def checked_manifest(model_path: str | Path) -> dict[str, Any] | None:
    """The manifest of a file mnbench made, None where the file has none. A manifest that cannot be read, or whose
    sha256 is not the file's (the file was replaced or damaged), is a MnbenchError: refused, never guessed."""
    manifest_path = manifest_path_for(model_path)
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        sha256 = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MnbenchError(f"damaged export manifest {manifest_path}: {exc}; run `mnbench export` again") from None
    if sha256 != file_sha256(model_path):
        raise MnbenchError(f"{model_path} is not the file its manifest describes (sha256 differs); "
                           "run `mnbench export` again")
    return manifest


def cached_manifest(model_path: Path, cache_key: str, *,
                    validate: Callable[[Path, dict[str, Any]], object]) -> dict[str, Any] | None:
    """The manifest of an intact cached file: made under `cache_key`, its sha256 the file's, and `validate(path,
    manifest)` raising nothing. Otherwise None, with the file and its manifest removed, so that a failed rebuild
    cannot leave them looking usable."""
    manifest_path = manifest_path_for(model_path)
    if not model_path.exists() and not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        intact = manifest.get("cache_key") == cache_key and manifest.get("sha256") == file_sha256(model_path)
        if intact:
            validate(model_path, manifest)
    except Exception:  # noqa: BLE001 - unreadable, torn, edited or failing validation: never trusted, rebuilt
        intact = False
    if intact:
        return manifest
    model_path.unlink(missing_ok=True)
    manifest_path.unlink(missing_ok=True)
    return None


def file_with_sha256(folder: str | Path, sha256: str) -> Path | None:
    """The model file in `folder` whose manifest names `sha256` and whose bytes have it; None if there is none."""
    folder = Path(folder)
    for manifest_path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")) if folder.is_dir() else []:
        manifest = read_manifest(manifest_path)  # not an export manifest, or damaged: skipped, never trusted
        model_path = manifest_path.with_suffix(MODEL_SUFFIX)
        if manifest is not None and manifest.get("sha256") == sha256 and has_sha256(model_path, sha256):
            return model_path
    return None
