"""PyTorch sessions for the `torch` (CPU) and `torch:cuda[:N]` devices: mnbench's own nn.Module, eager or replayed
from a CUDA graph.

The module is the exported network rebuilt from its config (`mnbench.backends.torch_graph`), so cost counted on
the ONNX file is the cost of what runs. Inputs are made once (the same seeded numbers as every backend) and moved
to the device once; `infer()` runs the module on them under `torch.inference_mode()`.

Timing: mnbench times `infer()` with the wall clock. CUDA launches are asynchronous, so on a GPU `infer()` ends with
`torch.cuda.synchronize(device)`: a call's time is its launch plus the GPU's work, as a user waiting for the answer
sees it (the same way ONNX Runtime's CUDA provider returns only when its stream is done).

Precision: fp16 and bf16 cast the weights and the input (`module.to(dtype)`), no autocast: every op runs in the
asked type, as a TensorRT fp16 engine does. On GPUs TF32 is off (fp32 means IEEE fp32; fp16 is how to ask for tensor
cores) and cuDNN's benchmark mode on (static shapes: it picks the fastest algorithm once). Both are process-wide in
PyTorch, so they are fixed here rather than options: sessions interleaved in one round cannot disagree on them.
Both are read back into `info["settings"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mnbench.backends.base import BenchSession, make_input
from mnbench.backends.torch_graph import network_for
from mnbench.backends.torch_info import cuda_info, set_tf32, tf32_state
from mnbench.devices.registry import DeviceInfo
from mnbench.errors import MnbenchError, exception_text

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Per-session options (`open_session(options=...)`, `mnbench run --cuda-graph --channels-last`) and defaults.
DEFAULT_OPTIONS = {"cuda_graph": False, "channels_last": False}
# Process-wide GPU settings, the same for every torch session (see the module doc).
TF32 = False
CUDNN_BENCHMARK = True
# Eager calls before a CUDA graph is captured: cuDNN's benchmark mode picks its algorithms on the first ones, and
# capture needs a side stream that has seen the work once.
CAPTURE_WARMUP_CALLS = 3


def torch_options(options: Mapping[str, Any] | None, *, pin_settings: bool) -> dict[str, Any]:
    """The session's options: the defaults, updated by `options`; pinned sessions (references, controls) run
    eager and contiguous whatever the benchmark asks."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise MnbenchError(f"unknown torch option(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_OPTIONS)}")
    merged = DEFAULT_OPTIONS | options
    if pin_settings:
        merged |= {"cuda_graph": False, "channels_last": False}
    return merged


def placement(target: str) -> torch.device:
    """Where a device's tensors live (a seam: the CUDA-path tests place a mocked GPU session on the CPU)."""
    return torch.device(target)


class TorchSession(BenchSession):
    def __init__(self, device: DeviceInfo, model_path: Path, *, batch: int, precision: str, threads: int,
                 options: Mapping[str, Any] | None = None, pin_settings: bool = False, profile: bool = False) -> None:
        if precision not in DTYPES:
            raise MnbenchError(f"precision {precision} is not supported on {device.name}: the torch devices run "
                               f"{', '.join(DTYPES)}")
        self._options = torch_options(options, pin_settings=pin_settings)
        self._on_gpu = device.target.startswith("cuda")
        self._device = placement(device.target)
        if self._options["cuda_graph"] and not self._on_gpu:
            raise MnbenchError(f"--cuda-graph needs a GPU device (torch:cuda), not {device.name}")
        self._target_index = device.target.partition(":")[2] or 0
        torch.set_num_threads(threads)  # process-wide; every torch session of a run asks the same
        if self._on_gpu:
            set_tf32(TF32)
            torch.backends.cudnn.benchmark = CUDNN_BENCHMARK
        network = network_for(Path(model_path), batch)
        self._source = network.source
        self.inputs = {name: make_input(shape, index) for index, (name, shape) in
                       enumerate(network.input_shapes.items())}
        layout = torch.channels_last if self._options["channels_last"] else torch.contiguous_format
        dtype = DTYPES[precision]
        self._module = network.module.to(device=self._device, dtype=dtype, memory_format=layout).eval()
        for parameter in self._module.parameters():
            parameter.requires_grad_(False)
        self._inputs = tuple(torch.from_numpy(array).to(device=self._device, dtype=dtype)
                             .contiguous(memory_format=layout if array.ndim == 4 else torch.contiguous_format)
                             for array in self.inputs.values())
        self._output: torch.Tensor | None = None
        self._graph = None
        self._first_inference(device, model_path, precision)
        self.info = self._describe(device, precision)

    def _first_inference(self, device: DeviceInfo, model_path: Path, precision: str) -> None:
        """One run now (and the capture, for a CUDA graph), so a failure surfaces at open, not in a timed loop."""
        try:
            if self._options["cuda_graph"]:
                self._graph = self._capture()
            self.infer()
        except (RuntimeError, NotImplementedError) as exc:
            what = f"PyTorch {torch.__version__} cannot run {precision} here" if precision != "fp32" else \
                "the first inference failed"
            raise MnbenchError(f"{device.name}: {what} ({Path(model_path).name}): "
                               f"{exception_text(exc, limit=300)}") from None

    def _capture(self) -> Any:
        """The module's forward captured in a CUDA graph on the bound input; `infer()` then replays it."""
        stream = torch.cuda.Stream(self._device)
        stream.wait_stream(torch.cuda.current_stream(self._device))
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(CAPTURE_WARMUP_CALLS):
                self._module(*self._inputs)
        torch.cuda.current_stream(self._device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            self._output = self._module(*self._inputs)
        return graph

    def infer(self) -> None:
        if self._graph is not None:
            self._graph.replay()  # writes into the output captured with it
        else:
            with torch.inference_mode():
                self._output = self._module(*self._inputs)
        if self._on_gpu:
            torch.cuda.synchronize(self._device)

    def output(self, index: int = 0) -> np.ndarray:
        """A float32 host copy of the logits of the last `infer()` (upcast from fp16/bf16)."""
        if index != 0 or self._output is None:
            raise MnbenchError(f"the torch session has one output (index 0), after infer(); asked {index}")
        return self._output.detach().to("cpu", torch.float32).numpy().copy()

    def _describe(self, device: DeviceInfo, precision: str) -> dict[str, Any]:
        ran = str(self._inputs[0].dtype).removeprefix("torch.")  # the module runs in its input's dtype
        settings: dict[str, Any] = {
            "torch_device": str(self._device),
            "model_source": self._source,
            "eval_mode": not self._module.training,
            "inference_mode": True,
            "precision_method": "fp32" if precision == "fp32" else f"weights and input cast to {ran} (no autocast)",
            "dtype": ran,
            "memory_format": "channels_last" if self._options["channels_last"] else "contiguous (NCHW)",
            "channels_last": bool(self._options["channels_last"]),
            "cuda_graph": self._graph is not None,
            "intra_op_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "timing": ("wall clock of infer(), which ends with torch.cuda.synchronize(): launch plus GPU work"
                       if self._on_gpu else "wall clock of infer(); CPU kernels return when done"),
        }
        if self._on_gpu:
            settings |= tf32_state() | {"cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
                                        "cudnn_enabled": bool(torch.backends.cudnn.enabled)}
            settings |= cuda_info(int(self._target_index))
        else:
            settings["mkldnn_enabled"] = bool(torch.backends.mkldnn.enabled)
        return {
            "runtime": "torch",
            "runtime_version": torch.__version__,
            "device": device.name,
            "precision": {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(ran, ran),
            "requested_precision": precision,
            "threads": torch.get_num_threads(),
            "providers": None,
            "settings": settings,
            "inputs": {name: list(array.shape) for name, array in self.inputs.items()},
        }

    def kernel_profile(self, *, iterations: int, warmup: int):
        # Not built yet: torch.profiler's kernels would need mapping to the exported graph's node names.
        raise MnbenchError(f"{self.info['device']}: per-operator profiles are not supported on the torch devices "
                           "yet; profile the same model with --device cpu, openvino or cuda")

    def close(self) -> None:
        self._graph = None
        self._output = None
        self._inputs = ()
        self._module = None
