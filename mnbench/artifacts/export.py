"""torch -> ONNX export: BatchNorm folded, validated against PyTorch, cached by content, written atomically.

The cached file is `<models_dir>/<config slug>-opset<N>-<12 hex>.onnx`, the hex a hash over the config, the
mnbench and torch versions, the opset and the architecture/exporter source, so a change to any of them exports
afresh. A JSON manifest beside it (`mnbench.manifest`) records the file's sha256; a cached file is reused only if
its sha256 still matches and `onnx.checker` passes it.

Exporter: torch's TorchScript-based path (`dynamo=False`). In torch 2.13 the dynamo path emits opset 18 at the
least (it cannot down-convert to 17) and names nodes `node_Conv_36` / `n0`; the TorchScript path gives opset 17
with module-path node names (`/features/3/conv/1/Conv`) that per-node profiles can be read against.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

import mnbench
from mnbench import atomic, paths
from mnbench.archs import build_model, fold_batchnorm, pytorch_param_count
from mnbench.backends import make_input, open_session
from mnbench.config import ModelConfig
from mnbench.graph.cost import ModelCost, count_cost
from mnbench.errors import MnbenchError
from mnbench.hashing import file_sha256
from mnbench.manifest import cached_manifest, manifest_path_for, write_manifest

DEFAULT_OPSET = 17
# 17 is the first opset with every op these nets need as one node; 20 is the TorchScript exporter's last.
SUPPORTED_OPSETS = range(17, 21)
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# ONNX Runtime must match PyTorch within this fraction of the largest output magnitude (or absolutely, below 1).
RELATIVE_TOLERANCE = 1e-4
# Bump when the export recipe changes in a way the versions in the cache key would not show.
EXPORT_RECIPE = 1


@dataclass(frozen=True, kw_only=True)
class ExportedModel:
    path: Path  # the cached file in models_dir
    sha256: str
    config: ModelConfig
    opset: int
    reused: bool  # True when a verified cached file was used as is
    cost: ModelCost
    params: int  # pytorch_param_count of the unfolded model
    output: Path | None = None  # where a copy was written, when asked for

    @property
    def macs_per_image(self) -> int:
        """MACs of one image, as the papers count them; a fixed batch-B graph's cost holds B images."""
        return self.cost.macs if self.config.dynamic_batch else self.cost.macs // self.config.batch


def cache_key(config: ModelConfig, *, opset: int = DEFAULT_OPSET) -> str:
    """Hex sha256 over everything that decides the exported bytes."""
    identity = {
        "config": config.as_dict(),
        "mnbench": mnbench.__version__,
        "torch": torch.__version__,
        "opset": opset,
        "recipe": EXPORT_RECIPE,
        "source": model_source_digest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@functools.cache
def model_source_digest() -> str:
    """sha256 over the code that decides the graph (architectures and this exporter).

    An edit to a block or a table changes the model without a version bump; without this, the cache (and a latency
    gate comparing against it) would silently keep measuring yesterday's model.
    """
    package = Path(mnbench.__file__).parent
    digest = hashlib.sha256()
    sources = [*(package / "archs").glob("*.py"), package / "artifacts" / "export.py", package / "config.py"]
    for source in sorted(sources):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def model_path_for(config: ModelConfig, *, models_dir: str | Path | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """Where the cached export of `config` lives, e.g. `models/v2-separable-w1-r224-b1-opset17-3f2a9c1b0d4e.onnx`."""
    key = cache_key(config, opset=opset)[:12]
    return paths.models_dir(models_dir) / f"{config.slug}-opset{opset}-{key}.onnx"


def export_model(
    config: ModelConfig,
    *,
    models_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportedModel:
    """The validated ONNX export of `config`: reused from the cache when intact, exported afresh otherwise.

    `progress`, when given, is told each step as a line of text (the CLI shows it in a spinner; None or False:
    nobody is told); the library prints nothing itself.
    """
    if opset not in SUPPORTED_OPSETS:
        raise MnbenchError(f"opset must be between {SUPPORTED_OPSETS[0]} and {SUPPORTED_OPSETS[-1]}, got {opset}")
    path = model_path_for(config, models_dir=models_dir, opset=opset)
    key = cache_key(config, opset=opset)
    show = progress or _quiet
    show(f"Checking cached {path.name}")
    manifest = cached_manifest(path, key, validate=_check_cached)
    reused = manifest is not None
    if not reused:
        manifest = _export_to_cache(config, path, key, opset, show)
    show(f"Counting cost of {path.name}")
    cost = count_cost(path)
    copied_to = _copy_to(path, Path(output)) if output is not None else None
    return ExportedModel(
        path=path, sha256=manifest["sha256"], config=config, opset=opset, reused=reused, cost=cost,
        params=manifest["params"], output=copied_to,
    )


def _check_cached(path: Path, manifest: dict) -> None:
    if not isinstance(manifest.get("params"), int):
        raise MnbenchError(f"{manifest_path_for(path)} has no parameter count")
    onnx.checker.check_model(str(path), full_check=True)


def _export_to_cache(config: ModelConfig, path: Path, key: str, opset: int, show: Callable[[str], None]) -> dict:
    show(f"Building {config.slug}")
    model = build_model(config).eval()
    params = pytorch_param_count(model)
    # The benchmark's own input (fixed seed): validation feeds the same numbers a `cpu` session binds.
    sample = torch.from_numpy(make_input((config.batch, 3, config.resolution, config.resolution)))
    with torch.no_grad():
        expected = model(sample).numpy()  # the unfolded model: validation covers the folding too
    deployed = fold_batchnorm(model).eval()
    with atomic.atomic_path(path) as tmp:
        show(f"Exporting {config.slug} to ONNX (opset {opset})")
        _torch_to_onnx(deployed, sample, tmp, opset=opset, dynamic_batch=config.dynamic_batch)
        show(f"Validating {path.name} with onnx.checker and ONNX Runtime")
        max_abs_diff, ort_version = _validate(tmp, sample.numpy(), expected, batch=config.batch)
        sha256 = file_sha256(tmp)
    manifest = {
        "file": path.name,
        "sha256": sha256,
        "cache_key": key,
        "config": config.as_dict(),
        "opset": opset,
        "params": params,
        "max_abs_diff": max_abs_diff,
        "versions": {
            "mnbench": mnbench.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort_version,
        },
    }
    write_manifest(path, manifest)
    return manifest


def _torch_to_onnx(model: torch.nn.Module, sample: torch.Tensor, target: Path, *, opset: int, dynamic_batch: bool) -> None:
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    # The exporter warns about its own deprecation and prints diagnostics; none of it is the user's concern.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model, (sample,), str(target), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
                do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL,
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            raise MnbenchError(f"torch.onnx.export failed: {exc}") from exc


def _validate(path: Path, sample: np.ndarray, expected: np.ndarray, *, batch: int) -> tuple[float, str]:
    """Check the file's structure and that ONNX Runtime (a `cpu` session) reproduces PyTorch on `sample`;
    return the max abs difference and ONNX Runtime's version."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - checker and shape-inference errors alike
        raise MnbenchError(f"the exported model fails onnx.checker: {exc}") from exc
    graph = onnx.load(str(path), load_external_data=False).graph
    leftover = sorted({n.op_type for n in graph.node} & {"BatchNormalization"})
    if leftover:
        raise MnbenchError(f"the exported graph still has {leftover}; fold_batchnorm did not fold every BatchNorm")
    if [i.name for i in graph.input] != [INPUT_NAME] or [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise MnbenchError(f"the exported graph must have one input {INPUT_NAME!r} and one output {OUTPUT_NAME!r}")
    with open_session("cpu", path, batch=batch) as session:
        if not np.array_equal(session.inputs[INPUT_NAME], sample):
            raise MnbenchError("the validation sample is not the input the cpu session bound")
        session.infer()
        actual = session.output(0)
        ort_version = session.info["runtime_version"]
    if actual.shape != expected.shape:
        raise MnbenchError(f"ONNX Runtime output shape {actual.shape} differs from PyTorch's {expected.shape}")
    max_abs_diff = float(np.max(np.abs(actual - expected)))
    tolerance = RELATIVE_TOLERANCE * max(float(np.max(np.abs(expected))), 1.0)
    if not max_abs_diff <= tolerance:  # written so that NaN fails too
        raise MnbenchError(
            f"ONNX Runtime output differs from PyTorch by {max_abs_diff:.3g} (allowed {tolerance:.3g}); "
            "the export was refused"
        )
    return max_abs_diff, ort_version


def _copy_to(source: Path, output: Path) -> Path:
    """Atomic copy of the export to `output` (into it, when it is a folder)."""
    target = output / source.name if output.is_dir() else output
    if target.resolve() == source.resolve():
        return target
    try:
        with atomic.atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    except OSError as exc:
        raise MnbenchError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def _quiet(_message: str) -> None:
    """The progress callback when nobody listens."""
