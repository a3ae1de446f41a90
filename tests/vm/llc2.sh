#!/bin/bash
# A guest of 2 sockets (vm/testbed.sh -s 2), each with its own L3: the
# machine where a move between LLCs is a real choice.  The guest's lscpu
# shows 2 sockets and 2 L3 instances, the scheduler's topology line says
# 2 LLCs, and under CPU hogs and sleepers the scheduler runs, moves tasks
# (the `moved ->` counts add up) and exits 0, the state back to disabled.
# The same_llc feature (bpf/features.def) says, in the scheduler's recorded
# decisions and in the collector's rows, whether src and dst share an L3
# by the kernel's sharing lists (and 1 at every enqueue: dst is the pool).
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
"$BIN" run --stats 5 --stats-verbose --record /tmp/llc2.csv --record-every 1 >/tmp/sched.log 2>&1 &
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

# check_same_llc FILE WHAT: every row's same_llc against the L3 lists.
check_same_llc() {
    local res
    res=$(grep -v '^#' "$1" | awk -F, -v lists="$(echo $llcs)" '
        BEGIN {
            n = split(lists, l, " ")
            for (i = 1; i <= n; i++) {
                m = split(l[i], parts, ",")
                for (j = 1; j <= m; j++) {
                    split(parts[j], r, "-"); if (r[2] == "") r[2] = r[1]
                    for (c = r[1]; c <= r[2]; c++) llc[c] = i
                }
            }
        }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            p = $col["point"]
            want = (p == 6 || p == 7) ? 1 : (llc[$col["src_cpu"]] == llc[$col["dst_cpu"]])
            cross += !want
            if ($col["same_llc"] == want) good++
            else if (bad++ < 3) print "same_llc wrong at row " NR - 1 ": " $0 > "/dev/stderr"
            total++
        }
        END { printf "%d %d %d\n", good, total, cross }')
    set -- "$1" "$2" $res
    echo "$2: same_llc right on $3 of $4 rows ($5 across the two LLCs)"
    [ "$4" -gt 0 ] || fail "$2: no rows"
    [ "$5" -gt 0 ] || fail "$2: no row across the two LLCs (same_llc 0 never tested)"
    [ "$3" = "$4" ] || fail "$2: same_llc wrong on $(($4 - $3)) of $4 rows"
}
check_same_llc /tmp/llc2.csv "run --record"
# CPU hogs beside forks (collect.sh's load): the fair balancer moves
# tasks often enough to give rows within and across the LLCs.
stress-ng -t 24 -c "$((N * 2))" -f 2 >/tmp/stress.log 2>&1 &
sleep 2
"$BIN" collect -q -d 20 -w llc2 -o /tmp/llc2-collect.csv || fail "collect exited $?"
wait
check_same_llc /tmp/llc2-collect.csv collect
ok "same_llc follows the L3s, in the scheduler and in the collector"
