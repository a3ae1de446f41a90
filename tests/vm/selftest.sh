#!/bin/bash
# The BPF can_migrate_decide() and balance_failed_next(), run through their
# SEC("syscall") programs with test_run, must agree with their Rust twins
# (src/sched/heuristic.rs).
. "$(dirname "$0")/lib.sh"
"$BIN" selftest --random 5000 --verifier-stats >/tmp/selftest.log 2>&1 || { cat /tmp/selftest.log; fail "selftest"; }
cat /tmp/selftest.log
[ "$(ext_state)" = disabled ] || fail "selftest left sched_ext $(ext_state)"
ok "selftest"
# The same with --requeue-local, whose rule at enq_requeue differs.
"$BIN" selftest --random 2000 --requeue-local >/tmp/selftest-rl.log 2>&1 ||
    { cat /tmp/selftest-rl.log; fail "selftest --requeue-local"; }
ok "selftest --requeue-local"
# What the verifier said: every struct_ops program the scheduler runs on
# each decision path was verified, with its instruction count and stack.
# The policy is a constant to the verifier, which skips what it cannot
# reach: the heuristic's programs (the fast fill) and shadow's (the whole
# fill, the tree walk, the twin's samples) are verified apart.
"$BIN" selftest --random 0 --policy shadow --verifier-stats >/tmp/selftest-shadow.log 2>&1 ||
    { cat /tmp/selftest-shadow.log; fail "selftest --policy shadow"; }
grep '^verifier:' /tmp/selftest-shadow.log | sed 's/^verifier:/verifier (shadow):/'
for log in /tmp/selftest.log /tmp/selftest-shadow.log; do
    for prog in mlsched_select_cpu mlsched_enqueue mlsched_dispatch mlsched_running mlsched_stopping; do
        grep -q "^verifier: $prog: [1-9][0-9]* instructions processed, stack [0-9]" $log ||
            fail "no verifier statistics for $prog in $log"
    done
done
ok "verifier statistics of every struct_ops program, heuristic and shadow"
# The tree: the BPF walk (bpf/tree.bpf.c, the code the scheduler runs)
# agrees with linfa's prediction on every row of every shipped dataset.
"$BIN" selftest --replay datasets/*.csv || fail "replay"
ok "replay: BPF walk = linfa on every shipped row"
