#!/bin/bash
# The BPF can_migrate_decide(), run through its SEC("syscall") program with
# test_run, must agree with its Rust twin (src/heuristic.rs).
. "$(dirname "$0")/lib.sh"
"$BIN" selftest --random 5000 || fail "selftest"
[ "$(ext_state)" = disabled ] || fail "selftest left sched_ext $(ext_state)"
ok "selftest"
