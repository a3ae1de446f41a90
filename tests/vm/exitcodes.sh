#!/bin/bash
# Exit codes: 0 on SIGINT and on SIGTERM; non-zero, with the kernel's exit
# reason, when the BPF side exits with an error (a hidden test hook,
# --debug-error-after-ms, calls scx_bpf_error()).
. "$(dirname "$0")/lib.sh"
for sig in INT TERM; do
    "$BIN" run >/tmp/sched.log 2>&1 &
    pid=$!
    wait_ops mlsched 20 || fail "never attached"
    kill -$sig "$pid"; wait "$pid"; rc=$?
    [ $rc -eq 0 ] || { cat /tmp/sched.log; fail "SIG$sig: exit $rc"; }
    wait_disabled 10 || fail "state $(ext_state) after SIG$sig"
    ok "SIG$sig: exit 0"
done
"$BIN" run --debug-error-after-ms 3000 >/tmp/sched.log 2>&1
rc=$?
cat /tmp/sched.log
[ $rc -ne 0 ] || fail "error exit returned 0"
grep -q 'EXIT: .*error exit requested by --debug-error-after-ms' /tmp/sched.log || fail "kernel's exit reason not printed"
wait_disabled 10 || fail "state $(ext_state) after error exit"
ok "error exit: status $rc with the kernel's reason"
