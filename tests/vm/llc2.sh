#!/bin/bash
# A guest of 2 sockets (vm/testbed.sh -s 2), each with its own L3: the
# machine where a move between LLCs is a real choice.  The guest's lscpu
# shows 2 sockets and 2 L3 instances, the scheduler's topology line says
# 2 LLCs, and under CPU hogs and sleepers the scheduler runs, moves tasks
# (the `moved ->` counts add up) and exits 0, the state back to disabled.
# vm-sockets: 2
. "$(dirname "$0")/lib.sh"
N=$(nproc)
lscpu | grep -E '^(CPU\(s\)|Socket\(s\)|Core\(s\) per socket|NUMA node\(s\)|L3 cache)'
sockets=$(lscpu | sed -n 's/^Socket(s): *\([0-9]*\)/\1/p')
[ "$sockets" = 2 ] || fail "the guest has $sockets sockets, not 2"
# The LLCs as the kernel shares them.  (lscpu counts "4 instances" of L3:
# under TCG, QEMU's CPUID gives each CPU its own cache id, but the sharing
# lists, which the kernel's and scx_utils' topology read, are per socket.)
llcs=$(cat /sys/devices/system/cpu/cpu*/cache/index3/shared_cpu_list | sort -u)
echo "L3 shared_cpu_list: $(echo $llcs)"
[ "$(wc -l <<<"$llcs")" = 2 ] || fail "the guest's CPUs share $(wc -l <<<"$llcs") L3s, not 2: $llcs"
ok "2 sockets, 2 L3s"
"$BIN" run --stats 5 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
stress-ng -t 15 -c "$N" --sleep "$N" --sleep-max 4 >/tmp/stress.log 2>&1 || fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
sleep 6
kill -INT "$pid"; wait "$pid" || fail "scheduler exited $?"
topo=$(grep -m1 -E '[0-9]+ CPUs, [0-9]+ LLCs' /tmp/sched.log)
echo "$topo"
grep -q " $N CPUs, 2 LLCs, " <<<"$topo" || fail "the scheduler did not see 2 LLCs: $topo"
ok "the scheduler sees 2 LLCs"
grep 'moved ->' /tmp/sched.log | tail -2
all=$(grep -oE 'moved -> [0-9]+' /tmp/sched.log | awk '{s += $NF} END {print s + 0}')
[ "$all" -gt 0 ] || fail "no migration counted on 2 LLCs"
ok "moved $all tasks"
wait_disabled 10 || fail "state is $(ext_state) after exit"
