#!/bin/bash
# The demo of `scripts/run` (its VM path): stress-ng CPU and fork load while
# `scx_mlsched run --stats 2 --policy shadow` runs for 25 s.  What a
# newcomer reads there must show the scheduler at work: some interval
# whose readable stats line has tasks moved (more than 0), decisions made
# (more than 0), and the tree's agreement with the heuristic (the learned
# part, walked beside it); a start-up line naming the policy and the model
# with its generation; no stats-server retry notice; exit 0.
. "$(dirname "$0")/lib.sh"
stress-ng -t 30 -c 4 -f 2 >/dev/null 2>&1 &
spid=$!
timeout --preserve-status 25 "$BIN" run --stats 2 --policy shadow >/tmp/sched.log 2>&1
rc=$?
wait "$spid"
cat /tmp/sched.log
[ "$rc" -eq 0 ] || fail "the demo's scheduler exited $rc"
grep -q 'attached: policy shadow: the heuristic decides, model the embedded model (generation 1, declares ' /tmp/sched.log ||
    fail "the start-up line does not name the policy and the model with its generation"
! grep -q 'Stats server not available' /tmp/sched.log || fail "the stats server's retry notice was logged"
line=$(grep -E '\] [0-9.]+ s: moved [1-9][0-9]* tasks .*\| decided [1-9][0-9]*: heuristic [0-9]+ .*tree agrees with the heuristic [0-9.]+%( \([^)]*\))? \|' /tmp/sched.log | tail -1)
[ -n "$line" ] || fail "no stats line with tasks moved, decisions made and the tree's agreement"
ok "the demo's stats show moves, decisions and the tree's agreement: ${line#*\] }"
