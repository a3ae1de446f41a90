#!/bin/bash
# The learned tree in the loop (--policy ml), under the scx CI stress recipe
# (stress-ng CPU, fork and affinity churn; 65 s, stopped by SIGTERM):
#   - hot swap: --watch picks up a new model file (generation 2), a model
#     of another schema is refused and generation 2 stays, SIGHUP loads the
#     next (generation 3), and decisions go on after each swap;
#   - freshness: with the scheduler's process stopped (SIGSTOP) for 3 s, the
#     BPF side stops trusting the tree and counts stale fallbacks;
#   - the linfa twin checks the sampled decisions and agrees on all;
#   - exit 0 on SIGTERM, stress-ng succeeds, the state returns to disabled.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
m=/tmp/ml-model.json
cp model/default.json "$m"
mk_model never /tmp/never.json
mk_model badschema /tmp/badschema.json
[ "$(ext_state)" = disabled ] || fail "sched_ext busy before the test: $(ext_state)"
stress-ng -t 50 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/tmp/stress.log 2>&1 &
spid=$!
timeout --preserve-status 65 "$BIN" run --policy ml --model "$m" --watch --stats 2 --sample-every 4 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
sleep 6
grep -q 'model generation 1 in force' /tmp/sched.log || fail "generation 1 not loaded"
cp /tmp/never.json "$m"
sleep 5
grep -q 'model generation 2 in force' /tmp/sched.log || fail "--watch did not load the changed file"
ok "--watch: generation 2 in force"
cp /tmp/badschema.json "$m"
sleep 5
grep -q 'refused the new model.*schema.*generation 2 stays in force' /tmp/sched.log || fail "a model of another schema was not refused"
ok "a model of another schema is refused; generation 2 stays"
cp model/default.json "$m"
kill -HUP "$pid"
sleep 5
grep -q 'model generation 3 in force' /tmp/sched.log || fail "SIGHUP did not load generation 3"
ok "SIGHUP: generation 3 in force"
# $pid is timeout(1), which forwards SIGHUP and SIGTERM but cannot forward SIGSTOP.
child=$(pgrep -P "$pid" -x scx_mlsched) || fail "no scx_mlsched under timeout"
kill -STOP "$child"
sleep 3
kill -CONT "$child"
sleep 8
wait "$pid"; rc=$?
wait "$spid"; src=$?
cat /tmp/sched.log
tail -3 /tmp/stress.log
[ "$rc" -eq 0 ] || fail "scheduler exited $rc on SIGTERM"
ok "scheduler exited 0 on SIGTERM"
[ "$src" -eq 0 ] || fail "stress-ng exited $src"
ok "stress-ng completed"
# Decisions after the last swap: a stats line of generation 3 or later with tree walks.
walks=$(grep -oE 'model gen ([3-9]|[1-9][0-9]+) -> migrate: [0-9]+ stay: [0-9]+' /tmp/sched.log |
    awk '{s += $6 + $8} END {print s + 0}')
[ "$walks" -gt 0 ] || fail "no tree decisions after the swaps"
ok "$walks tree decisions after the last swap"
grep -qE 'ml_allow: [1-9]|ml_deny: [1-9]' /tmp/sched.log || fail "the model never decided a migration"
grep -qE 'stale: [1-9]' /tmp/sched.log || fail "no stale fallback counted while userspace was stopped"
ok "stale heartbeat: the heuristic took over while userspace was stopped"
line=$(grep 'twin: linfa checked' /tmp/sched.log) || fail "the twin reported nothing"
[[ $line =~ checked\ ([0-9]+).*agreed\ on\ ([0-9]+),\ disagreed\ on\ ([0-9]+) ]] || fail "unparsable: $line"
[ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[3]}" -eq 0 ] || fail "twin: $line"
ok "twin: linfa agreed on all ${BASH_REMATCH[1]} sampled decisions"
wait_disabled 10 || fail "state is $(ext_state) after exit"
ok "state back to disabled"
