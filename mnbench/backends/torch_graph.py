"""The nn.Module a torch session runs for an ONNX file: the network that was exported, never a re-import of it.

- An export of mnbench's (its manifest beside it names the config, and the manifest's sha256 is the file's): the
  config's network from `mnbench.archs` (same seeded weights, BatchNorm folded as export folds it, eval mode).
- Any other file must be a small graph of Conv, Relu, Add and Mul nodes (the machine-speed reference, the peak's
  dense convs, streaming ops and layer chains): rebuilt with the file's own weights. Anything else is refused.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from mnbench.backends.base import concrete_shape
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.manifest import checked_manifest, manifest_path_for

GRAPH_OPS = ("Conv", "Relu", "Add", "Mul")
# Folded models kept per process: calibrating a large net's BatchNorm takes seconds on a small CPU, and every
# repetition opens fresh sessions. Each session gets its own deep copy, so no session shares weights with another.
_MODEL_CACHE_SIZE = 16


@dataclass(frozen=True, kw_only=True)
class TorchNetwork:
    module: nn.Module  # on the CPU, fp32, eval mode; the session's own copy; called as module(*inputs)
    input_shapes: dict[str, list[int]]  # in the order the module takes them
    source: str  # how the module was made, for `info["settings"]`
    config: ModelConfig | None = None


def network_for(model_path: Path, batch: int) -> TorchNetwork:
    """The module to run for `model_path` at `batch`, with its inputs' names and shapes."""
    config = _exported_config(model_path)
    if config is not None:
        dims = ["batch" if config.dynamic_batch else config.batch, 3, config.resolution, config.resolution]
        return TorchNetwork(module=copy.deepcopy(_folded_model(config)), config=config,
                            input_shapes={"input": concrete_shape("input", dims, batch)},
                            source="mnbench.archs.build_model + fold_batchnorm (the exported network)")
    module, dims = graph_module(_load(model_path))
    return TorchNetwork(module=module, input_shapes={name: concrete_shape(name, d, batch) for name, d in dims.items()},
                        source="ONNX graph of Conv/Relu/Add/Mul rebuilt with the file's own weights")


def _exported_config(model_path: Path) -> ModelConfig | None:
    """The config of an mnbench export, from its manifest (`mnbench.manifest`); None if it has none. A manifest
    that does not describe the file's bytes is refused there."""
    manifest = checked_manifest(model_path)
    if manifest is None:
        return None
    try:
        config = manifest["config"]
    except KeyError as exc:
        raise MnbenchError(f"damaged export manifest {manifest_path_for(model_path)}: {exc}; "
                           "run `mnbench export` again") from None
    return ModelConfig(**config)


@functools.lru_cache(maxsize=_MODEL_CACHE_SIZE)
def _folded_model(config: ModelConfig) -> nn.Module:
    from mnbench.archs import build_model, fold_batchnorm

    return fold_batchnorm(build_model(config)).eval()


def _load(model_path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise MnbenchError(f"{model_path}: not a readable ONNX model ({exc})") from None


class OnnxGraphModule(nn.Module):
    """A small ONNX graph of Conv, Relu, Add and Mul nodes run in the file's node order (weights as parameters,
    other constants as buffers, so `.to(device, dtype)` moves them all)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.input_names = [v.name for v in graph.input if v.name not in weights]
        if len(graph.output) != 1:
            raise MnbenchError(f"the torch devices run graphs with one output; this one has {len(graph.output)}")
        self.output_name = graph.output[0].name
        self.convs = nn.ModuleList()
        self.steps: list[tuple[str, list[str], str, int]] = []
        constants: dict[str, int] = {}
        for node in graph.node:
            if node.op_type not in GRAPH_OPS:
                raise MnbenchError(f"the torch devices run mnbench's exports (run `mnbench export`) and graphs of "
                                   f"{', '.join(GRAPH_OPS)}; this graph has a {node.op_type} node "
                                   f"({node.name or 'unnamed'})")
            slot = -1
            if node.op_type == "Conv":
                self.convs.append(_conv(node, weights))
                slot = len(self.convs) - 1
            inputs = list(node.input[:1] if node.op_type == "Conv" else node.input)
            for name in inputs:
                if name in weights and name not in constants:
                    constants[name] = len(constants)
                    self.register_buffer(f"constant{constants[name]}", torch.from_numpy(np.array(weights[name])))
            self.steps.append((node.op_type, [f"constant{constants[n]}" if n in constants else n for n in inputs],
                               node.output[0], slot))
        self._constants = [f"constant{i}" for i in range(len(constants))]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        values = dict(zip(self.input_names, inputs)) | {name: getattr(self, name) for name in self._constants}
        for op, names, out, slot in self.steps:
            if op == "Conv":
                values[out] = self.convs[slot](values[names[0]])
            elif op == "Relu":
                values[out] = torch.relu(values[names[0]])
            elif op == "Add":
                values[out] = values[names[0]] + values[names[1]]
            else:
                values[out] = values[names[0]] * values[names[1]]
        return values[self.output_name]


def graph_module(model: onnx.ModelProto) -> tuple[OnnxGraphModule, dict[str, list]]:
    """The graph as a module, and {input name: dims} in the graph's input order."""
    module = OnnxGraphModule(model)
    dims = {v.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in v.type.tensor_type.shape.dim]
            for v in model.graph.input if v.name in module.input_names}
    return module.eval(), dims


def _conv(node: onnx.NodeProto, weights: dict[str, np.ndarray]) -> nn.Conv2d:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    weight = weights.get(node.input[1]) if len(node.input) > 1 else None
    if weight is None or weight.ndim != 4:
        raise MnbenchError(f"Conv {node.name or ''} needs a 2-D weight initializer")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise MnbenchError(f"Conv {node.name or ''}: only symmetric explicit pads are supported")
    groups = int(attrs.get("group", 1))
    bias = weights.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    conv = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                     stride=tuple(attrs.get("strides", [1, 1])), padding=tuple(pads[:2]),
                     dilation=tuple(attrs.get("dilations", [1, 1])), groups=groups, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.array(weight, dtype=np.float32)))
        if bias is not None:
            conv.bias.copy_(torch.from_numpy(np.array(bias, dtype=np.float32)))
    return conv
