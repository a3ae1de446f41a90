#!/bin/bash
# Wakeup preemption, through the stats: with a CPU hog on every CPU and
# threads that sleep and wake all the time, woken tasks must preempt the
# hogs (the `preempt` counter grows), and their waits from wakeup to running
# are counted.  The mean wait is printed, not asserted: under emulation it
# varies with the host.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 2 ] || fail "needs 2 CPUs"

sum() { grep -oE "$1: [0-9]+" /tmp/sched.log | awk '{s += $NF} END {print s + 0}'; }

"$BIN" run --stats 5 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
stress-ng -t 15 -c "$N" --sleep "$N" --sleep-max 4 >/tmp/stress.log 2>&1 || fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
sleep 5 # one more stats interval
kill -INT "$pid"; wait "$pid" || fail "scheduler exited $?"
grep -E 'wakeups ->' /tmp/sched.log | tail -2
woken=$(sum queued)
preempt=$(sum preempt)
[ "$woken" -gt 0 ] || fail "no queued wakeup counted"
[ "$preempt" -gt 0 ] || fail "no wakeup preempted a CPU hog ($woken queued wakeups)"
ok "hogs and sleepers: $woken queued wakeups, $preempt preemptions"
wait_disabled 10 || fail "state is $(ext_state) after exit"
