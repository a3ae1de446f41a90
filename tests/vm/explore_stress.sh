#!/bin/bash
# stress.sh with exploration and outcome recording on (issue #25): `run
# --explore 0.1 --record`.  Passes if stress.sh passes so, and the log obeys
# the exploration's rules: decisions a guard makes never explored, the
# propensities 0.95 and 0.05, unexplored rows acting as the policy, some
# rows explored (selftest --check-explore); and its trailer counts the
# superseded and censored decisions.
. "$(dirname "$0")/lib.sh"
RUN_EXTRA="--explore 0.1 --record /tmp/rec.csv --record-max 50000" \
    bash "$(dirname "$0")/stress.sh" "$BIN" || fail "stress.sh failed with --explore 0.1"
check_explore_log 0.1
grep -qE 'explored [0-9]+ \([0-9]+ against the policy' /tmp/sched.log ||
    fail "the stats line never counted explored decisions"
ok "the stats line counts explored decisions"
