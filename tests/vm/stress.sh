#!/bin/bash
# The scx project's CI recipe: stress-ng with CPU, fork and affinity churn in
# the background while `timeout --preserve-status 45 scx_mlsched run` runs.
# Passes if our ops were attached during the run, the scheduler exited 0 on
# SIGTERM, stress-ng succeeded and the state went back to disabled.  The
# host side (tests/vm/run.sh) checks the kernel log for stalls, BUG:, WARNING:.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$(ext_state)" = disabled ] || fail "sched_ext busy before the test: $(ext_state)"
stress-ng -t 31 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/tmp/stress.log 2>&1 &
spid=$!
timeout --preserve-status 45 "$BIN" run $RUN_EXTRA --stats 10 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 && seen=$(ext_ops) || seen=""
wait "$pid"; rc=$?
wait "$spid"; src=$?
cat /tmp/sched.log
tail -5 /tmp/stress.log
[ -n "$seen" ] || fail "ops never named mlsched (saw '$(ext_ops)')"
ok "attached as $seen"
[ "$rc" -eq 0 ] || fail "scheduler exited $rc on SIGTERM"
ok "scheduler exited 0 on SIGTERM"
[ "$src" -eq 0 ] || fail "stress-ng exited $src"
ok "stress-ng completed"
# The readable line: what moved, who decided, the wakeups' wait, and ok
# (nothing abnormal under this load), and no stats-server retry notice.
grep -qE '\] [0-9.]+ s: moved [0-9]+ tasks \(wake idle [0-9]+, .*\| decided [0-9]+: heuristic [0-9]+ \([0-9]+ allowed, [0-9]+ refused\)[^|]* \| wakeups queued [0-9]+, mean wait .* \| (ok|ABNORMAL: .*)$' /tmp/sched.log ||
    fail "no readable stats line printed"
grep -q 'attached: policy heuristic' /tmp/sched.log || fail "the start-up line does not say which policy decides"
! grep -q 'Stats server not available' /tmp/sched.log || fail "--stats logged the stats server's retry"
ok "--stats printed the readable line; the start-up line names the policy"
wait_disabled 10 || fail "state is $(ext_state) after exit"
ok "state back to disabled"
