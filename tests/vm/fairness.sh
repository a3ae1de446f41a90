#!/bin/bash
# Fairness: two CPU-bound tasks at nice 0 and nice 5 on one CPU get CPU time
# in the ratio of their kernel weights (1024 / 335 = 3.06), within 15%.
# Measured twice: alone, then with a nice 19 hog on another CPU (a
# low-weight task's vtime leaps ahead; it must not flatten the ratio of
# tasks elsewhere through the shared vtime clock).
. "$(dirname "$0")/lib.sh"
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }

# measure LABEL: nice 0 and nice 5 pinned to cpu1 for 20 s
measure() {
    local a b ta tb ratio
    taskset -c 1 nice -n 0 bash -c 'while :; do :; done' & a=$!
    taskset -c 1 nice -n 5 bash -c 'while :; do :; done' & b=$!
    sleep 20
    ta=$(ticks $a); tb=$(ticks $b)
    kill $a $b; wait $a $b 2>/dev/null
    [ "$tb" -gt 0 ] || fail "$1: nice 5 task got no CPU time (starved)"
    ratio=$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.3f", a / b}')
    echo "$1: CPU ticks: nice0=$ta nice5=$tb ratio=$ratio (want 3.06 ± 15%)"
    awk -v r="$ratio" 'BEGIN {exit !(r >= 3.06 * 0.85 && r <= 3.06 * 1.15)}' ||
        fail "$1: ratio $ratio outside 2.60..3.52"
    ok "$1: nice 0 : nice 5 = $ratio"
}

measure "alone"
taskset -c 2 nice -n 19 bash -c 'while :; do :; done' & hog=$!
measure "nice 19 hog on cpu2"
kill $hog; wait $hog 2>/dev/null
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit $?"
