#!/bin/bash
# The task history features (bpf/taskhist.bpf.h; issue #23, item 3) mean
# the same in the collector (kept from sched_switch) and in the scheduler
# (kept from ops.running/ops.stopping).  Two groups of workers with known
# habits, told apart by their weight (nice -5 and nice 5) as in numa.sh:
#   long:  runs 6 ms of CPU time, then sleeps 6 ms;
#   short: runs 0.3 ms of CPU time, then sleeps 3 ms;
# beside CPU load with idle gaps.  On both sides, in the rows about them,
# burst_avg_us (run from waking to blocking) must tell them apart (the long
# ones' median at least 3 times the short ones', and above 3 ms), and every
# row's history must be in range.
. "$(dirname "$0")/lib.sh"

cat >/tmp/history-worker.py <<'PY'
import sys, time
burst, sleep, secs = float(sys.argv[1]) / 1000, float(sys.argv[2]) / 1000, float(sys.argv[3])
end = time.time() + secs
while time.time() < end:
    t = time.thread_time()        # CPU time: preemption does not shorten the burst
    while time.thread_time() - t < burst:
        pass
    time.sleep(sleep)
PY
start_workload() { # SECONDS
    pids=()
    for i in 1 2; do
        nice -n -5 python3 /tmp/history-worker.py 6 6 "$1" &
        pids+=($!)
        nice -n 5 python3 /tmp/history-worker.py 0.3 3 "$1" &
        pids+=($!)
    done
    stress-ng --cpu "$(nproc)" --cpu-load 60 -t "$1" >/dev/null 2>&1 &
    pids+=($!)
    sleep 2
}

# check FILE WHAT
check() {
    local res
    res=$(grep -v '^#' "$1" | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            s = $col["since_mig_us"]
            if (s < 0 || s > 1000000 || $col["mig_rate"] < 0 || $col["run_avg_us"] < 0 || $col["burst_avg_us"] < 0) {
                if (bad++ < 3) print "history out of range at row " NR - 1 ": " $0 > "/dev/stderr"
            }
            w = $col["weight"]
            if (w > 2000 && w < 5000) long[nl++] = $col["burst_avg_us"]
            else if (w >= 300 && w <= 400) short[ns++] = $col["burst_avg_us"]
        }
        function median(a, n,   i, j, t) {
            for (i = 1; i < n; i++) for (j = i; j > 0 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n ? a[int(n / 2)] : -1
        }
        END { printf "%d %d %d %d %d\n", nl, median(long, nl), ns, median(short, ns), bad + 0 }')
    set -- "$1" "$2" $res
    echo "$2: long workers: $3 rows, median burst_avg_us $4; short workers: $5 rows, median $6; $7 rows out of range"
    [ "$7" = 0 ] || fail "$2: $7 rows with a history out of range"
    [ "$3" -ge 10 ] && [ "$5" -ge 10 ] || fail "$2: too few rows about the workers ($3 long, $5 short)"
    [ "$4" -ge 3000 ] || fail "$2: the long workers' median burst is $4 us, not above 3 ms"
    [ "$4" -ge $(($6 * 3)) ] || fail "$2: the long workers' median burst ($4 us) is not 3 times the short ones' ($6 us)"
}

start_workload 25
"$BIN" collect -q -d 20 -w history-test -o /tmp/history-collect.csv || fail "collect exited $?"
wait_workers
check /tmp/history-collect.csv collect
ok "collect: burst_avg_us tells the workers apart"

start_workload 35
"$BIN" run --record /tmp/history-serving.csv --record-every 1 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 30 || fail "scheduler did not attach"
sleep 25
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit status $?"
wait_workers
check /tmp/history-serving.csv "run --record"
ok "run --record: burst_avg_us tells the workers apart"
