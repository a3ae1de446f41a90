#!/bin/bash
# The README's fleet example, run for real (docs/learning.md, "Training on a
# fleet"): datasets from two hosts, exported to Parquet, merged with Polars
# by the very snippet the docs show, and trained on.
#
# The fleet: the shipped datasets (host virtme-ng), and two more hosts,
# two names of one VM test bed guest: `collect` runs twice in one boot
# under CPU and fork load, with the guest's hostname set to fleet-a, then
# fleet-b (what a dataset's `host` column records).  `export` writes each
# to Parquet.  On the host, the docs' Python snippet runs unchanged in a
# folder holding fleet/*.parquet; the test requires that its group_by
# shows all three hosts, that it wrote merged-<schema>.parquet with every
# row of every dataset, and that `train` accepts that file and `eval`
# scores the model it wrote on it.
# Polars comes from PyPI into a venv in the cache (outside the repository).
#   tests/fleet.sh BIN
set -uo pipefail
bin=${1:?usage: tests/fleet.sh PATH_TO_scx_mlsched}
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SCX_MLSCHED_CACHE:-/var/cache/scx_mlsched}
venv=$cache/venv
fail() { echo "FAIL: fleet: $*"; exit 1; }
start=$(date +%s)

if ! "$venv/bin/python" -c 'import polars' 2>/dev/null; then
    python3 -m venv "$venv" 2>/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"
    } || fail "cannot make a Python venv in $venv"
    "$venv/bin/pip" install -q 'polars>=1,<2' || fail "cannot install polars from PyPI"
fi

# The guest sees /var/tmp (writable), not /var/cache.
dir=$(mktemp -d /var/tmp/scx_mlsched-fleet.XXXXXX)
mkdir -p "$dir/fleet"
cp "$bin" "$dir/scx_mlsched"
guest="set -e; for h in fleet-a fleet-b; do
    echo \$h > /proc/sys/kernel/hostname
    stress-ng -c 8 -f 2 -t 14 >/dev/null 2>&1 &
    sleep 1
    $dir/scx_mlsched collect -q -d 10 -w fleet-test -o $dir/\$h.csv
    wait
    $dir/scx_mlsched export --parquet $dir/fleet/\$h.parquet $dir/\$h.csv
done"
(cd "$top" && bash vm/testbed.sh run -c 4 -- "$guest") >"$dir/vm.log" 2>&1 ||
    { tail -20 "$dir/vm.log"; fail "collecting in the VM test bed failed (log: $dir/vm.log)"; }
for h in fleet-a fleet-b; do
    grep -q "^# host: $h\$" "$dir/$h.csv" || fail "$h.csv does not say it came from $h"
    [ -s "$dir/fleet/$h.parquet" ] || fail "no fleet/$h.parquet"
done
shipped=(kcompile-fio hackbench-mix)
for d in "${shipped[@]}"; do
    cp "$top/datasets/$d.csv" "$dir/$d.csv"
    "$bin" export --parquet "$dir/fleet/$d.parquet" "$dir/$d.csv" >/dev/null || fail "export of datasets/$d.csv failed"
done

# The snippet, exactly as the docs show it.
awk '/^## Training on a fleet/ {s = 1} s && /^```python/ {p = 1; next} p && /^```/ {exit} p' \
    "$top/docs/learning.md" >"$dir/example.py"
[ -s "$dir/example.py" ] || fail "no Python snippet under 'Training on a fleet' in docs/learning.md"
(cd "$dir" && "$venv/bin/python" example.py) >"$dir/example.out" 2>&1 ||
    { cat "$dir/example.out"; fail "the docs' snippet failed"; }
cat "$dir/example.out"
for h in fleet-a fleet-b virtme-ng; do
    grep -q "$h" "$dir/example.out" || fail "the snippet's group_by does not show host $h"
done
schema=$(sed -n 's/^# schema: //p' "$dir/fleet-a.csv" | head -1)
merged=$dir/merged-$schema.parquet
[ -s "$merged" ] || fail "the snippet wrote no $(basename "$merged")"
rows=0
for f in fleet-a fleet-b "${shipped[@]}"; do
    grep -qx "# schema: $schema" "$dir/$f.csv" || fail "$f.csv is of another schema than fleet-a.csv"
    rows=$((rows + $(grep -vc '^#' "$dir/$f.csv") - 1))
done
got=$("$venv/bin/python" -c "import polars as pl, sys; print(pl.read_parquet(sys.argv[1]).height)" "$merged")
[ "$got" -eq "$rows" ] || fail "merged file has $got rows, the datasets $rows"
"$bin" train --max-depth 2 -o "$dir/fleet-model.json" "$merged" >"$dir/train.log" 2>&1 ||
    { tail -5 "$dir/train.log"; fail "train refused the merged file"; }
[ -s "$dir/fleet-model.json" ] || fail "train wrote no model"
"$bin" eval "$dir/fleet-model.json" "$merged" >"$dir/eval.log" 2>&1 ||
    { tail -5 "$dir/eval.log"; fail "eval of the fleet's model on the merged file failed"; }
grep -i "accuracy" "$dir/eval.log" | head -2
echo "PASS: fleet: 3 hosts, $rows rows merged by the docs' snippet and trained on ($(($(date +%s) - start)) s, in $dir)"
