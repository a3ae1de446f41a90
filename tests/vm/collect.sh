#!/bin/bash
# `collect` records the fair balancer's can_migrate_task() decisions: a few
# seconds under CPU and fork load must give rows with both labels, no
# dropped events, and a dataset that `train` accepts.
. "$(dirname "$0")/lib.sh"
out=/tmp/collect-test.csv
stress-ng -c "$(($(nproc) * 2))" -f 2 -t 40 >/dev/null 2>&1 &
sleep 2
"$BIN" collect -q -d 30 -w vm-test -o "$out" || fail "collect exited $?"
wait
grep -q '^# workload: vm-test' "$out" || fail "no workload in the header"
grep -q '^# dropped: 0' "$out" || fail "events were dropped: $(grep '^# dropped' "$out")"
stay=$(grep -v '^#' "$out" | tail -n +2 | grep -c ',0$')
move=$(grep -v '^#' "$out" | tail -n +2 | grep -c ',1$')
echo "rows: $stay stay, $move migrate"
[ "$stay" -gt 0 ] && [ "$move" -gt 0 ] || fail "expected both labels"
ok "collect: both labels"
"$BIN" train "$out" --folds 0 -o /tmp/collect-test-model.json >/dev/null || fail "train refused the collected dataset"
ok "train accepts the collected dataset"
# With a sched_ext scheduler attached the fair balancer does not run: refuse.
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 30 || fail "scheduler did not attach"
msg=$("$BIN" collect -d 1 -o /tmp/never.csv 2>&1) && fail "collect ran while a sched_ext scheduler was attached"
grep -q "sched_ext scheduler is attached" <<<"$msg" || fail "unclear error: $msg"
[ ! -e /tmp/never.csv ] || fail "collect created a file anyway"
ok "collect refuses while sched_ext is attached"
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit status $?"
