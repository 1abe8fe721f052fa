"""The nn.Module a torch session runs for an ONNX file: the network that was exported, never a re-import of it.

- An export of mnbench's (its manifest beside it names the config, and the manifest's sha256 is the file's): the
  config's network from `mnbench.archs` (same seeded weights, BatchNorm folded as export folds it, eval mode).
- Any other file must be a plain chain of Conv and Relu nodes (the machine-speed reference, the peak's dense
  convs): rebuilt as nn.Conv2d / nn.ReLU with the file's own weights. Anything else is refused.
"""

from __future__ import annotations

import copy
import functools
import json
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

CHAIN_OPS = ("Conv", "Relu")
# Folded models kept per process: calibrating a large net's BatchNorm takes seconds on a small CPU, and every
# repetition opens fresh sessions. Each session gets its own deep copy, so no session shares weights with another.
_MODEL_CACHE_SIZE = 16


@dataclass(frozen=True, kw_only=True)
class TorchNetwork:
    module: nn.Module  # on the CPU, fp32, eval mode; the session's own copy
    input_name: str
    input_shape: list[int]
    source: str  # how the module was made, for `info["settings"]`
    config: ModelConfig | None = None


def network_for(model_path: Path, batch: int) -> TorchNetwork:
    """The module to run for `model_path` at `batch`, with its input's name and shape."""
    config = _exported_config(model_path)
    if config is not None:
        dims = ["batch" if config.dynamic_batch else config.batch, 3, config.resolution, config.resolution]
        return TorchNetwork(module=copy.deepcopy(_folded_model(config)), input_name="input",
                            input_shape=concrete_shape("input", dims, batch), config=config,
                            source="mnbench.archs.build_model + fold_batchnorm (the exported network)")
    module, name, dims = conv_chain(_load(model_path))
    return TorchNetwork(module=module, input_name=name, input_shape=concrete_shape(name, dims, batch),
                        source="Conv/Relu chain rebuilt from the ONNX file's weights")


def _exported_config(model_path: Path) -> ModelConfig | None:
    """The config of an mnbench export, from the manifest `mnbench.export` writes beside it; None if it has none.

    A manifest whose sha256 is not the file's means the file was replaced or damaged: refused, never guessed."""
    from mnbench.export import file_sha256, manifest_path_for  # export imports mnbench.backends

    manifest_path = manifest_path_for(Path(model_path))
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        config = manifest["config"]
        sha256 = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MnbenchError(f"damaged export manifest {manifest_path}: {exc}; run `mnbench export` again") from None
    if sha256 != file_sha256(Path(model_path)):
        raise MnbenchError(f"{model_path} is not the file its manifest describes (sha256 differs); "
                           "run `mnbench export` again")
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


def conv_chain(model: onnx.ModelProto) -> tuple[nn.Sequential, str, list]:
    """An ONNX graph that is one chain of Conv and Relu nodes as an nn.Sequential: (module, input name, dims)."""
    graph = model.graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in weights]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise MnbenchError("the torch devices run mnbench's exports and single-input Conv/Relu chains; "
                           f"this graph has {len(inputs)} inputs and {len(graph.output)} outputs")
    layers, current = [], inputs[0].name
    for node in graph.node:
        if node.op_type not in CHAIN_OPS:
            raise MnbenchError(f"the torch devices run mnbench's exports (run `mnbench export`) and Conv/Relu chains; "
                               f"this graph has a {node.op_type} node ({node.name or 'unnamed'})")
        if not node.input or node.input[0] != current:
            raise MnbenchError(f"node {node.name or node.op_type} does not continue the chain; the torch devices run "
                               "only single-path Conv/Relu graphs besides mnbench's exports")
        layers.append(_conv(node, weights) if node.op_type == "Conv" else nn.ReLU())
        current = node.output[0]
    if current != graph.output[0].name:
        raise MnbenchError("the graph's output is not the end of its Conv/Relu chain")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in inputs[0].type.tensor_type.shape.dim]
    return nn.Sequential(*layers).eval(), inputs[0].name, dims


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
