#!/bin/bash
# SIGKILL in the middle of a stress run, with each policy (heuristic, and
# the learned tree): the kernel detaches the scheduler, the state returns
# to disabled, and every workload process finishes with its expected output.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
for policy in heuristic ml; do
    stress-ng -t 25 -c "$N" -f "$N" --metrics-brief >/tmp/stress.log 2>&1 &
    spid=$!
    # a deterministic workload whose output we can check
    ( for i in $(seq 1 200); do echo "$i"; done | sort -n | tail -1 >/tmp/count.out ) &
    cpid=$!
    "$BIN" run --policy "$policy" >/tmp/sched.log 2>&1 &
    pid=$!
    wait_ops mlsched 60 || fail "scheduler never attached"
    sleep 5
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    wait_disabled 15 || fail "state is $(ext_state) 15 s after SIGKILL"
    ok "$policy: SIGKILL: kernel detached the scheduler, state disabled"
    wait "$spid" || { tail -5 /tmp/stress.log; fail "stress-ng failed after the scheduler was killed"; }
    grep -q 'successful run completed' /tmp/stress.log || fail "stress-ng did not report success"
    wait "$cpid"
    [ "$(cat /tmp/count.out)" = 200 ] || fail "workload output wrong: $(cat /tmp/count.out)"
    ok "$policy: workloads completed with their expected output"
done
