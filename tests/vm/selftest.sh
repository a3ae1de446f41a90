#!/bin/bash
# The BPF can_migrate_decide() and balance_failed_next(), run through their
# SEC("syscall") programs with test_run, must agree with their Rust twins
# (src/sched/heuristic.rs).
. "$(dirname "$0")/lib.sh"
"$BIN" selftest --random 5000 >/tmp/selftest.log 2>&1 || { cat /tmp/selftest.log; fail "selftest"; }
cat /tmp/selftest.log
[ "$(ext_state)" = disabled ] || fail "selftest left sched_ext $(ext_state)"
ok "selftest"
# The verifier's figures of the callbacks on the migration path (dispatch's
# subprograms, the global steal_from among them, are in its stack line).
for prog in mlsched_select_cpu mlsched_enqueue mlsched_dispatch mlsched_running; do
    grep -qE "^verifier: $prog +[1-9][0-9]* insns  stack [0-9+]+ " /tmp/selftest.log ||
        fail "selftest gave no verifier figures for $prog"
done
ok "verifier figures for every program on the migration path"
# The tree: the BPF walk (bpf/tree.bpf.c, the code the scheduler runs)
# agrees with linfa's prediction on every row of every shipped dataset.
"$BIN" selftest --replay datasets/*.csv || fail "replay"
ok "replay: BPF walk = linfa on every shipped row"
