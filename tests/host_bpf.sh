#!/bin/bash
# Native BPF checks on the host: bpf/tree.bpf.c loads on any kernel with
# BPF (no sched_ext, no VM), so these run at native speed here.
#   - replay: the BPF tree walk agrees with linfa's prediction on every row
#     of every shipped dataset (the same check runs in the VM selftest);
#   - a model whose flat nodes differ from its linfa tree is caught;
#   - `bench inference` reports ns per decision for the shipped model and
#     the deepest tree, and ns per feature fill (the numbers are printed,
#     not asserted: only that each was timed).
#   tests/host_bpf.sh BIN
set -euo pipefail
bin=$(realpath "${1:?usage: tests/host_bpf.sh PATH_TO_scx_mlsched}")
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fail() { echo "FAIL: host_bpf: $*"; exit 1; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

"$bin" selftest --replay datasets/*.csv 2>/dev/null | tee "$d/replay.out"
[ "$(grep -c 'agrees with linfa on all' "$d/replay.out")" = "$(ls datasets/*.csv | wc -l)" ] ||
    fail "replay did not cover every shipped dataset"
echo "ok: host_bpf: replay"

# Flip the verdict of the first leaf in the nodes only: linfa's tree, kept
# in the file, now disagrees with what BPF walks.
python3 - "$d/flipped.json" <<'PY'
import json, sys
m = json.load(open("model/default.json"))
leaf = next(n for n in m["nodes"] if n["feature"] == -1)
leaf["verdict"] = 1 - leaf["verdict"]
json.dump(m, open(sys.argv[1], "w"))
PY
if out=$("$bin" selftest --replay datasets/kcompile-fio.csv --model "$d/flipped.json" 2>&1); then
    fail "a model whose nodes differ from its linfa tree passed the replay"
fi
grep -q 'disagrees with linfa' <<<"$out" || fail "unclear replay failure: $out"
echo "ok: host_bpf: a tree that differs from linfa's is caught ($(grep -o '[0-9]* of [0-9]* rows' <<<"$out"))"

"$bin" bench inference --repeats 3 --run-ms 100 --out "$d/inference.json" 2>/dev/null | tee "$d/inference.out"
python3 - "$d/inference.json" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
names = [m["model"] for m in r["models"]]
if names[:2] != ["shipped", "deepest (depth 16)"]:
    sys.exit(f"FAIL: host_bpf: bench inference timed {names}")
for m in r["models"]:
    if not (m["loop_ns"] > 0 and m["decisions_per_run"] > 0):
        sys.exit(f"FAIL: host_bpf: no timing for {m['model']}: {m}")
deep = r["models"][1]
if deep["mean_walk_depth"] != 16 or deep["migrate_share"] != 1.0:
    sys.exit(f"FAIL: host_bpf: the deepest tree was not walked to the bottom: {deep}")
# The feature fill, timed on this host (its kernel has per-CPU BTF variables).
f = r.get("fill")
if not f or not (f["loop_ns"] > f["empty_ns"] > 0 and f["fills_per_run"] >= 1000):
    sys.exit(f"FAIL: host_bpf: the feature fill was not timed: {f}")
PY
echo "ok: host_bpf: bench inference"
