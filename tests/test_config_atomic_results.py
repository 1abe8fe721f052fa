"""The shared ground: model config validation, atomic writes, and the result-file schema."""

import json
import os

import pytest

from mnbench import atomic, results
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.stats.samples import summarize


@pytest.mark.parametrize("kwargs, needle", [
    (dict(arch="v9"), "unknown arch 'v9'"),
    (dict(arch="v2", variant="dense"), "unknown variant"),
    (dict(arch="v2", width=0), "width must be > 0"),
    (dict(arch="v2", width=-0.5), "width must be > 0"),
    (dict(arch="v2", resolution=200), "positive multiple of 32"),
    (dict(arch="v2", resolution=0), "positive multiple of 32"),
    (dict(arch="v2", batch=0), "batch must be a positive"),
])
def test_bad_model_config_says_what_is_allowed(kwargs, needle):
    with pytest.raises(MnbenchError, match=needle):
        ModelConfig(**kwargs)


def test_slug_names_every_field_that_changes_the_file():
    a = ModelConfig(arch="v3-small", variant="standard", width=0.75, resolution=160, batch=4)
    assert a.slug == "v3-small-standard-w0.75-r160-b4"
    assert ModelConfig(arch="v1", dynamic_batch=True).slug.endswith("-bdyn")


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic.write_text(target, "first")
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["out.json"]


def test_interrupted_atomic_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half-wri")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_unwritable_target_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MnbenchError, match="cannot write"):
        atomic.write_text(blocker / "inside.json", "{}")


def _record(**overrides):
    samples = [1.0, 1.2, 1.1, 0.9]
    record = dict(arch="v1", variant="separable", width=1.0, resolution=224, batch=1, device="cpu",
                  runtime="onnxruntime", precision="fp32", threads=2, macs=568_740_352, params=4_231_976,
                  latency_ms=summarize(samples), n=4, samples_ms=samples, throughput_ips=1000 / 1.05,
                  model_sha256="ab" * 32)
    record.update(overrides)
    return record


def test_result_round_trip(tmp_path):
    doc = results.new_result({"hostname": "h", "cpu_model": "c"}, [_record()])
    path = results.write_result(doc, tmp_path / "r.json")
    assert results.load_result(path) == json.loads(json.dumps(doc))


def test_a_result_write_interrupted_half_way_leaves_the_old_file_whole_and_no_other(tmp_path, monkeypatch):
    """Ctrl-C while a result file is being written (here: after half its text): the file there before stays whole
    and loadable, and nothing else is left beside it, as `mnbench run` promises for its partial file."""
    from pathlib import Path

    path = tmp_path / "r.json"
    before = results.new_result({"hostname": "h"}, [_record()])
    results.write_result(before, path)
    real = Path.write_text

    def half_then_ctrl_c(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", half_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        results.write_result(results.new_result({"hostname": "h"}, [_record(), _record(variant="standard")]), path)
    monkeypatch.undo()
    assert results.load_result(path) == json.loads(json.dumps(before))
    assert os.listdir(tmp_path) == ["r.json"]


@pytest.mark.parametrize("damage", [
    lambda d: d.pop("schema_version"),
    lambda d: d["records"][0].pop("latency_ms"),
    lambda d: d["records"][0].update(n=5),
    lambda d: d["records"][0].update(macs="many"),
    lambda d: d["records"][0]["latency_ms"].pop("p99"),
])
def test_invalid_documents_are_refused(damage):
    doc = results.new_result({"hostname": "h"}, [_record()])
    damage(doc)
    with pytest.raises(results.DamagedResultError):
        results.validate_result(doc)


def test_damaged_files_are_skipped_with_a_warning_naming_them(tmp_path):
    good = results.write_result(results.new_result({"hostname": "h"}, [_record()]), tmp_path / "good.json")
    torn = tmp_path / "torn.json"
    torn.write_text(good.read_text()[:100])
    with pytest.warns(UserWarning, match="torn.json"):
        loaded = results.load_results([tmp_path])
    assert [p.name for p, _ in loaded] == ["good.json"]


def test_missing_result_path_is_a_user_error(tmp_path):
    with pytest.raises(MnbenchError, match="no such file"):
        results.load_results([tmp_path / "nope"])
