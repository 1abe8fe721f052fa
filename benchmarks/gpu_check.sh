#!/usr/bin/env bash
# GPU check: mnbench's `torch:cuda` device end to end through the CLI, sized for the GPU machine this workplace
# lends (one H200; no network; the working tree carried, at most 64 MiB; 15 minutes of device time per session;
# Python 3.12 with torch 2.11 for CUDA 13, onnx, the CPU onnxruntime, typer, rich, matplotlib, scipy; results under
# $OUT, at most 8 files of 16 MiB). One command, at most ~8 minutes, from the repository root:
#
#   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh            # run it
#   bash benchmarks/gpu_check.sh --dry-run                       # print every command with its time budget
#
# Every step runs under `timeout -s INT` with its budget (SIGINT: an interrupted `mnbench run` keeps its completed
# records), so the whole script ends within the sum of the budgets the dry run prints. A failed step is logged
# and the script goes on. ONNX Runtime's `cuda` and `tensorrt` devices are measured too, but only where
# onnxruntime-gpu is importable (never on the lent machine, whose onnxruntime is the CPU build), so users with their
# own GPU machine run this same script.
#
# What comes back in $OUT (7 files): summary.txt (one line per step), report-eager.md and report-cuda-graph.md
# (`mnbench report`: the CUDA-graph runs go in their own report, since the report pairs records by device,
# precision and batch and would merge them with the eager ones; report-eager.md has the batch sweep's parallelism
# table), predict-h200.md (the datasheet roofline at each batch of the sweep), report.html (eager), results.tar.gz
# (every result file, profile, log and plot), and ort-gpu-report.md where the ORT GPU steps ran.
#
# Knobs (environment): OUT (default ./gpu-check-out), WORK (scratch: models, results; default a new temp folder),
# PYTHON (default python3), DEVICE (default torch:cuda), MAX_TIME / REPETITIONS (per model group of a run: seconds
# measured at most over all its repetitions, and the least repetitions; default 3 / 4).
set -uo pipefail

DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$PWD/gpu-check-out}
WORK=${WORK:-$([ $DRY_RUN -eq 1 ] && echo /tmp/mnbench-gpu-check.XXXX || mktemp -d)}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-torch:cuda}
MAX_TIME=${MAX_TIME:-3}
REPETITIONS=${REPETITIONS:-4}
LIMIT_S=480  # the whole check, in seconds: 8 of the session's 15 device minutes, leaving time for one rerun
RESULTS=$WORK/results
export MNBENCH_MODELS_DIR=$WORK/models MNBENCH_REPORTS_DIR=$WORK/reports PYTHONUNBUFFERED=1
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}  # works with or without the editable install below
MNBENCH="$PYTHON -m mnbench"
TIMES="--max-time $MAX_TIME --repetitions $REPETITIONS"

TOTAL=0
# step NAME BUDGET_S COMMAND...: run it under `timeout -s INT BUDGET_S`, log to $WORK/logs/NAME.log, one line to
# summary.txt; never stops the script. In a dry run, only print the command and its budget.
step() {
    local name=$1 budget=$2 started=$SECONDS status=0
    shift 2
    TOTAL=$((TOTAL + budget))
    echo "+ $*"
    echo "  budget $budget s  ($name)"
    [ $DRY_RUN -eq 1 ] && return 0
    timeout -s INT -k 10 "$budget" bash -c "$*" >"$WORK/logs/$name.log" 2>&1 || status=$?
    echo "$name: $([ $status -eq 0 ] && echo ok || echo "FAILED (exit $status)") in $((SECONDS - started)) s" \
        | tee -a "$OUT/summary.txt"
}
skip() {  # skip NAME REASON COMMAND...: shown in the dry run and the summary, not run, no budget
    local name=$1 reason=$2
    shift 2
    echo "- $*"
    echo "  skipped: $reason  ($name)"
    [ $DRY_RUN -eq 1 ] || echo "$name: skipped ($reason)" >>"$OUT/summary.txt"
}

if [ $DRY_RUN -eq 0 ]; then
    mkdir -p "$OUT" "$WORK/logs" "$RESULTS/eager" "$RESULTS/cuda-graph" "$RESULTS/ort-gpu" "$MNBENCH_REPORTS_DIR/profiles"
    : >"$OUT/summary.txt"
fi

# --- install from the carried tree, no network; then what is there -------------------------------------------------
step install 25 "cd '$ROOT' && $PYTHON -m pip install -q --no-deps --no-build-isolation --no-index -e . || echo 'pip install failed: using PYTHONPATH=$ROOT'"
step devices 20 "nvidia-smi; $MNBENCH devices"

# --- the torch:cuda runs at batch 1: fp32 and fp16, eager and CUDA graph -------------------------------------------
# The first run exports (and validates on the CPU) the 8 models; the first run of each precision measures the
# device's peak once. Their budgets carry that.
for precision in fp32 fp16; do
    first=$([ $precision = fp32 ] && echo 30 || echo 0)
    step "run-b1-$precision" $((45 + first)) \
        "$MNBENCH run --arch all --device $DEVICE --batch 1 --precision $precision $TIMES --output $RESULTS/eager/b1-$precision.json"
    step "run-b1-$precision-graph" 35 \
        "$MNBENCH run --arch all --device $DEVICE --batch 1 --precision $precision $TIMES --cuda-graph --output $RESULTS/cuda-graph/b1-$precision.json"
done

# --- the survey's GPU claim as a curve: realized speedup against batch, 1 to 256 (issue 26) ----------------------
# One run, every batch a measured pair of its own; the report's parallelism table and plot draw it, and `predict`
# sets the H200 datasheet roofline's curve beside it (below). v1 and v2 only, to fit the budget (20 exports).
SWEEP_BATCHES=${SWEEP_BATCHES:-1,8,32,128,256}
step sweep-batch 170 \
    "$MNBENCH run --arch v1,v2 --device $DEVICE --batch $SWEEP_BATCHES --precision fp32 --max-time 2 --repetitions 3 --output $RESULTS/eager/batch-sweep-fp32.json"

# --- where the time goes, and what the roofline predicts ----------------------------------------------------------
PROFILE="$MNBENCH profile --arch v1 --variant separable --device $DEVICE --iterations 30"
if [[ $DEVICE == torch* ]]; then  # mnbench's torch backend has no kernel profile (yet)
    skip profile "the torch backend does not profile per operator" "$PROFILE"
else
    step profile 20 "$PROFILE && ${PROFILE/separable/standard}"
fi
if $PYTHON -m mnbench predict --help >/dev/null 2>&1; then
    # The datasheet's roofline at both batches, and the one from the peak this check measured on the GPU.
    step predict 15 "for b in ${SWEEP_BATCHES//,/ }; do $MNBENCH predict --spec h200 --arch v1,v2 --batch \$b --format table; done > $OUT/predict-h200.md; $MNBENCH predict --spec this --device $DEVICE --arch all --format table >> $OUT/predict-h200.md"
else
    skip predict "this mnbench has no predict command" "$MNBENCH predict --spec h200 --arch all"
fi

# --- ONNX Runtime's GPU devices, only where onnxruntime-gpu is importable --------------------------------------------
ORT_RUN="$MNBENCH run --arch v1,v2 --device cuda,tensorrt $TIMES --output $RESULTS/ort-gpu/b1-fp32.json"
if $PYTHON -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
    step ort-gpu-run 120 "$ORT_RUN"
    step ort-gpu-report 10 "$MNBENCH report $RESULTS/ort-gpu --format markdown --output $OUT/ort-gpu-report.md"
else
    skip ort-gpu-run "onnxruntime-gpu is not importable here" "$ORT_RUN"
fi

# --- the rendered reports, then everything else packed into one file ---------------------------------------------
step report 20 "$MNBENCH report $RESULTS/eager $MNBENCH_REPORTS_DIR/profiles --format markdown --plots $RESULTS/plots --output $OUT/report-eager.md; $MNBENCH report $RESULTS/cuda-graph --format markdown --output $OUT/report-cuda-graph.md; $MNBENCH report $RESULTS/eager --format html --output $OUT/report.html"
step pack 5 "cp -r $WORK/logs $MNBENCH_REPORTS_DIR $RESULTS/ 2>/dev/null; tar -czf $OUT/results.tar.gz -C $WORK results"

echo "budget: $TOTAL s in all (limit $LIMIT_S s)"
if [ $DRY_RUN -eq 0 ]; then
    cat "$OUT/summary.txt"
    grep -q "^run-b1-fp32: ok" "$OUT/summary.txt" || exit 1
fi
[ $TOTAL -le $LIMIT_S ]
