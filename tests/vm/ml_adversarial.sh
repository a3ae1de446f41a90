#!/bin/bash
# Bad models cannot hurt: with a model that always migrates, one that never
# does, and the deepest tree the loader accepts, `--policy ml` under the
# stress recipe exits 0 on SIGTERM, stress-ng succeeds, affinity holds (the
# hard guards come before the tree), the tree's verdicts are the ones acted
# on, and linfa agrees with every sampled decision.  A model of another
# schema is refused before anything is loaded.  Shadow acts on the
# heuristic only.  The models decide at the steals (a model file without
# `points`), and "always" and "never" once more at every decision point
# (issue #23: then a "never" model keeps every task on its CPU at wakeup
# and enqueue, and refuses every preempting wakee and idle CPU).  Workloads start once the scheduler is attached, and the
# test stops it itself, so a slow load under emulation shortens nothing.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 4 ] || fail "needs 4 CPUs"

# twin_ok KIND: the final twin line checked samples and disagreed on none,
# and no stats interval showed a disagreement.
twin_ok() {
    local line
    ! grep -qE 'disagree: [1-9]' /tmp/sched.log || fail "$1: the twin disagreed"
    line=$(grep 'twin: linfa checked' /tmp/sched.log) || fail "$1: the twin reported nothing"
    [[ $line =~ checked\ ([0-9]+).*disagreed\ on\ 0\;.*heuristic\ disagreed\ with\ BPF.s\ on\ 0$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] ||
        fail "$1: twin: $line"
}

for kind in always never deepest always-all never-all; do
    case $kind in
    *-all)
        mk_model "${kind%-all}" "/tmp/$kind.json"
        python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["points"] = ["steal_cpu_dsq", "steal_llc_dsq", "wake_idle", "enq_wakeup", "enq_requeue", "preempt_wakee"]; json.dump(m, open(sys.argv[1], "w"))' "/tmp/$kind.json" ||
            fail "$kind: model"
        ;;
    *) mk_model "$kind" "/tmp/$kind.json" ;;
    esac
    "$BIN" run --policy ml --model "/tmp/$kind.json" --stats 5 --stats-verbose --sample-every 4 >/tmp/sched.log 2>&1 &
    pid=$!
    wait_ops mlsched 60 || fail "$kind: scheduler never attached"
    stress-ng -t 20 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/tmp/stress.log 2>&1 &
    spid=$!
    affinity_check 150 || fail "$kind: $? samples outside the allowed CPUs"
    wait "$spid"; src=$?
    sleep 5    # one more stats interval
    kill -TERM "$pid"; wait "$pid"; rc=$?
    grep -E 'decisions/s' /tmp/sched.log | tail -1
    [ "$rc" -eq 0 ] || fail "$kind: scheduler exited $rc"
    [ "$src" -eq 0 ] || fail "$kind: stress-ng exited $src"
    allow=$(grep -oE 'ml_allow: [0-9]+' /tmp/sched.log | awk '{s += $2} END {print s + 0}')
    deny=$(grep -oE 'ml_deny: [0-9]+' /tmp/sched.log | awk '{s += $2} END {print s + 0}')
    case $kind in
    always | deepest | always-all) [ "$allow" -gt 0 ] && [ "$deny" -eq 0 ] || fail "$kind: model verdicts allow $allow, deny $deny" ;;
    never | never-all) [ "$deny" -gt 0 ] && [ "$allow" -eq 0 ] || fail "$kind: model verdicts allow $allow, deny $deny" ;;
    esac
    twin_ok "$kind"
    # Per point: a model that declares every point decides at enqueue too
    # (pinned tasks do not ask there, so no guard refuses: its verdict is
    # every decision's); "never" keeps every placement refused.
    enq=$(grep -oE 'enq (wakeup|requeue): [0-9]+/[0-9]+' /tmp/sched.log | awk -F'[ /]' '{a += $3; d += $4} END {print a + 0, d + 0}')
    case $kind in
    always-all) [ "${enq% *}" = "${enq#* }" ] && [ "${enq#* }" -gt 0 ] || fail "$kind: enqueue allowed/asked $enq" ;;
    never-all)
        [ "${enq% *}" -eq 0 ] && [ "${enq#* }" -gt 0 ] || fail "$kind: enqueue allowed/asked $enq"
        # (the gate lines only: the `moved ->` lines name the same paths)
        ! grep 'gate allowed/asked' /tmp/sched.log | grep -qE '(wake idle|preempt wakee): [1-9]' ||
            fail "$kind: a placement was allowed"
        ;;
    esac
    wait_disabled 10 || fail "$kind: state is $(ext_state) after exit"
    ok "model '$kind': exit 0, stress-ng done, affinity held, $allow allowed / $deny refused by the model, twin agreed"
done

mk_model badschema /tmp/badschema.json
out=$("$BIN" run --policy ml --model /tmp/badschema.json 2>&1) && fail "a model of another schema was accepted"
grep -q 'schema' <<<"$out" || fail "unclear refusal: $out"
[ "$(ext_state)" = disabled ] || fail "state is $(ext_state) after the refusal"
ok "a model of another schema is refused before load: $out"

# Shadow: the heuristic acts, the (never-migrating) tree only walks beside
# it: the model decides nothing, and the stats show the disagreement.
"$BIN" run --policy shadow --model /tmp/never.json --stats 5 --stats-verbose >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "shadow: scheduler never attached"
# The stress recipe above: the tree walks beside the heuristic at every
# enqueue of a task that may move (and at steals, which the affinity
# stressor's re-pinning makes possible).
stress-ng -t 20 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/dev/null 2>&1
sleep 5
kill -TERM "$pid"; wait "$pid" || fail "shadow: scheduler exited $?"
grep -E 'decisions/s' /tmp/sched.log | tail -1
walks=$(grep -oE 'stay: [0-9]+ agree_heuristic' /tmp/sched.log | awk '{s += $2} END {print s + 0}')
[ "$walks" -gt 0 ] || fail "shadow: the tree never walked"
! grep -qE 'ml_allow: [1-9]|ml_deny: [1-9]' /tmp/sched.log || fail "shadow: the model decided"
ok "shadow: $walks tree walks beside the heuristic, no model verdict acted on"
