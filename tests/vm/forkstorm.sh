#!/bin/bash
# A fork storm (thousands of short-lived tasks) and many more runnable
# tasks than CPUs: all complete.  stress-ng's fork stressor forks and reaps
# children as fast as it can; its cpu stressor with a fixed op count must
# finish every worker.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
stress-ng --fork "$N" --fork-ops 3000 --fork-max 64 -t 120 --metrics-brief >/tmp/fork.log 2>&1 || { cat /tmp/fork.log; fail "fork storm failed"; }
grep -q 'successful run completed' /tmp/fork.log || { cat /tmp/fork.log; fail "fork storm incomplete"; }
ok "fork storm: $(awk '/fork /{print $5; exit}' /tmp/fork.log) forks completed"
many=$((N * 16))
stress-ng --cpu "$many" --cpu-ops $((many * 20)) -t 120 --metrics-brief >/tmp/cpu.log 2>&1 || { cat /tmp/cpu.log; fail "cpu workers failed"; }
grep -q 'successful run completed' /tmp/cpu.log || { cat /tmp/cpu.log; fail "cpu workers incomplete"; }
grep -q 'stressor terminated' /tmp/cpu.log && fail "a worker was killed"
ok "$many CPU-bound workers on $N CPUs completed their ops"
[ "$(ext_ops)" != "" ] && kill -0 "$pid" || fail "scheduler gone"
kill -TERM "$pid"; wait "$pid" || fail "exit $?"
ok "exit 0"
