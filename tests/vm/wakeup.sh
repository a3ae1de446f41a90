#!/bin/bash
# Wakeup preemption, through the stats: with a CPU hog on every CPU and
# threads that sleep and wake all the time, woken tasks must preempt the
# hogs (the `preempt` counter grows), and their waits from wakeup to running
# are counted, once each, under one outcome (the `wake waits` line).  A
# wakeup that was too soon for the task it could preempt (250 us not run)
# arms that CPU's preemption timer.  The mean waits are printed, not
# asserted: under emulation they vary with the host.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 2 ] || fail "needs 2 CPUs"

sum() { grep -oE "$1: [0-9]+" /tmp/sched.log | awk '{s += $NF} END {print s + 0}'; }

"$BIN" run --stats 5 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
stress-ng -t 15 -c "$N" --sleep "$N" --sleep-max 4 >/tmp/stress.log 2>&1 || fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
sleep 5 # one more stats interval
kill -INT "$pid"; wait "$pid" || fail "scheduler exited $?"
grep -E 'wakeups ->|wake waits ->' /tmp/sched.log | tail -4
woken=$(sum queued)
preempt=$(sum preempt)
[ "$woken" -gt 0 ] || fail "no queued wakeup counted"
[ "$preempt" -gt 0 ] || fail "no wakeup preempted a CPU hog ($woken queued wakeups)"
ok "hogs and sleepers: $woken queued wakeups, $preempt preemptions"
outcomes=$(( $(sum 'preempted') + $(sum 'here') + $(sum 'kicked idle') + $(sum 'too soon') + $(sum 'not behind') ))
# (the totals are the outcomes' sums; a reading taken mid-update may differ by one per CPU)
diff=$(( outcomes > woken ? outcomes - woken : woken - outcomes ))
[ "$diff" -le "$N" ] || fail "wake outcomes add up to $outcomes, not the $woken queued wakeups"
soon=$(sum 'too soon') armed=$(sum 'timers armed') fired=$(sum 'fired')
[ "$soon" -eq 0 ] || [ "$armed" -gt 0 ] || fail "$soon wakeups were too soon to preempt, and no preemption timer was armed"
# (a timer armed before the first reading may fire after it: one per CPU)
[ "$fired" -le $((armed + N)) ] || fail "$fired preemption timers fired, more than the $armed armed"
ok "wake outcomes add up; too soon: $soon, timers armed: $armed, fired: $fired"
wait_disabled 10 || fail "state is $(ext_state) after exit"
