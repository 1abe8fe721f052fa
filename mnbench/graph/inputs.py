"""What mnbench feeds each input of a model: its element type, and for an integer input the values that are valid.

Float inputs get the benchmark's seeded standard-normal numbers (`backends.base.make_input`). An integer input is
only filled where the graph says which values are valid: it must be used as the indices of `Gather` ops (an
embedding lookup, a table read) whose data has a known size along the gathered axis, so [0, smallest size) is
valid. Anything else (a mask, a length, a token type the graph uses arithmetically) is refused with the reason:
values made up for it could send the model down a path it never takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from mnbench.errors import MnbenchError

FLOAT_TYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16,
               onnx.TensorProto.DOUBLE: np.float64}
INTEGER_TYPES = {onnx.TensorProto.INT64: np.int64, onnx.TensorProto.INT32: np.int32,
                 onnx.TensorProto.INT16: np.int16, onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8}


@dataclass(frozen=True)
class InputSpec:
    """One graph input: its numpy dtype, and for integers the half-open range [low, high) its values come from."""

    name: str
    dtype: type
    low: int | None = None
    high: int | None = None

    def as_json(self) -> dict:
        out = {"dtype": np.dtype(self.dtype).name}
        return out | ({"range": [self.low, self.high]} if self.low is not None else {})


def input_specs(model: onnx.ModelProto) -> dict[str, InputSpec]:
    """name -> InputSpec for every graph input that is not an initializer; a MnbenchError for one mnbench cannot
    fill (a bool or string input, an integer input whose valid values the graph does not bound)."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    specs = {}
    for value in graph.input:
        if value.name in initializers:
            continue
        elem = value.type.tensor_type.elem_type
        if elem in FLOAT_TYPES:
            specs[value.name] = InputSpec(value.name, FLOAT_TYPES[elem])
        elif elem in INTEGER_TYPES:
            low, high = _index_range(model, value.name)
            specs[value.name] = InputSpec(value.name, INTEGER_TYPES[elem], low, high)
        else:
            kind = onnx.TensorProto.DataType.Name(elem) if elem else "not a tensor"
            raise MnbenchError(f"input {value.name!r} is {kind}; mnbench fills float and integer inputs only")
    return specs


def _index_range(model: onnx.ModelProto, name: str) -> tuple[int, int]:
    """[0, n): n the smallest gathered-axis size over the Gather ops that read `name` as indices."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    shapes |= {init.name: list(init.dims) for init in model.graph.initializer}
    consumers = [node for node in model.graph.node if name in node.input]
    if not consumers:
        raise MnbenchError(f"integer input {name!r} is used by no node; mnbench cannot tell which values are valid")
    sizes = []
    for node in consumers:
        if node.op_type != "Gather" or list(node.input).index(name) != 1:
            raise MnbenchError(f"integer input {name!r} feeds {node.op_type} ({node.name or 'unnamed'}), not only "
                               "the indices of a Gather; mnbench cannot tell which values are valid for it, so it "
                               "refuses to make some up")
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        data_shape = shapes.get(node.input[0]) or []
        size = data_shape[axis] if -len(data_shape) <= axis < len(data_shape) else None
        if not size:
            raise MnbenchError(f"integer input {name!r} indexes {node.input[0]!r}, whose size along axis {axis} is "
                               "not known; mnbench cannot tell which values are valid")
        sizes.append(int(size))
    return 0, min(sizes)


def fill(spec: InputSpec, shape: list[int], seed: int) -> np.ndarray:
    """Seeded values for `spec`: integers uniform in [low, high), floats the benchmark's standard normal."""
    rng = np.random.default_rng(seed)
    if spec.low is not None:
        return np.ascontiguousarray(rng.integers(spec.low, spec.high, size=tuple(shape), dtype=spec.dtype))
    return np.ascontiguousarray(rng.standard_normal(tuple(shape), dtype=np.float32).astype(spec.dtype))
