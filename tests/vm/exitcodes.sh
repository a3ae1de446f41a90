#!/bin/bash
# Exit codes: 0 on SIGINT and on SIGTERM; 86 (EXIT_EJECTED, which the
# systemd unit's RestartPreventExitStatus names), with the kernel's exit
# reason, when the BPF side exits with an error (a hidden test hook,
# --debug-error-after-ms, calls scx_bpf_error()), whether started as
# `run` or bare, as scx.service starts it.
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
for how in run bare; do
    if [ $how = run ]; then
        "$BIN" run --debug-error-after-ms 3000 >/tmp/sched.log 2>&1
    else
        "$BIN" --debug-error-after-ms 3000 >/tmp/sched.log 2>&1
    fi
    rc=$?
    cat /tmp/sched.log
    [ $rc -eq 86 ] || fail "$how: error exit returned $rc, not 86"
    grep -q 'ejected the scheduler: EXIT: .*error exit requested by --debug-error-after-ms' /tmp/sched.log ||
        fail "$how: kernel's exit reason not printed"
    wait_disabled 10 || fail "state $(ext_state) after error exit"
    ok "$how: error exit: status 86 with the kernel's reason"
done
