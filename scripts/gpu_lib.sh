# Helpers shared by the one-call device scripts (scripts/toy_gpu.sh, scripts/toy_rec_gpu.sh);
# sourced after they set START, DEADLINE, LOG and PY.
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
say() { echo "[$((SECONDS - START)) s] $*" | tee -a "$LOG"; }
left() {  # seconds left before the deadline, less a margin; at least 1 (`timeout 0` never stops)
    local n=$((DEADLINE - SECONDS - $1)); echo $((n > 1 ? n : 1))
}
probe_step_s() {  # probe_step_s METRICS_JSONL: the median step time of the probe's second half
    # (steps stay slow up to about step 80 while data workers start)
    $PY -c "import json, statistics
s = [json.loads(x)['step_s'] for x in open('$1')]
print(f'{statistics.median(s[len(s) // 2:]):.4f}')"
}
