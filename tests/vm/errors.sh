#!/bin/bash
# Clear errors that change nothing: a second instance while one is attached,
# a non-root run, and a --record file closed when the run fails to start.
# (The no-sched_ext error is checked on the host kernel by tests/vm/run.sh.)
. "$(dirname "$0")/lib.sh"
"$BIN" run >/tmp/first.log 2>&1 &
first=$!
wait_ops mlsched 30 || { cat /tmp/first.log; fail "first instance never attached"; }
ops=$(ext_ops)

# --monitor prints the running instance's stats and loads nothing
mon=$(timeout --preserve-status 10 "$BIN" run --monitor 1 --stats-verbose 2>&1)
grep -q 'can_migrate' <<<"$mon" || { echo "$mon"; fail "--monitor printed no stats"; }
[ "$(ext_ops)" = "$ops" ] || fail "--monitor changed the attached scheduler"
ok "--monitor prints the running instance's stats"

# --stats-json: one JSON object per interval, every counter in it
mon=$(timeout --preserve-status 10 "$BIN" run --monitor 1 --stats-json 2>/tmp/json.err)
n=$(python3 -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin if l.strip()]
assert objs and all("dispatch_stolen" in o and "mig_allowed" in o for o in objs), objs
print(len(objs))' <<<"$mon") || { echo "$mon"; cat /tmp/json.err; fail "--stats-json printed no JSON lines"; }
ok "--monitor --stats-json prints $n JSON objects"

out=$("$BIN" run 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "second instance exited 0"
grep -q "already attached: $ops" <<<"$out" || fail "second instance did not name '$ops'"
[ "$(ext_ops)" = "$ops" ] && [ "$(ext_state)" = enabled ] || fail "second instance changed the attached scheduler"
ok "second instance refused, naming $ops, first untouched"

out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" run 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "non-root run exited 0"
grep -q "must run as root" <<<"$out" || fail "non-root error is unclear"
[ "$(ext_ops)" = "$ops" ] || fail "non-root run changed the attached scheduler"
ok "non-root run refused"

kill -INT "$first"; wait "$first"; rc=$?
[ "$rc" -eq 0 ] || { cat /tmp/first.log; fail "first instance exited $rc on SIGINT"; }
wait_disabled 10 || fail "state is $(ext_state) after SIGINT"
ok "SIGINT: exit 0, state disabled"

# A run that fails after its --record file is created (here: no model for
# --policy ml) changes nothing and still closes the file: header, no rows,
# and the trailer that says it is whole.
rm -f /tmp/failed.csv
out=$("$BIN" run --policy ml --model /nonexistent-model.json --record /tmp/failed.csv 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "run with a missing model exited 0"
grep -q "nonexistent-model.json" <<<"$out" || fail "the error does not name the missing model"
[ "$(ext_state)" = disabled ] || fail "a failed run left state $(ext_state)"
grep -q '^# rows: 0$' /tmp/failed.csv && grep -q '^# dropped: 0$' /tmp/failed.csv \
    || { cat /tmp/failed.csv; fail "the --record file of a failed run has no trailer"; }
ok "a run that fails to start closes its --record file (no rows, trailer)"
