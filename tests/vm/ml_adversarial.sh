#!/bin/bash
# Bad models cannot hurt: under the stress recipe, with a model that always
# migrates, one that never does, and the deepest tree the loader accepts,
# `--policy ml` exits 0 on SIGTERM, stress-ng succeeds and affinity holds
# (the hard guards come before the tree).  A model of another schema is
# refused before anything is loaded.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 4 ] || fail "needs 4 CPUs"
for kind in always never deepest; do
    mk_model "$kind" "/tmp/$kind.json"
    stress-ng -t 20 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/tmp/stress.log 2>&1 &
    spid=$!
    timeout --preserve-status 30 "$BIN" run --policy ml --model "/tmp/$kind.json" --stats 5 >/tmp/sched.log 2>&1 &
    pid=$!
    wait_ops mlsched 60 || fail "$kind: scheduler never attached"
    affinity_check 150 || fail "$kind: $? samples outside the allowed CPUs"
    wait "$pid"; rc=$?
    wait "$spid"; src=$?
    grep -E 'decisions/s' /tmp/sched.log | tail -1
    [ "$rc" -eq 0 ] || fail "$kind: scheduler exited $rc"
    [ "$src" -eq 0 ] || fail "$kind: stress-ng exited $src"
    grep -qE 'twin -> checked: [0-9]+ agree: (100.00%|-) disagree: 0' /tmp/sched.log || fail "$kind: the twin disagreed"
    wait_disabled 10 || fail "$kind: state is $(ext_state) after exit"
    ok "model '$kind': exit 0, stress-ng done, affinity held, twin agreed"
done
mk_model badschema /tmp/badschema.json
out=$("$BIN" run --policy ml --model /tmp/badschema.json 2>&1) && fail "a model of another schema was accepted"
grep -q 'schema' <<<"$out" || fail "unclear refusal: $out"
[ "$(ext_state)" = disabled ] || fail "state is $(ext_state) after the refusal"
ok "a model of another schema is refused before load: $out"
# Shadow: the heuristic acts, the (never-migrating) tree only walks beside
# it: the model decides nothing, and the stats show the disagreement.
stress-ng -t 15 -c "$N" -f "$N" >/dev/null 2>&1 &
spid=$!
timeout --preserve-status 25 "$BIN" run --policy shadow --model /tmp/never.json --stats 5 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "shadow: scheduler never attached"
wait "$pid" || fail "shadow: scheduler exited $?"
wait "$spid"
grep -E 'decisions/s' /tmp/sched.log | tail -1
walks=$(grep -oE 'stay: [0-9]+ agree_heuristic' /tmp/sched.log | awk '{s += $2} END {print s + 0}')
[ "$walks" -gt 0 ] || fail "shadow: the tree never walked"
! grep -qE 'ml_allow: [1-9]|ml_deny: [1-9]' /tmp/sched.log || fail "shadow: the model decided"
ok "shadow: $walks tree walks beside the heuristic, no model verdict acted on"
