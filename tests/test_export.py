"""ONNX export: valid and faithful to PyTorch, cached by content, rebuilt when damaged, atomic when interrupted."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mnbench.artifacts import export as export_module
from mnbench.archs import build_model, fold_batchnorm, pytorch_param_count
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.artifacts.export import export_model, file_sha256, manifest_path_for, model_path_for

SMALL = ModelConfig(arch="v1", width=0.25, resolution=64)


def run_onnx(path, batch_input: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": batch_input})[0]


def torch_output(config: ModelConfig, batch_input: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return build_model(config)(torch.from_numpy(batch_input)).numpy()


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())  # hidden temp files included


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_model(SMALL, models_dir=tmp_path_factory.mktemp("models"), progress=False)


def test_export_is_valid_deployment_graph(exported):
    onnx.checker.check_model(str(exported.path), full_check=True)
    model = onnx.load(str(exported.path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    op_types = {n.op_type for n in model.graph.node}
    assert "Conv" in op_types and "BatchNormalization" not in op_types
    assert all(n.name for n in model.graph.node)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]  # static by default


def test_export_matches_pytorch(exported):
    sample = np.random.default_rng(1).standard_normal((1, 3, 64, 64), dtype=np.float32)
    expected = torch_output(SMALL, sample)
    actual = run_onnx(exported.path, sample)
    assert actual.shape == (1, 1000)
    assert np.max(np.abs(actual - expected)) <= 1e-4 * max(np.max(np.abs(expected)), 1.0)


def test_export_result_describes_the_file(exported):
    assert exported.reused is False
    assert exported.sha256 == file_sha256(exported.path)
    assert exported.params == pytorch_param_count(build_model(SMALL))
    assert exported.cost.macs > 0 and exported.cost.params > 0
    assert re.fullmatch(r"v1-separable-w0\.25-r64-b1-opset17-[0-9a-f]{12}\.onnx", exported.path.name)
    manifest = json.loads(manifest_path_for(exported.path).read_text())
    assert manifest["sha256"] == exported.sha256
    assert manifest["params"] == exported.params
    assert manifest["versions"]["torch"] == torch.__version__


def test_graph_params_are_the_folded_models(exported, tmp_path):
    v3_small = ModelConfig(arch="v3-small", width=0.5, resolution=64)  # SE convs: biases the exporter dedupes
    for config, result in [(SMALL, exported), (v3_small, export_model(v3_small, models_dir=tmp_path, progress=False))]:
        assert result.cost.params == pytorch_param_count(fold_batchnorm(build_model(config))) < result.params


def test_second_call_reuses_the_cache(exported):
    mtime = exported.path.stat().st_mtime_ns
    again = export_model(SMALL, models_dir=exported.path.parent, progress=False)
    assert again.reused is True
    assert again.path == exported.path and again.sha256 == exported.sha256
    assert again.params == exported.params and again.cost.macs == exported.cost.macs
    assert exported.path.stat().st_mtime_ns == mtime


def test_cache_key_separates_configs_and_opsets(tmp_path):
    paths = {
        model_path_for(SMALL, models_dir=tmp_path),
        model_path_for(SMALL, models_dir=tmp_path, opset=18),
        model_path_for(ModelConfig(arch="v1", width=0.25, resolution=64, variant="standard"), models_dir=tmp_path),
        model_path_for(ModelConfig(arch="v1", width=0.25, resolution=64, dynamic_batch=True), models_dir=tmp_path),
    }
    assert len(paths) == 4
    assert model_path_for(SMALL, models_dir=tmp_path) == model_path_for(SMALL, models_dir=tmp_path)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def _drop_manifest(path):
    manifest_path_for(path).unlink()


@pytest.mark.parametrize("damage", [_truncate, _flip_bytes, _drop_manifest], ids=["truncated", "flipped", "no-manifest"])
def test_damaged_cache_is_rebuilt(tmp_path, damage):
    first = export_model(SMALL, models_dir=tmp_path, progress=False)
    damage(first.path)
    second = export_model(SMALL, models_dir=tmp_path, progress=False)
    assert second.reused is False
    assert second.sha256 == file_sha256(second.path)
    onnx.checker.check_model(str(second.path), full_check=True)
    assert export_model(SMALL, models_dir=tmp_path, progress=False).reused is True


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "_validate", interrupt)  # after the temp file is written, before the rename
    with pytest.raises(KeyboardInterrupt):
        export_model(SMALL, models_dir=tmp_path, progress=False)
    assert files_in(tmp_path) == []


def test_export_that_disagrees_with_pytorch_is_refused(tmp_path, monkeypatch):
    real_fold = export_module.fold_batchnorm

    def fold_badly(model):
        folded = real_fold(model)
        with torch.no_grad():
            next(p for p in reversed(list(folded.parameters())) if p.dim() == 1).add_(1.0)  # shift the logits
        return folded

    monkeypatch.setattr(export_module, "fold_batchnorm", fold_badly)
    with pytest.raises(MnbenchError, match="differs from PyTorch"):
        export_model(SMALL, models_dir=tmp_path, progress=False)
    assert files_in(tmp_path) == []


def test_dynamic_batch_runs_batch_1_and_4(tmp_path):
    config = ModelConfig(arch="v1", width=0.25, resolution=64, dynamic_batch=True)
    exported = export_model(config, models_dir=tmp_path, progress=False)
    assert "-bdyn-" in exported.path.name
    for batch in (1, 4):
        sample = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64), dtype=np.float32)
        expected = torch_output(config, sample)
        actual = run_onnx(exported.path, sample)
        assert actual.shape == (batch, 1000)
        assert np.max(np.abs(actual - expected)) <= 1e-4 * max(np.max(np.abs(expected)), 1.0)


def test_output_gets_a_copy(exported, tmp_path):
    again = export_model(SMALL, models_dir=exported.path.parent, output=tmp_path / "deploy" / "m.onnx", progress=False)
    assert again.output == tmp_path / "deploy" / "m.onnx"
    assert file_sha256(again.output) == exported.sha256
    assert files_in(tmp_path / "deploy") == ["m.onnx"]


def test_unwritable_output_names_the_path(exported, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "m.onnx"
    with pytest.raises(MnbenchError, match=re.escape(str(target))):
        export_model(SMALL, models_dir=exported.path.parent, output=target, progress=False)


def test_quiet_export_prints_nothing(tmp_path, capfd):
    export_model(SMALL, models_dir=tmp_path, progress=False)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_unsupported_opset_is_refused(tmp_path):
    with pytest.raises(MnbenchError, match="opset"):
        export_model(SMALL, models_dir=tmp_path, opset=13, progress=False)


def test_cache_key_follows_the_model_source(monkeypatch):
    """Editing an architecture file must invalidate the cache, even without a version bump."""
    from mnbench.artifacts import export

    config = ModelConfig(arch="v1", width=0.25, resolution=64)
    before = export.cache_key(config)
    monkeypatch.setattr(export, "model_source_digest", lambda: "edited")
    assert export.cache_key(config) != before
