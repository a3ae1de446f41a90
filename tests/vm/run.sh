#!/bin/bash
# Host side of the VM tests: boots the test bed once per test, runs the
# guest script with the scx_mlsched binary, and fails on a non-zero status
# or on `stall`, `BUG:` or `WARNING:` in the guest's kernel log.
#
#   tests/vm/run.sh BIN [TEST...]     (default: every tests/vm/*.sh but lib.sh, run.sh and
#                                     those listed in tests/vm/KNOWN_FAILING)
# Env: VM_CPUS (default 4).  A test that needs NUMA says so in a line
# `# vm-nodes: N` (the guest then has N nodes, CPUs and memory split evenly);
# one that needs several LLCs says `# vm-sockets: N` (N sockets, an L3 each).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${1:?usage: tests/vm/run.sh PATH_TO_scx_mlsched [TEST...]}; shift
cache=${SCX_MLSCHED_CACHE:-/var/cache/scx_mlsched}
cpus=${VM_CPUS:-4}

# The guest sees /var/tmp and the project, not /var/cache (a guest tmpfs).
stage=/var/tmp/scx_mlsched-test
mkdir -p "$stage"
cp "$bin" "$stage/scx_mlsched"

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    for t in "$here"/*.sh; do
        name=$(basename "$t" .sh)
        case $name in lib | run) continue ;; esac
        if grep -qx "$name" "$here/KNOWN_FAILING" 2>/dev/null; then
            echo "skip: $name (listed in tests/vm/KNOWN_FAILING)"; continue
        fi
        tests+=("$name")
    done
fi

failed=()
# On a host kernel without sched_ext (CI, most laptops), `run` must say so
# clearly and change nothing.
if [ ! -d /sys/kernel/sched_ext ]; then
    out=$("$stage/scx_mlsched" run 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -q 'no sched_ext: /sys/kernel/sched_ext is missing' <<<"$out"; then
        echo "ok: host kernel without sched_ext: $out"
    else
        echo "FAIL: host kernel without sched_ext: rc=$rc: $out"; failed+=(host-no-sched-ext)
    fi
fi

for t in "${tests[@]}"; do
    echo "=== vm test: $t ($cpus vCPUs)"
    start=$(date +%s)
    log=$cache/last-guest.log
    nodes=$(sed -n 's/^# vm-nodes: \([0-9]*\)$/\1/p' "$here/$t.sh")
    sockets=$(sed -n 's/^# vm-sockets: \([0-9]*\)$/\1/p' "$here/$t.sh")
    for attempt in 1 2; do
        (cd "$top" && bash vm/testbed.sh run -c "$cpus" -n "${nodes:-1}" -s "${sockets:-1}" -- "tests/vm/$t.sh $stage/scx_mlsched")
        rc=$?
        # Under TCG, the kernel's live code patching (static keys flipped
        # when sched_ext enables) sometimes traps on its own int3 in
        # __schedule: an emulator artifact seen on these machines, not a
        # scheduler bug.  Such a guest is retried once, and said so.
        if [ $rc -ne 0 ] && grep -aq 'Oops: int3' "$log" && [ $attempt -eq 1 ]; then
            cp "$log" "$stage/$t.int3-oops.kernel.log"
            echo "RETRY: $t: guest kernel oopsed on an int3 (TCG code-patching artifact; log: $stage/$t.int3-oops.kernel.log)"
            continue
        fi
        break
    done
    cp "$log" "$stage/$t.kernel.log" 2>/dev/null
    # With NUMA nodes, QEMU's default topology (one socket whose CPUs share
    # an LLC) spans the nodes, and the kernel warns once at boot that an LLC
    # sibling is on another node (topology_sane()): the test bed's, not ours.
    ignore='softlockup_panic\|hung_task'
    [ "${nodes:-1}" -gt 1 ] && ignore="$ignore\\|topology_sane"
    bad=$(grep -aE 'stall|BUG:|WARNING:' "$log" | grep -av "$ignore" | head -5)
    if [ $rc -ne 0 ]; then
        echo "FAIL: $t: guest exited $rc (kernel log: $stage/$t.kernel.log)"; failed+=("$t")
    elif [ -n "$bad" ]; then
        echo "FAIL: $t: kernel log has:"; echo "$bad"; failed+=("$t")
    else
        echo "PASS: $t ($(($(date +%s) - start)) s)"
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "VM tests failed: ${failed[*]}"; exit 1
fi
echo "VM tests passed"
