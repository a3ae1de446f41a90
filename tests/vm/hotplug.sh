#!/bin/bash
# CPU hotplug during a run: the kernel exits the scheduler with a restart
# request (it has no cpu_online/offline callbacks), the restart loop brings
# it back, and it keeps scheduling; no stall, no error exit.
. "$(dirname "$0")/lib.sh"
cpu=/sys/devices/system/cpu/cpu1/online
[ -w $cpu ] || fail "cpu1 cannot be hotplugged in this guest"
stress-ng -t 60 -c "$(nproc)" >/dev/null 2>&1 &
spid=$!
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
for round in 1 2; do
    echo 0 >$cpu || fail "offlining cpu1"
    sleep 3
    wait_ops mlsched 30 || { cat /tmp/sched.log; fail "not re-attached after cpu1 went offline (round $round)"; }
    echo 1 >$cpu || fail "onlining cpu1"
    sleep 3
    wait_ops mlsched 30 || { cat /tmp/sched.log; fail "not re-attached after cpu1 came back (round $round)"; }
    kill -0 "$pid" 2>/dev/null || { cat /tmp/sched.log; fail "scheduler process died (round $round)"; }
done
restarts=$(grep -c 're-initialising' /tmp/sched.log)
[ "$restarts" -ge 1 ] || { cat /tmp/sched.log; fail "no restart seen"; }
ok "hotplug: $restarts restarts, still attached as $(ext_ops)"
kill -TERM "$pid"; wait "$pid"; rc=$?
[ $rc -eq 0 ] || { cat /tmp/sched.log; fail "exit $rc after hotplug"; }
wait "$spid"
wait_disabled 10 || fail "state $(ext_state)"
ok "SIGTERM after hotplug: exit 0, disabled"
