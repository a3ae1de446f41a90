#!/bin/bash
# --partial: only tasks that chose SCHED_EXT (policy 7) are scheduled by
# scx_mlsched; every other task stays in the fair class.  A run without
# --partial is the control: there the same kind of task is on sched_ext,
# which shows that the probe (ext.enabled in /proc/PID/sched) can tell.
. "$(dirname "$0")/lib.sh"
on_ext() { awk '/^ext\.enabled/ {print $NF}' "/proc/$1/sched"; }

"$BIN" run --partial --stats 1 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached with --partial"
sleep 30 & normal=$!
[ -n "$(on_ext $normal)" ] || fail "/proc/PID/sched has no ext.enabled line"
[ "$(on_ext $normal)" = 0 ] || fail "a SCHED_NORMAL task is on sched_ext in partial mode"
ok "partial: a SCHED_NORMAL task stays in the fair class"

# A task that asks for SCHED_EXT runs on sched_ext and finishes its work.
out=$(python3 - <<'PY'
import os
os.sched_setscheduler(0, 7, os.sched_param(0))  # SCHED_EXT
n = sum(i * i for i in range(2_000_000))
ext = [l.split()[-1] for l in open("/proc/self/sched") if l.startswith("ext.enabled")]
print("policy", os.sched_getscheduler(0), "ext", ext[0] if ext else "?", "sum", n)
PY
)
echo "$out"
grep -q "policy 7 ext 1 sum 2666664666667000000" <<<"$out" || fail "SCHED_EXT task did not run on sched_ext to completion"
ok "partial: a SCHED_EXT task runs on scx_mlsched"
kill $normal
kill -INT "$pid"; wait "$pid" || fail "exit $? on SIGINT"
wait_disabled 10 || fail "state is $(ext_state) after SIGINT"

# Control: without --partial every task is on sched_ext.
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
sleep 30 & normal=$!
sleep 1
[ "$(on_ext $normal)" = 1 ] || fail "control: without --partial a SCHED_NORMAL task is not on sched_ext"
ok "control: without --partial the same kind of task is on sched_ext"
kill $normal
kill -INT "$pid"; wait "$pid" || fail "exit $? on SIGINT"
