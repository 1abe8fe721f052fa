#!/usr/bin/env bash
# GPU check: mnbench's `cuda` and `tensorrt` devices, end to end through the CLI, on an NVIDIA machine.
#
#   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh        # from the repository root; about 5 minutes
#
# Steps (each one's output goes to $OUT/<step>.log, and a line per step to $OUT/summary.txt):
#   1. a fresh venv with CPU-only torch (torch only exports the models), the project (`pip install -e .`),
#      then onnxruntime-gpu *in place of* onnxruntime: both builds install the same `onnxruntime` folder, so the CPU
#      build is uninstalled first, never after. CUDA/cuDNN come from onnxruntime-gpu's extras, TensorRT from its
#      wheel; mnbench loads both into the process (mnbench.devices.prepare_gpu_libraries), no LD_LIBRARY_PATH.
#   2. nvidia-smi, ONNX Runtime's providers, `mnbench devices`
#   3. mnbench run --arch v1,v2 --device cuda,tensorrt --resolution 224 --output $OUT/gpu-run.json
#   4. mnbench report $OUT/gpu-run.json --format markdown  ->  $OUT/gpu-report.md
#
# Knobs (environment):
#   OUT           logs and results (default ./gpu-check-out)
#   WORK          scratch: venv, exported models, TensorRT engine cache (default a new temp folder)
#   PYTHON        interpreter for the venv (default python3; onnxruntime-gpu needs >= 3.11)
#   WHEELHOUSE    a folder of downloaded wheels: install from it only (pip --no-index), for machines without PyPI
#   TORCH_SPEC    default "torch==2.13.*"; TORCH_INDEX default https://download.pytorch.org/whl/cpu
#   ORT_GPU_SPEC  default "onnxruntime-gpu[cuda,cudnn]". Recent wheels are built for CUDA 13 (driver >= 580);
#                 on a CUDA 12 driver pin a CUDA 12 build here (TRT_SPEC follows the driver by itself).
#   TRT_SPEC      default "tensorrt-cu<driver's CUDA major><11" (ORT links TensorRT 10); empty to skip TensorRT
#   RUN_TIMEOUT   seconds for the benchmark step (default 210)
set -euo pipefail

OUT=${OUT:-$PWD/gpu-check-out}
WORK=${WORK:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.*}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
ORT_GPU_SPEC=${ORT_GPU_SPEC:-onnxruntime-gpu[cuda,cudnn]}
RUN_TIMEOUT=${RUN_TIMEOUT:-210}
mkdir -p "$OUT" "$WORK"
: >"$OUT/summary.txt"
export MNBENCH_MODELS_DIR=${MNBENCH_MODELS_DIR:-$WORK/models}  # models and engines are too big to bring back

# step NAME COMMAND...: run it, log to $OUT/NAME.log, record ok/FAILED; never stops the script (best effort).
step() {
    local name=$1 started=$SECONDS status=0
    shift
    echo "== $name: $*" | tee "$OUT/$name.log"
    "$@" >>"$OUT/$name.log" 2>&1 || status=$?
    local line="$name: $([ $status -eq 0 ] && echo ok || echo "FAILED (exit $status)") in $((SECONDS - started))s"
    echo "$line" | tee -a "$OUT/summary.txt"
    return 0
}
failed() { grep -q "^$1: FAILED" "$OUT/summary.txt"; }

pip_install() {
    if [ -n "${WHEELHOUSE:-}" ]; then
        "$VENV/bin/pip" install --no-index --find-links "$WHEELHOUSE" "$@"
    else
        "$VENV/bin/pip" install "$@"
    fi
}

install_torch() {
    if [ -n "${WHEELHOUSE:-}" ]; then pip_install "$TORCH_SPEC"; return; fi
    # The CPU wheel is a tenth of the size of PyPI's CUDA one, and exporting needs no GPU.
    pip_install "$TORCH_SPEC" --index-url "$TORCH_INDEX" || pip_install "$TORCH_SPEC"
}

install_gpu_runtime() {
    "$VENV/bin/pip" uninstall -y onnxruntime  # before, never after: they share the onnxruntime/ folder
    pip_install "$ORT_GPU_SPEC" ${TRT_SPEC:+"$TRT_SPEC"}
}

runtime_report() {
    # What mnbench sees (build, providers, GPUs), then ORT's own account of the CUDA/cuDNN libraries it loaded.
    "$VENV/bin/python" -c 'import json; from mnbench.machine import machine_info; print(json.dumps(machine_info(), indent=1))'
    "$VENV/bin/python" -c 'import onnxruntime as ort
for name in ("preload_dlls", "print_debug_info"):  # ORT >= 1.21
    getattr(ort, name, lambda: print(f"(no onnxruntime.{name} in this version)"))()'
}

write_report() {
    "$VENV/bin/mnbench" report "$OUT/gpu-run.json" --format markdown >"$OUT/gpu-report.md"
}

# --- 0. the machine --------------------------------------------------------------------------------------------
step nvidia-smi nvidia-smi
CUDA_MAJOR=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -n1 || true)
# ONNX Runtime's TensorRT provider links TensorRT 10 (libnvinfer.so.10); TensorRT 11 wheels would not load.
TRT_SPEC=${TRT_SPEC-tensorrt-cu${CUDA_MAJOR:-13}<11}
echo "driver CUDA major: ${CUDA_MAJOR:-unknown}; ORT: $ORT_GPU_SPEC; TensorRT: ${TRT_SPEC:-skipped}" | tee -a "$OUT/summary.txt"

# --- 1. install ------------------------------------------------------------------------------------------------
VENV=$WORK/venv
step venv "$PYTHON" -m venv "$VENV"
step pip-upgrade "$VENV/bin/pip" install --upgrade pip ${WHEELHOUSE:+--no-index --find-links "$WHEELHOUSE"}
step install-torch install_torch
step install-mnbench pip_install -e .
step install-gpu-runtime install_gpu_runtime
"$VENV/bin/pip" freeze >"$OUT/pip-freeze.txt" 2>&1 || true

# --- 2. what is there ------------------------------------------------------------------------------------------
step runtime runtime_report
step devices "$VENV/bin/mnbench" devices

# --- 3 and 4. benchmark and report -----------------------------------------------------------------------------
step run timeout "$RUN_TIMEOUT" "$VENV/bin/mnbench" run --arch v1,v2 --device cuda,tensorrt --resolution 224 \
    --output "$OUT/gpu-run.json"
if [ -s "$OUT/gpu-run.json" ]; then
    step report write_report
    if [ -s "$OUT/gpu-report.md" ]; then cat "$OUT/gpu-report.md"; fi
fi

echo "== summary ($OUT/summary.txt)"
cat "$OUT/summary.txt"
if failed run || failed report || [ ! -s "$OUT/gpu-run.json" ]; then
    exit 1
fi
