#!/bin/bash
# The learned tree in the loop (--policy ml), under the scx CI stress recipe
# (stress-ng CPU, fork and affinity churn), started once the scheduler is
# attached; the test stops the scheduler itself with SIGTERM:
#   - hot swap: --watch picks up a new model file (generation 2), a model
#     of another schema is refused and generation 2 stays, the shipped file
#     comes back (generation 3), SIGHUP on an unchanged file loads it again
#     (generation 4), and the tree goes on deciding after the swaps;
#   - freshness: with the scheduler's process stopped (SIGSTOP) for 3 s, the
#     BPF side stops trusting the tree and counts stale fallbacks;
#   - the linfa twin checks the sampled decisions and disagrees on none;
#   - exit 0 on SIGTERM, stress-ng succeeds, the state returns to disabled.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
m=/tmp/ml-model.json
cp model/default.json "$m"
mk_model never /tmp/never.json
mk_model badschema /tmp/badschema.json
[ "$(ext_state)" = disabled ] || fail "sched_ext busy before the test: $(ext_state)"
"$BIN" run --policy ml --model "$m" --watch --stats 2 --stats-verbose --sample-every 4 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
stress-ng -t 45 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/tmp/stress.log 2>&1 &
spid=$!
sleep 4
grep -q 'model generation 1 in force' /tmp/sched.log || fail "generation 1 not loaded"
cp /tmp/never.json "$m"
sleep 4
grep -q 'model generation 2 in force' /tmp/sched.log || fail "--watch did not load the changed file"
ok "--watch: generation 2 in force"
cp /tmp/badschema.json "$m"
sleep 4
grep -q 'refused the new model.*schema.*generation 2 stays in force' /tmp/sched.log || fail "a model of another schema was not refused"
ok "a model of another schema is refused; generation 2 stays"
cp model/default.json "$m"
sleep 4
grep -q 'model generation 3 in force' /tmp/sched.log || fail "--watch did not load the shipped file back"
kill -HUP "$pid"
sleep 3
# the first load after "SIGHUP: reloading" (stats lines may come between)
awk '/SIGHUP: reloading/ {s = 1} s && /model generation [0-9]+ in force/ {print; exit}' /tmp/sched.log |
    grep -q 'model generation 4 in force' || fail "SIGHUP did not load generation 4"
ok "SIGHUP on an unchanged file: generation 4 in force"
kill -STOP "$pid"
sleep 3
kill -CONT "$pid"
wait "$spid"; src=$?
sleep 3
kill -TERM "$pid"; wait "$pid"; rc=$?
cat /tmp/sched.log
tail -3 /tmp/stress.log
[ "$rc" -eq 0 ] || fail "scheduler exited $rc on SIGTERM"
ok "scheduler exited 0 on SIGTERM"
[ "$src" -eq 0 ] || fail "stress-ng exited $src"
ok "stress-ng completed"
# Decisions after the last swap: stats lines of generation 4 or later with tree walks.
walks=$(grep -oE 'model gen ([4-9]|[1-9][0-9]+) -> migrate: [0-9]+ stay: [0-9]+' /tmp/sched.log |
    awk '{s += $6 + $8} END {print s + 0}')
[ "$walks" -gt 0 ] || fail "no tree decisions after the swaps"
ok "$walks tree decisions after the last swap"
grep -qE 'ml_allow: [1-9]|ml_deny: [1-9]' /tmp/sched.log || fail "the model never decided a migration"
grep -qE 'stale: [1-9]' /tmp/sched.log || fail "no stale fallback counted while userspace was stopped"
ok "stale heartbeat: the heuristic took over while userspace was stopped"
! grep -qE 'disagree: [1-9]' /tmp/sched.log || fail "the twin disagreed in some interval"
line=$(grep 'twin: linfa checked' /tmp/sched.log) || fail "the twin reported nothing"
[[ $line =~ checked\ ([0-9]+).*disagreed\ on\ 0\;.*heuristic\ disagreed\ with\ BPF.s\ on\ 0$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "twin: $line"
ok "twin: linfa agreed on all ${BASH_REMATCH[1]} sampled decisions"
wait_disabled 10 || fail "state is $(ext_state) after exit"
ok "state back to disabled"
