# Helpers shared by the guest-side VM tests (sourced, not run).
# Each test gets the scx_mlsched binary as $1 and exits non-zero on failure.

BIN=${1:?usage: $0 PATH_TO_scx_mlsched}
# On failure, show the tail of the scheduler's log (tests write it to /tmp/sched.log).
fail() {
    echo "FAIL: $*"
    [ -s /tmp/sched.log ] && { echo "--- tail of /tmp/sched.log"; tail -25 /tmp/sched.log; }
    exit 1
}
ok() { echo "ok: $*"; }
ext_state() { cat /sys/kernel/sched_ext/state; }
ext_ops() { cat /sys/kernel/sched_ext/root/ops 2>/dev/null; }

# wait_ops PREFIX SECS: wait until the attached scheduler's ops name starts with PREFIX
wait_ops() {
    local i
    for i in $(seq 1 "$2"); do
        [[ $(ext_ops) == "$1"* ]] && return 0
        sleep 1
    done
    return 1
}

# wait_disabled SECS
wait_disabled() {
    local i
    for i in $(seq 1 "$1"); do
        [ "$(ext_state)" = disabled ] && return 0
        sleep 1
    done
    return 1
}
