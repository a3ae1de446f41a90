#!/bin/bash
# Affinity: tasks pinned with taskset, or re-pinned with sched_setaffinity
# (taskset -p) while running, never run outside their allowed CPUs
# (affinity_check in lib.sh samples the CPU each last ran on).
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 4 ] || fail "needs 4 CPUs"
"$BIN" run $RUN_EXTRA >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
stress-ng -c 2 -t 60 >/dev/null 2>&1 &    # competition, so that stealing happens
affinity_check 200 || fail "$? samples outside the allowed CPUs"
ok "200 samples of 3 tasks, all within their allowed CPUs"
kill -TERM "$pid"; wait "$pid" || fail "exit $?"
