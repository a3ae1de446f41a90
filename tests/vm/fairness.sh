#!/bin/bash
# Fairness: two CPU-bound tasks at nice 0 and nice 5 on one CPU get CPU time
# in the ratio of their kernel weights (1024 / 335 = 3.06), within 15%.
. "$(dirname "$0")/lib.sh"
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
taskset -c 1 nice -n 0 bash -c 'while :; do :; done' & a=$!
taskset -c 1 nice -n 5 bash -c 'while :; do :; done' & b=$!
sleep 20
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
ta=$(ticks $a); tb=$(ticks $b)
kill $a $b; wait $a $b 2>/dev/null
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit $?"
[ "$tb" -gt 0 ] || fail "nice 5 task got no CPU time (starved)"
ratio=$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.3f", a / b}')
echo "CPU ticks: nice0=$ta nice5=$tb ratio=$ratio (want 3.06 ± 15%)"
awk -v r="$ratio" 'BEGIN {exit !(r >= 3.06 * 0.85 && r <= 3.06 * 1.15)}' || fail "ratio $ratio outside 2.60..3.52"
ok "nice 0 : nice 5 = $ratio"
