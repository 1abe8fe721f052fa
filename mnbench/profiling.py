"""Where the time goes: per-operator-category time from the runtime's own profiler, set against the cost model.

A profile runs in its own runtime session (profiling slows every kernel down a little, so the timed runs never
profile). The runtime reports time per *kernel*; kernels are mapped back to the exported graph's nodes and from
there to the cost model's categories:

- ONNX Runtime: `SessionOptions.enable_profiling` writes a Chrome trace; every `<kernel>_kernel_time` event of the
  measured runs (each run is a `model_run` event; the warm-up runs are dropped) is one kernel execution.
  Fusions rename kernels: `FusedConv` keeps the Conv's name, but the NCHWc layout pass names a fused Conv after
  the *output tensor* of the last op it swallowed (`/block/act/Relu_output_0_nchwc`).
- OpenVINO: `PERF_COUNT` counters, one per executed node of the compiled graph, which the runtime model maps
  back to the original layers (`originalLayersNames`). The CPU plugin reports the *running mean* over every
  inference since compilation, so the warm-up runs are taken out by difference.

Each kernel is attributed to a graph node by name (exact node or tensor name, else the longest node or tensor
name it starts with); a convolution or matrix kernel that lands on a node without MACs (the activation it fused)
is walked back to the Conv/Gemm/MatMul feeding that node alone. Kernels that match nothing are classified from
their own shapes (conv geometry), or `other`. Layout reorders the runtime inserts are `other`, and so is the gap
between the run's wall time and the sum of its kernels (executor overhead, thread hand-off), so the categories add
up to the measured time. ORT on a GPU times kernels at launch, so there the GPU's time lands in that gap (the
profile's `notes` say so).

`macs` are the cost model's, on the exported graph: per sample for a dynamic-batch export, the whole batch for a
fixed one; `gmacs_per_s` accounts for either.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import onnx

from mnbench.config import CATEGORIES
from mnbench.errors import MnbenchError

DEFAULT_ITERATIONS = 50
DEFAULT_WARMUP = 5
OVERHEAD_NODE = "(runtime overhead)"
MAC_OP_TYPES = frozenset({"Conv", "Gemm", "MatMul"})
# Runtime kernels doing the Conv/Gemm/MatMul work (ORT: Conv, FusedConv, NhwcConv, QLinearConv, FusedGemm,
# FusedMatMul, ...; OpenVINO: Convolution, GroupConvolution, FullyConnected, MatMul, ...).
_MAC_KERNEL = re.compile(r"conv|gemm|matmul|fullyconnected|innerproduct", re.IGNORECASE)
_FC_KERNEL = re.compile(r"gemm|matmul|fullyconnected|innerproduct", re.IGNORECASE)
# Layout changes the runtime inserts: data movement of its own choosing, never part of a graph node.
LAYOUT_KERNELS = frozenset({"Reorder", "ReorderInput", "ReorderOutput"})
# A name continues past a node's name at one of these (`<node>/WithoutBiases`, `<tensor>_nchwc`).
_NAME_SEPARATORS = "/_:.-"
# How far back from a fused activation to look for the Conv/Gemm that the kernel really is.
MAX_FUSED_CHAIN = 4

# Element types (ORT trace) and kernel-name suffixes (OpenVINO exec_type) -> mnbench precision names.
_ORT_DTYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8",
               "double": "fp64"}
_OV_EXEC_PRECISION = re.compile(r"_(f32|fp32|bf16|f16|fp16|i8|u8|int8)$", re.IGNORECASE)
_OV_PRECISIONS = {"f32": "fp32", "fp32": "fp32", "bf16": "bf16", "f16": "fp16", "fp16": "fp16",
                  "i8": "int8", "u8": "int8", "int8": "int8"}


# ---------------------------------------------------------------------------------------------------------------
# What a runtime reports


@dataclass(frozen=True, kw_only=True)
class ConvGeometry:
    """A convolution as a kernel's own shapes describe it: enough to tell depthwise from pointwise."""

    in_channels: int
    weight_in_channels: int  # in_channels / groups
    kernel: tuple[int, ...]
    in_spatial: tuple[int, ...]

    @property
    def groups(self) -> int:
        return max(1, self.in_channels // max(1, self.weight_in_channels))

    def category(self) -> str:
        """The cost model's rules (mnbench.cost), applied to a kernel's shapes."""
        if self.groups > 1 and self.groups == self.in_channels and self.weight_in_channels == 1:
            return "depthwise"
        if self.groups != 1:
            return "grouped"
        if all(k == 1 for k in self.kernel):
            return "fc" if all(s == 1 for s in self.in_spatial) else "pointwise"
        return "standard"


@dataclass(frozen=True, kw_only=True)
class KernelTime:
    """One kernel of the runtime's executed graph, with its mean time per inference."""

    name: str
    op_type: str  # the runtime's op type: FusedConv, Convolution, ReorderOutput, ...
    time_ms: float
    origins: tuple[str, ...] = ()  # original layer names the runtime reports for it (OpenVINO)
    exec_type: str = ""  # OpenVINO's primitive (brgconv_avx512_bf16, ...) or ORT's provider
    precision: str | None = None  # what the kernel computed in, when it shows
    conv: ConvGeometry | None = None

    @property
    def is_mac_kernel(self) -> bool:
        return bool(_MAC_KERNEL.search(self.op_type))

    def fallback_category(self) -> str:
        """The category from the kernel alone, for a kernel that matches no graph node."""
        if self.conv is not None and self.is_mac_kernel:
            return self.conv.category()
        if _FC_KERNEL.search(self.op_type):
            return "fc"
        return "other"


@dataclass(frozen=True, kw_only=True)
class RuntimeProfile:
    kernels: list[KernelTime]
    total_time_ms: float  # mean wall time of one measured inference, as the runtime timed it
    runtime: str
    runtime_version: str = ""
    threads: int | None = None
    iterations: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# ONNX Runtime trace


def ort_kernel_times(events: list[dict[str, Any]], *, skip_runs: int) -> tuple[list[KernelTime], list[float]]:
    """Kernels and per-run wall times (ms) of an ORT Chrome trace, the first `skip_runs` runs left out.

    Kernels are returned in first-execution order, each with its mean time per measured run.
    """
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    measured = runs[skip_runs:]
    if not measured:
        raise MnbenchError(f"the ONNX Runtime trace holds {len(runs)} runs, none after the {skip_runs} warm-up runs")
    first_start = measured[0][0]
    total_us: dict[str, float] = {}
    first_event: dict[str, dict[str, Any]] = {}
    for event in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"]):
        name = event.get("name", "")
        if not name.endswith("_kernel_time") or event["ts"] < first_start:
            continue
        kernel = name[: -len("_kernel_time")]
        total_us[kernel] = total_us.get(kernel, 0.0) + float(event["dur"])
        first_event.setdefault(kernel, event)
    kernels = [_ort_kernel(kernel, first_event[kernel].get("args", {}), total_us[kernel] / 1e3 / len(measured))
               for kernel in total_us]
    return kernels, [(end - start) / 1e3 for start, end in measured]


def _ort_kernel(name: str, args: dict[str, Any], time_ms: float) -> KernelTime:
    op_type = str(args.get("op_name", ""))
    inputs = [_only_value(shape) for shape in args.get("input_type_shape", [])]
    dtypes = [next(iter(shape), None) for shape in args.get("input_type_shape", [])]
    return KernelTime(
        name=name, op_type=op_type, time_ms=time_ms, exec_type=str(args.get("provider", "")),
        precision=_ORT_DTYPES.get(dtypes[0]) if dtypes else None,
        conv=_ort_conv_geometry(op_type, inputs),
    )


def _only_value(mapping: dict[str, Any]) -> list[int]:
    return list(next(iter(mapping.values()), []))


def _ort_conv_geometry(op_type: str, inputs: list[list[int]]) -> ConvGeometry | None:
    if "Conv" not in op_type or len(inputs) < 2 or len(inputs[0]) < 3 or len(inputs[1]) != len(inputs[0]):
        return None
    x, w = inputs[0], inputs[1]
    # Nhwc* kernels take channels-last activations; their weights stay [M, C/g, kH, kW].
    channels, spatial = (x[-1], x[1:-1]) if op_type.startswith("Nhwc") else (x[1], x[2:])
    return ConvGeometry(in_channels=channels, weight_in_channels=w[1], kernel=tuple(w[2:]), in_spatial=tuple(spatial))


def read_ort_trace(path: str | Path) -> list[dict[str, Any]]:
    try:
        events = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MnbenchError(f"cannot read the ONNX Runtime profile {path}: {exc}") from exc
    # Older ORT builds wrap the events: {"traceEvents": [...]}.
    return events["traceEvents"] if isinstance(events, dict) else events


# ---------------------------------------------------------------------------------------------------------------
# OpenVINO counters


def ov_precision(exec_type: str) -> str | None:
    """`brgconv_avx512_bf16` -> "bf16"; None when the primitive name does not say."""
    match = _OV_EXEC_PRECISION.search(exec_type)
    return _OV_PRECISIONS[match.group(1).lower()] if match else None


def mean_of_measured(mean_after_warmup: float, mean_after_all: float, *, warmup: int, measured: int) -> float:
    """The mean of the measured runs alone, from two running means (OpenVINO CPU counters average over all runs)."""
    return max(0.0, ((warmup + measured) * mean_after_all - warmup * mean_after_warmup) / measured)


# ---------------------------------------------------------------------------------------------------------------
# Kernel -> graph node


class GraphIndex:
    """Names of the exported graph: nodes (named as the cost model names them), tensors and their producers."""

    def __init__(self, model: onnx.ModelProto, macs: dict[str, int]) -> None:
        graph = model.graph
        constants = {init.name for init in graph.initializer}
        self.names: list[str] = []
        self.op_type: dict[str, str] = {}
        self.data_inputs: dict[str, list[str]] = {}
        self.producer: dict[str, str] = {}
        self.consumers: Counter[str] = Counter()
        for i, node in enumerate(graph.node):
            name = node.name or f"{node.op_type}_{i}"  # mnbench.cost names unnamed nodes the same way
            self.names.append(name)
            self.op_type[name] = node.op_type
            self.data_inputs[name] = [x for x in node.input if x and x not in constants]
            self.consumers.update(self.data_inputs[name])
            for out in node.output:
                if out:
                    self.producer[out] = name
        self.macs = macs
        self._name_set = set(self.names)

    def resolve(self, kernel: KernelTime) -> str | None:
        """The graph node a kernel computes, or None."""
        found = [node for raw in (kernel.origins or (kernel.name,)) if (node := self._lookup(raw))]
        if not found:
            return None
        # OpenVINO lists every layer it fused (conv, bias, activation): the one with the MACs names the kernel.
        node = max(found, key=lambda n: self.macs.get(n, 0))
        if kernel.is_mac_kernel and not self.macs.get(node):
            node = self._mac_node_behind(node) or node
        return node

    def _lookup(self, raw: str) -> str | None:
        if raw in self._name_set:
            return raw
        if raw in self.producer:
            return self.producer[raw]
        prefix = _longest_prefix(raw, self.names)
        if prefix is not None:
            return prefix
        tensor = _longest_prefix(raw, self.producer)
        return self.producer[tensor] if tensor is not None else None

    def _mac_node_behind(self, node: str) -> str | None:
        """The nearest Conv/Gemm/MatMul whose output feeds `node` alone, through at most MAX_FUSED_CHAIN nodes."""
        frontier = [node]
        for _ in range(MAX_FUSED_CHAIN):
            behind = [self.producer[t] for n in frontier for t in self.data_inputs.get(n, [])
                      if t in self.producer and self.consumers[t] == 1]
            for candidate in behind:
                if self.macs.get(candidate):
                    return candidate
            frontier = behind
        return None


def _longest_prefix(raw: str, names: Iterable[str]) -> str | None:
    best = None
    for name in names:
        if (len(raw) > len(name) and raw.startswith(name) and raw[len(name)] in _NAME_SEPARATORS
                and (best is None or len(name) > len(best))):
            best = name
    return best


@dataclass(frozen=True, kw_only=True)
class Attribution:
    kernel: KernelTime
    node: str | None  # the graph node, None when nothing matched
    category: str


def attribute_kernels(kernels: list[KernelTime], index: GraphIndex, category_of: dict[str, str]) -> list[Attribution]:
    out = []
    for kernel in kernels:
        node = None if kernel.op_type in LAYOUT_KERNELS else index.resolve(kernel)
        category = category_of.get(node, "other") if node is not None else kernel.fallback_category()
        out.append(Attribution(kernel=kernel, node=node, category=category))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The profile entry


def build_profile(attributions: list[Attribution], cost, *, total_time_ms: float, samples_per_graph_mac: float
                  ) -> dict[str, Any]:
    """`categories`, `nodes`, `total_time_ms` and `unattributed_ms` from attributed kernels and the cost model.

    `samples_per_graph_mac`: how many samples one pass of the costed graph is (the batch, for a graph costed per
    sample; 1 for a graph costed with its batch already in), for the achieved GMAC/s.
    """
    kernel_ms = sum(a.kernel.time_ms for a in attributions)
    unattributed_ms = max(0.0, total_time_ms - kernel_ms)
    total_ms = kernel_ms + unattributed_ms
    if total_ms <= 0:
        raise MnbenchError("the profiler reported no time at all; nothing to attribute")

    node_time: dict[str, float] = defaultdict(float)
    node_exec: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set of the kernels' exec types
    extra_rows: dict[str, dict[str, Any]] = {}
    category_time: dict[str, float] = defaultdict(float)
    for a in attributions:
        category_time[a.category] += a.kernel.time_ms
        if a.node is not None:
            node_time[a.node] += a.kernel.time_ms
            if a.kernel.exec_type:
                node_exec[a.node][a.kernel.exec_type] = None
        else:
            row = extra_rows.setdefault(a.kernel.name, {"name": a.kernel.name, "op_type": a.kernel.op_type,
                                                        "category": a.category, "macs": 0, "time_ms": 0.0,
                                                        "exec_type": a.kernel.exec_type})
            row["time_ms"] += a.kernel.time_ms
    category_time["other"] += unattributed_ms

    by_category = cost.by_category()  # every category, zeros included
    categories = []
    for category in CATEGORIES:
        macs = by_category[category].macs
        time_ms = category_time.get(category, 0.0)
        if not by_category[category].nodes and time_ms <= 0:
            continue
        categories.append({
            "category": category,
            "macs": int(macs),
            "flop_share": macs / cost.macs if cost.macs else 0.0,
            "time_ms": time_ms,
            "time_share": time_ms / total_ms,
            "gmacs_per_s": macs * samples_per_graph_mac / (time_ms * 1e6) if time_ms > 0 and macs else None,
        })

    nodes = [
        {"name": n.name, "op_type": n.op_type, "category": n.category, "macs": int(n.macs),
         "time_ms": node_time.get(n.name, 0.0), "exec_type": ", ".join(node_exec.get(n.name, ()))}
        for n in cost.nodes if n.macs or node_time.get(n.name)
    ]
    nodes.extend(extra_rows.values())
    if unattributed_ms > 0:
        nodes.append({"name": OVERHEAD_NODE, "op_type": "", "category": "other", "macs": 0,
                      "time_ms": unattributed_ms, "exec_type": ""})
    return {"total_time_ms": total_ms, "unattributed_ms": unattributed_ms, "categories": categories, "nodes": nodes}


def effective_precision(attributions: list[Attribution]) -> str | None:
    """The precision the Conv/Gemm kernels ran in, weighted by their time (what the hardware really did)."""
    weight: Counter[str] = Counter()
    for a in attributions:
        if a.kernel.is_mac_kernel and a.kernel.precision:
            weight[a.kernel.precision] += a.kernel.time_ms
    return weight.most_common(1)[0][0] if weight else None


# ---------------------------------------------------------------------------------------------------------------
# Running the profiler


def profile_model(
    exported_or_path: Any,
    device: Any,
    *,
    batch: int,
    precision: str = "fp32",
    threads: int | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    models_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Profile one model on one device; the result file's `profiles` entry (times: mean per inference).

    `exported_or_path` is a `mnbench.export.ExportedModel` (its config and cost are used) or an ONNX file path
    (costed here; arch, variant, width and resolution are then None).
    """
    from mnbench.cost import count_cost
    from mnbench.devices import ONNXRUNTIME, default_threads, resolve_device

    if iterations <= 0 or warmup < 0:
        raise MnbenchError(f"need iterations > 0 and warm-up >= 0, got {iterations} and {warmup}")
    if batch <= 0:
        raise MnbenchError(f"batch must be a positive integer, got {batch}")
    device = resolve_device(device)
    threads = threads if threads is not None else default_threads()
    if isinstance(exported_or_path, (str, Path)):
        model_path, config, cost, sha256 = Path(exported_or_path), None, count_cost(exported_or_path), None
    else:
        exported = exported_or_path
        model_path, config, cost, sha256 = Path(exported.path), exported.config, exported.cost, exported.sha256
    if not model_path.is_file():
        raise MnbenchError(f"model file not found: {model_path} (run `mnbench export` first)")

    model = onnx.load(str(model_path), load_external_data=False)
    if device.runtime == ONNXRUNTIME:
        measured = _profile_onnxruntime(device, model_path, batch=batch, precision=precision, threads=threads,
                                        iterations=iterations, warmup=warmup, models_dir=models_dir)
    else:
        measured = _profile_openvino(device, model_path, batch=batch, precision=precision, threads=threads,
                                     iterations=iterations, warmup=warmup)

    index = GraphIndex(model, {n.name: n.macs for n in cost.nodes})
    attributions = attribute_kernels(measured.kernels, index, {n.name: n.category for n in cost.nodes})
    table = build_profile(attributions, cost, total_time_ms=measured.total_time_ms,
                          samples_per_graph_mac=batch if _batch_is_symbolic(model) else 1)
    attributed_ms = sum(a.kernel.time_ms for a in attributions if a.node is not None)
    attributed_share = attributed_ms / table["total_time_ms"]
    return {
        "arch": config.arch if config else None,
        "variant": config.variant if config else None,
        "width": config.width if config else None,
        "resolution": config.resolution if config else None,
        "batch": batch,
        "device": device.name,
        "runtime": measured.runtime,
        "runtime_version": measured.runtime_version,
        "precision": measured.settings.get("precision", precision),
        "requested_precision": precision,
        "effective_precision": effective_precision(attributions),
        "threads": measured.threads,
        "iterations": measured.iterations,
        "warmup": warmup,
        "macs": int(cost.macs),
        "model_sha256": sha256,
        "model_path": str(model_path),
        "total_time_ms": table["total_time_ms"],
        "unattributed_ms": table["unattributed_ms"],
        # How much of the time landed on a graph node by name; low when the runtime fuses the graph into one
        # engine (TensorRT, the OpenVINO provider), where the categories cannot be told apart.
        "attributed_share": attributed_share,
        "notes": profile_caveats(device, attributed_share),
        "settings": measured.settings,
        "categories": table["categories"],
        "nodes": table["nodes"],
    }


# Below this share of the time on named graph nodes, the category split says little.
LOW_ATTRIBUTION = 0.5


def profile_caveats(device, attributed_share: float) -> list[str]:
    notes = []
    if getattr(device, "is_gpu_provider", False):
        notes.append("ONNX Runtime times GPU kernels at launch, on the host; the GPU's own time shows up as "
                     "runtime overhead ('other'), so the category split understates the GPU work")
    if attributed_share < LOW_ATTRIBUTION:
        notes.append(f"only {attributed_share:.0%} of the time could be put on graph nodes (a runtime that fuses "
                     "the graph into one engine, or much overhead): read the categories with care")
    return notes


def _batch_is_symbolic(model: onnx.ModelProto) -> bool:
    """True when the first graph input's batch is symbolic: the cost model then counted one sample."""
    constants = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in constants:
            dims = value.type.tensor_type.shape.dim
            return bool(dims) and not dims[0].HasField("dim_value")
    return False


def _profile_onnxruntime(device, model_path: Path, *, batch: int, precision: str, threads: int, iterations: int,
                         warmup: int, models_dir) -> RuntimeProfile:
    from mnbench.backends.onnxruntime_backend import OnnxRuntimeSession

    with tempfile.TemporaryDirectory(prefix="mnbench-profile-") as tmp:
        # The benchmark's own session (options, providers, bound inputs, fallback check), with the profiler on.
        session = OnnxRuntimeSession(device, model_path, batch=batch, precision=precision, threads=threads,
                                     models_dir=models_dir, profile_prefix=str(Path(tmp) / "ort-profile"))
        for _ in range(warmup + iterations):
            session.infer()
        events = read_ort_trace(session.end_profiling())
        session.close()
    # +1: the session's own check run at open comes first in the trace.
    kernels, run_ms = ort_kernel_times(events, skip_runs=warmup + 1)
    info = session.info
    return RuntimeProfile(
        kernels=kernels, total_time_ms=sum(run_ms) / len(run_ms), runtime="onnxruntime",
        runtime_version=info["runtime_version"], threads=threads, iterations=len(run_ms),
        settings={"precision": info["precision"], "providers": info["providers"],
                  "graph_optimization_level": info["settings"]["graph_optimization_level"]},
    )


# OpenVINO plugins whose counters are running means over every inference since compilation (the CPU plugin's
# PerfCount::avg); the others report the last inference.
_OV_RUNNING_MEAN_PLUGINS = ("CPU",)


def _profile_openvino(device, model_path: Path, *, batch: int, precision: str, threads: int, iterations: int,
                      warmup: int) -> RuntimeProfile:
    import openvino as ov

    from mnbench.backends import make_input
    from mnbench.backends.openvino_backend import MNBENCH_PRECISION, openvino_compile_config, read_static_model
    from mnbench.devices import openvino_core

    core = openvino_core()
    model, shapes = read_static_model(model_path, batch)
    # The benchmark's own compile config, with the per-node counters switched on.
    config = openvino_compile_config(precision, threads, device.target) | {"PERF_COUNT": True}
    try:
        compiled = core.compile_model(model, device.target, config)
    except RuntimeError as exc:
        raise MnbenchError(f"{device.name}: OpenVINO could not compile {model_path.name} for profiling: "
                           f"{' '.join(str(exc).split())[:300]}") from None
    request = compiled.create_infer_request()
    for i, port in enumerate(compiled.inputs):
        request.set_input_tensor(i, ov.Tensor(make_input(shapes[port.get_any_name()], i)))

    running_mean = device.target.split(".")[0] in _OV_RUNNING_MEAN_PLUGINS
    for _ in range(warmup):
        request.infer()
    after_warmup = _ov_counters_ms(request) if running_mean else {}
    summed: dict[str, float] = defaultdict(float)
    latencies = []
    for _ in range(iterations):
        request.infer()
        latencies.append(request.latency)  # ms, as the runtime timed it
        if not running_mean:
            for name, ms in _ov_counters_ms(request).items():
                summed[name] += ms
    if running_mean:
        means = {name: mean_of_measured(after_warmup.get(name, 0.0), ms, warmup=warmup, measured=iterations)
                 for name, ms in _ov_counters_ms(request).items()}
    else:
        means = {name: ms / iterations for name, ms in summed.items()}

    layers = _ov_runtime_layers(compiled)
    kernels = []
    for info in request.get_profiling_info():
        if info.status != info.Status.EXECUTED or info.node_name not in means:
            continue
        origins, conv = layers.get(info.node_name, ((), None))
        kernels.append(KernelTime(name=info.node_name, op_type=info.node_type, time_ms=means[info.node_name],
                                  origins=origins, exec_type=info.exec_type, precision=ov_precision(info.exec_type),
                                  conv=conv))
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    hint_name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    ran_threads = compiled.get_property("INFERENCE_NUM_THREADS") if "INFERENCE_NUM_THREADS" in config else None
    return RuntimeProfile(
        kernels=kernels, total_time_ms=sum(latencies) / len(latencies), runtime="openvino",
        runtime_version=ov.get_version(), threads=int(ran_threads) if ran_threads else threads,
        iterations=iterations,
        settings={"precision": MNBENCH_PRECISION.get(hint_name, hint_name), "ov_device": device.target,
                  "counters": "running mean, warm-up taken out" if running_mean else "per inference"},
    )


def _ov_counters_ms(request) -> dict[str, float]:
    return {info.node_name: info.real_time.total_seconds() * 1e3
            for info in request.get_profiling_info() if info.status == info.Status.EXECUTED}


def _ov_runtime_layers(compiled) -> dict[str, tuple[tuple[str, ...], ConvGeometry | None]]:
    """Executed node name -> (the original layers it fused, its conv geometry) from the runtime model."""
    layers = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt_info = op.get_rt_info()
        origins = str(rt_info["originalLayersNames"].astype(str)) if "originalLayersNames" in rt_info else ""
        layer_type = str(rt_info["layerType"].astype(str)) if "layerType" in rt_info else ""
        conv = _ov_conv_geometry(op) if layer_type == "Convolution" else None
        layers[op.get_friendly_name()] = (tuple(n for n in origins.split(",") if n), conv)
    return layers


def _ov_conv_geometry(op) -> ConvGeometry | None:
    if op.get_input_size() < 2 or not all(op.input(i).get_partial_shape().is_static for i in (0, 1)):
        return None
    x = list(op.input(0).get_shape())
    w = list(op.input(1).get_shape())
    if len(x) < 3:
        return None
    # Convolution weights are [M, C, kH, kW]; GroupConvolution's are [G, M/G, C/G, kH, kW].
    weight_in, kernel = (w[2], w[3:]) if len(w) == len(x) + 1 else (w[1], w[2:])
    return ConvGeometry(in_channels=x[1], weight_in_channels=weight_in, kernel=tuple(kernel), in_spatial=tuple(x[2:]))


# ---------------------------------------------------------------------------------------------------------------
# Saving


def save_profiles(profiles: list[dict[str, Any]], *, reports_dir: str | Path | None = None,
                  output: str | Path | None = None) -> Path:
    """Write a result file (no records, these `profiles`) under runs/ as `<UTC time>-<host>-profile.json`."""
    from mnbench import results
    from mnbench.machine import machine_info
    from mnbench.runner import default_output_path

    path = Path(output) if output is not None else default_output_path(reports_dir, "-profile")
    return results.write_result(results.new_result(machine_info(), profiles=profiles), path)
