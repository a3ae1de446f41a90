#!/bin/bash
# Task migrations by path, through the stats: under CPU hogs, sleepers and
# a pipe ping-pong (wakeups, preemptions, slice ends), every path that
# moves tasks is seen, and the per-path counts of ops.running add up to the
# sched_migrate_task tracepoint's count with "other" as its own bucket:
# the named paths never exceed the total, and "other" (moves no path
# accounts for) stays under 20%.  perf's cpu-migrations over the load (all
# classes, a shorter window than the stats') is printed beside it.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 2 ] || fail "needs 2 CPUs"

# sum LABEL: the LABEL counts of every `moved ->` line, summed.
sum() { grep 'moved ->' /tmp/sched.log | grep -oE "$1: [0-9]+" | awk '{s += $NF} END {print s + 0}'; }

"$BIN" run --stats 5 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
perf stat -a -x, -e cpu-migrations -o /tmp/perf.csv -- \
    stress-ng -t 15 -c "$N" --sleep "$N" --sleep-max 4 --pipe 1 >/tmp/stress.log 2>&1 ||
    fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
sleep 6 # the interval that covers the end of the load
kill -INT "$pid"; wait "$pid" || fail "scheduler exited $?"
grep 'moved ->' /tmp/sched.log | tail -4

all=$(grep -oE 'moved -> [0-9]+' /tmp/sched.log | awk '{s += $NF} END {print s + 0}')
a=$(sum 'wake idle') b=$(sum 'llc pool') c=$(sum 'preempt wakee')
st=$(sum steal) own=$(sum 'own queue') other=$(sum other)
named=$((a + b + c + st + own))
[ "$all" -gt 0 ] || fail "the tracepoint counted no migration"
[ $((named + other)) -eq "$all" ] || fail "paths ($named) and other ($other) do not add up to the tracepoint's $all"
# Per interval: the named paths never exceed the tracepoint's count (a
# reading taken mid-update may be off by one per CPU).
grep 'moved ->' /tmp/sched.log | sed -E 's/.*moved -> ([0-9]+).*wake idle: ([0-9]+) llc pool: ([0-9]+) preempt wakee: ([0-9]+) steal: ([0-9]+) own queue: ([0-9]+).*/\1 \2 \3 \4 \5 \6/' |
    while read -r t x y z s o; do
        [ $((x + y + z + s + o)) -le $((t + N)) ] || { echo "FAIL: paths $((x + y + z + s + o)) > tracepoint $t in one interval"; exit 1; }
    done || fail "an interval's paths exceed its tracepoint count"
ok "moved $all: wake idle $a, llc pool $b, preempt wakee $c, steal $st, own queue $own, other $other"
[ "$a" -gt 0 ] || fail "no move by select_cpu's idle CPU (A)"
[ "$b" -gt 0 ] || fail "no move through the LLC's shared queue (B)"
[ $((other * 100)) -le $((all * 20)) ] || fail "other is $other of $all moves: more than 20% unaccounted for"
ok "A and B seen; other is $((other * 100 / all))% of the moves"
kernel=$(sed -n 's/^\([0-9]*\),.*cpu-migrations.*/\1/p' /tmp/perf.csv)
[ -n "$kernel" ] || fail "perf counted no cpu-migrations: $(cat /tmp/perf.csv)"
ok "perf's cpu-migrations over the load (every class): $kernel"
wait_disabled 10 || fail "state is $(ext_state) after exit"
