#!/usr/bin/env bash
# One call on a lent GPU machine (../shared/GPU.md): the GPU report, main jobs checked against
# store-all (spilled to host memory and to disk, run until quiet), and every test binary.
#
#   here:  bash scripts/build-prebuilt.sh .dev      (binaries; .gl holds the loader packages)
#   there: bash scripts/gpu-lent.sh [--only SECTIONS]
#
# Runs from a copy of the repository with .dev (and .gl, unpacked first when present).
# Writes its logs under $OUT (the device tool's folder) or ./gpu-out, and prints a short
# summary last. Every step has its own time limit, so one hang costs one step, not the call.
set -u
cd "$(dirname "$0")/.."
out="${OUT:-gpu-out}"
mkdir -p "$out"
only=()
[ "${1:-}" = "--only" ] && only=(--only "${2:?--only needs sections}")
if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0)) s] $*"; }

say "report"
timeout 240 .dev/gpu_report "${only[@]}" --json "$out/report.json" >"$out/report.txt" 2>&1
say "report rc=$?"
if grep -q -E "llvmpipe|no GPU adapter" "$out/report.txt"; then
    cat "$out/report.txt"
    exit 1
fi

job=.dev/acoustic_adjoint
run() {
    local name=$1
    shift
    say "job $name: $*"
    timeout 120 "$job" "$@" --out "/tmp/gpu-lent-$name" >>"$out/jobs.txt" 2>&1
    echo "rc=$? ($name)" >>"$out/jobs.txt"
}
same() {
    if cmp -s "/tmp/gpu-lent-$1/gradient.npy" "/tmp/gpu-lent-$2/gradient.npy"; then
        echo "gradient $1 == $2" | tee -a "$out/jobs.txt"
    else
        echo "GRADIENT $1 != $2" | tee -a "$out/jobs.txt"
    fi
}
big="--nx 2000 --nz 800 --shots 2 --tmax 2"
run gpu $big
run host $big --device-memory 300000000
mkdir -p /tmp/gpu-lent-disk-tier
run disk $big --device-memory 300000000 --host-memory 300000000 --disk /tmp/gpu-lent-disk-tier
same gpu host
same gpu disk
run quiet --nx 2000 --nz 800 --shots 1 --tmax 4 --until-quiet 1e-3
steps=$(grep -o '"reverse_steps": \[[0-9]*\]' /tmp/gpu-lent-quiet/summary.json | grep -o '[0-9][0-9]*')
run quiet-reference --nx 2000 --nz 800 --shots 1 --nt $((steps + 1)) --store-all
same quiet quiet-reference

# Issue 26: the main job's grid with 64 shots, one shot a dispatch against 64 (each batch with
# the checkpoint memory of 37 snapshots a shot, so the same forward steps a shot) and auto in
# that memory: shots per second and the same gradient bits.
seconds_per_shot() { grep -o '"measured_seconds_per_shot": [0-9.e+-]*' "/tmp/gpu-lent-$1/summary.json" | awk '{print $2}'; }
run batch-1 --shots 64 --batch 1
run batch-64 --shots 64 --batch 64 --snaps 2368
run batch-auto --shots 64 --batch auto --snaps 2368
same batch-1 batch-64
same batch-1 batch-auto
for b in 1 64 auto; do
    chosen=$(grep -o '"batch": [0-9]*' "/tmp/gpu-lent-batch-$b/summary.json" | awk '{print $2}')
    echo "batch $b (B = $chosen): $(seconds_per_shot "batch-$b") s a shot, $(awk -v a="$(seconds_per_shot batch-1)" -v b="$(seconds_per_shot "batch-$b")" 'BEGIN { printf "%.1f", a / b }')x the shots/s of B = 1" | tee -a "$out/jobs.txt"
done
# Issue 28: the report's spilling case (1024^2, order 4, n = 1000, 20 snapshots, 10 of them
# on the GPU) in f32 and bf16, against all on the GPU; the gradients' agreement; and the
# kernels' cost against a step (benches/compression.rs, as .dev/bench_compression).
spill="--nx 1024 --nz 1024 --space-order 4 --nt 1001 --shots 1 --snaps 20"
run spill-gpu $spill
level=$(awk -F': ' '/"checkpoint_bytes"/ {b=$2+0} /"checkpoint_levels"/ {l=$2+0} END {if (l) print int(b / l)}' /tmp/gpu-lent-spill-gpu/summary.json)
if [ -n "$level" ]; then
    for f in f32 bf16 int8; do
        run "spill-$f" $spill --checkpoint-format "$f" --device-memory $((20 * level))
        echo "spill $f: $(seconds_per_shot "spill-$f") s, $(awk -v a="$(seconds_per_shot "spill-$f")" -v b="$(seconds_per_shot spill-gpu)" 'BEGIN { printf "%.2f", a / b }')x all on the GPU ($(seconds_per_shot spill-gpu) s)" | tee -a "$out/jobs.txt"
    done
fi
if [ -x .dev/bench_compression ]; then
    timeout 120 .dev/bench_compression --bench >"$out/bench-compression.txt" 2>&1
fi
# The step view of benches/batch.rs (shot-steps/s and bandwidth against a copy, B = 1..64 at
# the main job's grid), with criterion's sampling cut short.
if [ -x .dev/bench_batch ]; then
    say "bench batch"
    timeout 200 .dev/bench_batch --bench --warm-up-time 0.2 --measurement-time 0.5 >"$out/bench-batch.txt" 2>&1
    echo "rc=$? (bench batch)" >>"$out/bench-batch.txt"
fi

say "tests"
export CI=true
for t in .dev/tests/*; do
    echo "== $(basename "$t")" >>"$out/tests.txt"
    timeout 120 "$t" >>"$out/tests.txt" 2>&1
    echo "rc=$?" >>"$out/tests.txt"
done
say "done"

grep -E "^test result|^== |^rc=" "$out/tests.txt" | paste -sd' ' | sed 's/== /\n== /g'
grep -E "^(schedule|steps run|forward / reverse|to disk|rc=|gradient|GRADIENT|batch |spill )" "$out/jobs.txt"
[ -f "$out/bench-compression.txt" ] && grep -E "^(grid|main job|1024)" "$out/bench-compression.txt"
[ -f "$out/bench-batch.txt" ] && sed -n '/^grid /,$p' "$out/bench-batch.txt" | grep -v "^$" | head -40
sed -n '/gpurevolve GPU report/,$p' "$out/report.txt" | grep -v "^$" | head -120
