# Helpers shared by the guest-side VM tests (sourced, not run).
# Each test gets the scx_mlsched binary as $1 and exits non-zero on failure.

BIN=${1:?usage: $0 PATH_TO_scx_mlsched}
# Options stress.sh, affinity.sh and sustained.sh add to `run` (their
# explore_* variants set them).
RUN_EXTRA=${RUN_EXTRA:-}
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

# mk_model KIND OUT: a model file derived from the shipped one, without
# linfa's tree (the twin builds it from the nodes):
#   always | never: one leaf that says migrate | stay
#   deepest: a chain of the maximum depth (16) that every vector walks
#   badschema: the shipped tree with a schema hash of another build
mk_model() {
    python3 - "$1" "$2" <<'PY' || fail "mk_model $1"
import json, sys
kind, out = sys.argv[1], sys.argv[2]
m = json.load(open("model/default.json"))
m.pop("linfa", None)
leaf = lambda v: {"feature": -1, "threshold": 0, "left": 0, "right": 0, "verdict": v}
if kind in ("always", "never"):
    m["nodes"], m["depth"] = [leaf(1 if kind == "always" else 0)], 0
elif kind == "deepest":
    nodes = []
    for i in range(16):
        b = len(nodes)
        nodes += [{"feature": i % len(m["features"]), "threshold": 2**63 - 1, "left": b + 2, "right": b + 1, "verdict": 0}, leaf(0)]
    m["nodes"], m["depth"] = nodes + [leaf(1)], 16
elif kind == "badschema":
    m["schema_hash"] = "00000000deadbeef"
else:
    sys.exit("unknown kind " + kind)
json.dump(m, open(out, "w"))
PY
}

# affinity_check SAMPLES: three CPU hogs, one pinned to CPU 1, one to CPUs
# 2-3, one free and re-pinned to CPU 0 half-way (sched_setaffinity while
# running); the CPU each last ran on (field 39 of /proc/PID/stat) is
# sampled every 20 ms.  Prints each violation; returns their number.
affinity_check() {
    local n=$1 a b c i bad=0 ca cb cc half=$(($1 / 2))
    taskset -c 1 bash -c 'while :; do :; done' & a=$!
    taskset -c 2,3 bash -c 'while :; do :; done' & b=$!
    bash -c 'while :; do :; done' & c=$!
    sleep 1
    # no fork per sample (comm is "bash": no spaces in the fields)
    last_cpu() { local s; read -ra s </proc/$2/stat; printf -v "$1" %s "${s[38]}"; }
    for i in $(seq 1 "$n"); do
        [ "$i" -eq "$half" ] && taskset -p -c 0 "$c" >/dev/null
        last_cpu ca $a; last_cpu cb $b; last_cpu cc $c
        [ "$ca" = 1 ] || { echo "pinned-to-1 task ran on $ca"; bad=$((bad + 1)); }
        [ "$cb" = 2 ] || [ "$cb" = 3 ] || { echo "pinned-to-2,3 task ran on $cb"; bad=$((bad + 1)); }
        if [ "$i" -gt $((half + 2)) ]; then [ "$cc" = 0 ] || { echo "re-pinned task ran on $cc"; bad=$((bad + 1)); }; fi
        sleep 0.02
    done
    kill $a $b $c; wait $a $b $c 2>/dev/null
    return $((bad > 255 ? 255 : bad))
}

# wait_workers: wait for every pid of the array `pids`; fail on any
# non-zero status (a bare `wait` reports only the last one's).
wait_workers() {
    local p
    for p in "${pids[@]}"; do
        wait "$p" || fail "a worker (pid $p) failed"
    done
}

# check_explore_log EPS: /tmp/rec.csv, written by `run --explore EPS --record
# /tmp/rec.csv`, obeys the exploration's rules (selftest --check-explore),
# and its trailer counts superseded and censored decisions.
check_explore_log() {
    "$BIN" selftest --check-explore /tmp/rec.csv --explore "$1" >/tmp/check.log 2>&1 ||
        { cat /tmp/check.log; fail "the exploration log breaks its rules"; }
    grep -q '^# superseded: [0-9]' /tmp/rec.csv && grep -q '^# censored: [0-9]' /tmp/rec.csv ||
        fail "the log's trailer does not count superseded and censored decisions"
    ok "$(cat /tmp/check.log)"
}
