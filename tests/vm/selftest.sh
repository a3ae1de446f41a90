#!/bin/bash
# The BPF can_migrate_decide() and balance_failed_next(), run through their
# SEC("syscall") programs with test_run, must agree with their Rust twins
# (src/sched/heuristic.rs).
. "$(dirname "$0")/lib.sh"
"$BIN" selftest --random 5000 || fail "selftest"
[ "$(ext_state)" = disabled ] || fail "selftest left sched_ext $(ext_state)"
ok "selftest"
# The tree: the BPF walk (bpf/tree.bpf.c, the code the scheduler runs)
# agrees with linfa's prediction on every row of every shipped dataset.
"$BIN" selftest --replay datasets/*.csv || fail "replay"
ok "replay: BPF walk = linfa on every shipped row"
