#!/bin/bash
# Sustained mixed load for 120 s (stress-ng --aggressive CPU, fork, I/O and
# yield stressors together): no watchdog ejection, exit 0 on SIGTERM.
# Under it, khugepaged (nice 19) is preempted inside RCU read-side sections;
# before such readers were queued first (rcu_reader() in bpf/main.bpf.c),
# one waited behind the stressors until the kernel ejected the scheduler
# for an RCU stall, in about one run out of three.  The readers boosted are
# counted (`rcu boost`) and printed.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
"$BIN" run $RUN_EXTRA --stats 10 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
ops=$(ext_ops)
stress-ng -t 120 --aggressive -c "$N" -f 2 --io 2 --yield "$N" --temp-path /var/tmp >/tmp/stress.log 2>&1
src=$?
[ "$(ext_ops)" = "$ops" ] && kill -0 "$pid" 2>/dev/null || { cat /tmp/sched.log; fail "scheduler ejected during the load"; }
grep -q 'runnable task stall\|EXIT' /tmp/sched.log && { cat /tmp/sched.log; fail "watchdog or error exit"; }
[ $src -eq 0 ] || { tail -5 /tmp/stress.log; fail "stress-ng exited $src"; }
boost=$(grep -oE "rcu boost: [0-9]+" /tmp/sched.log | awk '{s += $NF} END {print s + 0}')
ok "120 s of mixed load, still attached (RCU readers queued first or kept: $boost)"
kill -INT "$pid"; wait "$pid" || fail "exit $? on SIGINT"
ok "SIGINT: exit 0"
