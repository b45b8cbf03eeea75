#!/usr/bin/env bash
# One-shot check that the training and sampling paths run on CUDA (issue 15).
#
#   scripts/cuda_check.sh            # results under $OUT if set, else a fresh temporary folder
#
# 1. pytest tests/test_cuda_paths.py: every sampler, trainer, network, solver and measurement on
#    cpu and cuda (the cuda cases skip, each with its reason, where torch sees no CUDA device);
# 2. the CLI end to end on the ci_tiny experiment: HMC (U(1)) generated and resumed, RHMC
#    (staggered SU(2)) generated and measured, a flow trained and sampled; with device=cuda where
#    there is a GPU, else with device=cpu (the same commands, as a smoke test of this script);
# 3. on a GPU: a chain begun on CUDA is refused on the CPU with a one-line error (exit 2).
#
# Logs, stores, checkpoints and JSON manifests land in $OUT; the last line says pass or fail.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then
    PATH="$ROOT/.venv/bin:$PATH"
fi
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cuda_check.XXXXXX")}"
mkdir -p "$OUT"
export LQCDML_THREADS="${LQCDML_THREADS:-2}"
THREADS="threads=$LQCDML_THREADS"

log() { echo "cuda_check: $*" | tee -a "$OUT/cuda_check.log" >&2; }

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, stop the script on failure
    local name="$1"; shift
    log "$name: $*"
    if ! "$@" >"$OUT/$name.log" 2>&1; then
        tail -n 40 "$OUT/$name.log" >&2
        log "FAIL ($name; log $OUT/$name.log)"
        exit 1
    fi
}

lqcdml devices | tee "$OUT/devices.json"
if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    DEVICE=cuda
else
    DEVICE=cpu
    log "no CUDA device: the cuda tests skip, the CLI runs with device=cpu"
fi

# 1. the library paths on every device
step pytest python -m pytest tests/test_cuda_paths.py -q -rs -p no:cacheprovider
grep -E "passed|failed|skipped" "$OUT/pytest.log" | tail -n 1 | tee -a "$OUT/cuda_check.log" >&2

# 2. the CLI end to end
X=(+experiment=ci_tiny "device=$DEVICE" "$THREADS")
P=(--progress lines)
step u1_part lqcdml generate "${X[@]}" --ensemble u1 --replica 1 --store "$OUT/u1.zarr" "${P[@]}" \
    chain.n_configs=10
step u1 lqcdml generate "${X[@]}" --ensemble u1 --replica 1 --store "$OUT/u1.zarr" "${P[@]}" \
    --manifest "$OUT/u1.json"
step stag lqcdml generate "${X[@]}" --ensemble stag --replica 1 --store "$OUT/stag.zarr" "${P[@]}" \
    --manifest "$OUT/stag.json"
step stag_measure lqcdml measure "${X[@]}" --ensemble stag --store "$OUT/stag.zarr" \
    --out "$OUT/stag_obs.zarr" "${P[@]}"
step flow_train lqcdml train "${X[@]}" --ensemble flow --checkpoint "$OUT/flow.pt" \
    --manifest "$OUT/flow_train.json" "${P[@]}"
step flow lqcdml generate "${X[@]}" --ensemble flow --replica 1 --store "$OUT/flow.zarr" \
    --model "$OUT/flow.pt" --manifest "$OUT/flow.json" "${P[@]}"

python - "$OUT" "$DEVICE" <<'EOF' | tee -a "$OUT/cuda_check.log" >&2
import json, math, sys
from pathlib import Path

from lqcdml.store import EnsembleStore

out, device = Path(sys.argv[1]), sys.argv[2]
for name in ("u1", "stag", "flow"):
    summary = json.loads((out / f"{name}.json").read_text())
    store = EnsembleStore.open(out / f"{name}.zarr")
    acc = summary["acceptance"]
    assert store.meta.get("device_type") == device, (name, store.meta.get("device_type"))
    assert acc is not None and 0.0 <= acc <= 1.0 and math.isfinite(summary["seconds"]), (name, summary)
    print(f"{name}: {summary['n_committed']} configurations on {device}, acceptance {acc:.3f}, "
          f"{summary['seconds']:.1f} s (resumed from {summary['resumed_from']})")
EOF

# 3. a CUDA chain does not continue on the CPU: a clean refusal, not a traceback
if [ "$DEVICE" = cuda ]; then
    log "refusal: lqcdml generate ... device=cpu on the CUDA store (expected to fail)"
    if lqcdml generate +experiment=ci_tiny device=cpu "$THREADS" --ensemble u1 --replica 1 \
        --store "$OUT/u1.zarr" chain.n_configs=40 >"$OUT/refusal.log" 2>&1; then
        log "FAIL (a CUDA store was continued on the CPU; log $OUT/refusal.log)"
        exit 1
    fi
    if ! grep -q "generated on cuda" "$OUT/refusal.log" || grep -q Traceback "$OUT/refusal.log"; then
        tail -n 20 "$OUT/refusal.log" >&2
        log "FAIL (the refusal is not the one-line device error; log $OUT/refusal.log)"
        exit 1
    fi
else
    log "refusal check skipped: it needs a store generated on CUDA"
fi
log "PASS on $DEVICE (results in $OUT)"
