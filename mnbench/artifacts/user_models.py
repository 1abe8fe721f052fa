"""The user's own ONNX files as models mnbench measures: validated, costed on their graphs, labelled and paired.

`mnbench run --model A.onnx --model B.onnx [--label a --label b] [--pair a,b]` measures them in the same
interleaved rounds, with the same method and result schema as the built-in nets. A pair (`--pair BASELINE,CANDIDATE`,
by default the first two files) takes the place of standard and separable in the report: theoretical speedup
MACs(baseline) / MACs(candidate), realized speedup p50(baseline) / p50(candidate).

Their records say what they are in `model`: {"source": "onnx-file", "label", "file", "inputs", "pair"?}; `arch` is
the label, `variant` the role in the pair ("baseline", "candidate", or "model" when unpaired), `width` 1 and
`resolution` the input's last dimension (0 when the input is not an image).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import onnx

from mnbench.graph.cost import ModelCost, count_cost
from mnbench.errors import MnbenchError
from mnbench.graph.inputs import input_specs
from mnbench.artifacts.user_pairs import ROLES, pair_name

SOURCE = "onnx-file"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, kw_only=True)
class UserModelConfig:
    """What `mnbench.measure.records` reads from a config, for a user's file (the counterpart of `ModelConfig`)."""

    label: str
    file: str
    resolution: int
    batch: int
    dynamic_batch: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    pair: dict[str, str] | None = None  # {"name": "a-vs-b", "role": "baseline" | "candidate"}
    width: float = 1.0

    @property
    def arch(self) -> str:
        return self.label

    @property
    def variant(self) -> str:
        return self.pair["role"] if self.pair else "model"

    @property
    def slug(self) -> str:
        return f"model-{self.label}-b{'dyn' if self.dynamic_batch else self.batch}"

    def as_dict(self) -> dict[str, Any]:
        out = {"source": SOURCE, "label": self.label, "file": self.file, "batch": self.batch,
               "dynamic_batch": self.dynamic_batch, "inputs": self.inputs}
        return out | ({"pair": dict(self.pair)} if self.pair else {})


@dataclass(frozen=True, kw_only=True)
class UserModel:
    """A user's file ready to measure; the fields `runner` and `recording` read from an `ExportedModel`."""

    path: Path
    sha256: str
    config: UserModelConfig
    opset: int
    cost: ModelCost
    params: int
    macs_per_image: int


def load_user_models(paths: Sequence[Path], *, labels: Sequence[str] = (), pair: str | None = None,
                     batch: int = 1) -> list[UserModel]:
    """Validate and cost each file; label them (default: the file stem); set the pair's roles."""
    if labels and len(labels) != len(paths):
        raise MnbenchError(f"{len(labels)} --label for {len(paths)} --model; give one label per model, in order")
    names = list(labels) or [_label_from(Path(p)) for p in paths]
    for name in names:
        if not _LABEL.fullmatch(name):
            raise MnbenchError(f"label {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    if len(set(names)) != len(names):
        raise MnbenchError(f"labels must differ, got {', '.join(names)}; give --label for each model")
    roles = _roles(names, pair)
    models = []
    for path, name in zip(map(Path, paths), names):
        model, resolution, dynamic = _checked(path, batch)
        try:
            cost = count_cost(_with_batch(model, 1) if dynamic else model)
        except MnbenchError as exc:
            raise MnbenchError(f"{path}: {exc}") from None
        role = roles.get(name)
        config = UserModelConfig(
            label=name, file=path.name, resolution=resolution, batch=batch, dynamic_batch=dynamic,
            inputs={n: s.as_json() for n, s in input_specs(model).items()},
            pair={"name": pair_name(*roles), "role": role} if role else None)
        static_batch = 1 if dynamic else _first_dim(model)
        models.append(UserModel(path=path.resolve(), sha256=hashlib.sha256(path.read_bytes()).hexdigest(), config=config,
                                opset=_opset(model), cost=cost, params=cost.params,
                                macs_per_image=cost.macs // max(static_batch, 1)))
    return models


def _label_from(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).strip("-._")[:64] or "model"


def _roles(names: list[str], pair: str | None) -> dict[str, str]:
    """label -> role for the pair: `--pair a,b`, or the first two models; {} for a single model."""
    if pair is None:
        chosen = names[:2] if len(names) >= 2 else []
    else:
        chosen = [part.strip() for part in pair.split(",")]
        if len(chosen) != 2 or chosen[0] == chosen[1]:
            raise MnbenchError(f"--pair takes two different labels, BASELINE,CANDIDATE; got {pair!r}")
        missing = [c for c in chosen if c not in names]
        if missing:
            raise MnbenchError(f"--pair names {', '.join(missing)}, which is not a model label here "
                               f"(labels: {', '.join(names)})")
    return dict(zip(chosen, ROLES))


def _checked(path: Path, batch: int) -> tuple[onnx.ModelProto, int, bool]:
    """The model, its input's last dimension and whether its batch is dynamic; a MnbenchError naming the file for
    anything mnbench cannot measure."""
    if not path.is_file():
        raise MnbenchError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - a protobuf parse error, a checker error, an unreadable file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise MnbenchError(f"{path}: not a readable ONNX model ({first})") from None
    try:
        specs = input_specs(model)
    except MnbenchError as exc:
        raise MnbenchError(f"{path}: {exc}") from None
    if not specs:
        raise MnbenchError(f"{path}: the graph has no inputs to feed")
    dynamic = False
    last = 0
    for value in model.graph.input:
        if value.name not in specs:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if not dims:
            raise MnbenchError(f"{path}: input {value.name!r} has no shape")
        if any(d is None or d <= 0 for d in dims[1:]):
            raise MnbenchError(f"{path}: input {value.name!r} has dynamic dimensions besides the batch "
                               f"({_shape_text(value)}); export it with fixed sizes")
        if dims[0] is None or dims[0] <= 0:
            dynamic = True
        elif dims[0] != batch:
            raise MnbenchError(f"{path}: input {value.name!r} has batch {dims[0]}, but batch {batch} was asked; "
                               f"pass --batch {dims[0]} or export it with a dynamic batch")
        last = last or (dims[-1] if len(dims) == 4 else 0)
    return model, last, dynamic


def _shape_text(value: onnx.ValueInfoProto) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in value.type.tensor_type.shape.dim) + "]"


def _with_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A copy whose inputs' dynamic first dimension is `batch`, so shape inference can cost it (per image)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {init.name for init in fixed.graph.initializer}
    for value in fixed.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch
    for value in fixed.graph.output:  # let inference recompute them from the fixed inputs
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch
    return fixed


def _first_dim(model: onnx.ModelProto) -> int:
    initializers = {init.name for init in model.graph.initializer}
    value = next(v for v in model.graph.input if v.name not in initializers)
    return value.type.tensor_type.shape.dim[0].dim_value


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
