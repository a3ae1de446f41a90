#!/bin/bash
# The gate at every decision point (issue #23): steals and the placements
# A (select_cpu's idle CPU), B (enqueue: own CPU or the LLC's pool) and C
# (a preempting wakee onto the waking CPU) all ask can_migrate(), under a
# load that leaves CPUs idle at times (CPU hogs beside it left none idle
# under emulation, and point A needs one): a fork loop (a child's
# select_cpu starts from its running parent's CPU, so it finds another,
# idle one: point A), a few sleepers and a pipe ping-pong:
#   - heuristic, with --record: every recorded verdict equals its point's
#     old rule on the recorded inputs (selftest --check-record), and A,
#     both kinds of B and C are seen.  (That the inputs mean what the old
#     code read, and the scheduler behaves as before, is the benchmark's
#     arm mlsched-prev to show.);
#   - shadow: the tree walks at every placement, its agreement with each
#     point's heuristic is reported, and the Rust heuristic agrees with
#     BPF's on every sample (the twin);
#   - ml with the shipped model, which declares the steals only: the tree
#     never walks at a placement, where the heuristic decides.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 2 ] || fail "needs 2 CPUs"
load() {
    # on CPUs otherwise idle: each fork's child starts from its busy
    # parent's CPU, and the idle search finds another (point A)
    for _ in $(seq 300); do /bin/true; done
    stress-ng -t "$1" -f 1 --sleep 1 --sleep-max 4 --pipe 1 >/tmp/stress.log 2>&1 ||
        fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
}
# stop PID: SIGINT, exit 0, state back to disabled
stop() {
    kill -INT "$1"; wait "$1" || fail "scheduler exited $?"
    wait_disabled 10 || fail "state is $(ext_state) after exit"
}
gate_lines() { grep 'gate allowed/asked' /tmp/sched.log; }

"$BIN" run --record /tmp/rec.csv --record-every 4 --stats 5 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
load 12
stop "$pid"
gate_lines | tail -2
"$BIN" selftest --check-record /tmp/rec.csv >/tmp/check.log 2>&1 ||
    { cat /tmp/check.log; fail "recorded verdicts differ from their point's old rule"; }
cat /tmp/check.log
for p in wake_idle enq_wakeup enq_requeue preempt_wakee; do
    grep -q ": $p: .*(100.00%)" /tmp/check.log || fail "no recorded decision at $p"
done
ok "heuristic: every recorded verdict is its point's old rule"

# --requeue-local (issue #24's H2): the header says so, check-record reads
# the rule from it, and cache-hot requeues stay on their CPU's queue.
"$BIN" run --requeue-local --record /tmp/rec-rl.csv --record-every 4 --stats 5 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
load 8
stop "$pid"
"$BIN" selftest --check-record /tmp/rec-rl.csv >/tmp/check.log 2>&1 ||
    { cat /tmp/check.log; fail "--requeue-local: recorded verdicts differ from its rule"; }
grep ': enq_requeue: ' /tmp/check.log
line=$(grep ': enq_requeue: .*(100.00%)' /tmp/check.log) || fail "--requeue-local: no enq_requeue decision"
rows=$(sed -E 's/.* of ([0-9]+) verdicts.*/\1/' <<<"$line")
allowed=$(sed -E 's/.*\(([0-9]+) allowed\)$/\1/' <<<"$line")
[ "$allowed" -lt "$rows" ] || fail "--requeue-local: every requeue went to the pool ($allowed of $rows)"
ok "--requeue-local: cache-hot requeues stay ($allowed of $rows went to the pool)"

"$BIN" run --policy shadow --stats 5 --stats-verbose --sample-every 4 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
load 12
stop "$pid"
gate_lines | tail -2
for p in 'wake idle' 'enq wakeup' 'enq requeue' 'preempt wakee'; do
    gate_lines | grep -qE "$p: [0-9]+/[0-9]+ \(tree agrees [0-9.]+%\)" ||
        fail "shadow: no tree walk reported at $p"
done
if gate_lines | grep -qE 'twin heuristic disagree: [1-9]'; then
    fail "the Rust heuristic disagreed with BPF's on a sample"
fi
twin=$(grep 'twin: linfa checked' /tmp/sched.log) || fail "no twin summary"
echo "$twin"
grep -q 'disagreed on 0;.*enq_wakeup [0-9]*/[0-9]*.*heuristic disagreed with BPF.s on 0' <<<"$twin" ||
    fail "twin: a disagreement, or no sample of enq_wakeup"
ok "shadow: the tree walked at every placement; the twins agree"

"$BIN" run --policy ml --stats 5 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
load 8
stop "$pid"
gate_lines | tail -2
gate_lines | grep -qE 'enq wakeup: [0-9]+/[1-9][0-9]*' || fail "ml: the gate was not asked at enqueue"
if gate_lines | grep -qE '(wake idle|enq wakeup|enq requeue|preempt wakee): [0-9]+/[0-9]+ \(tree'; then
    fail "ml: the tree walked at a point the shipped model does not declare"
fi
ok "ml: the shipped model decides at the steals only"
