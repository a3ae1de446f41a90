#!/bin/bash
# `collect` records the fair balancer's can_migrate_task() decisions: a few
# seconds under CPU and fork load must give rows with both labels, no
# dropped events, and a dataset that `train` accepts.  Then `run --record`
# under stress must write the scheduler's own decisions (its own points
# only: steals and placements; a CPU pair that differs except at enqueue,
# whose dst is the LLC's pool, taken as src; bounded by --record-max), and
# `skew` must compare the two.
. "$(dirname "$0")/lib.sh"
out=/tmp/collect-test.csv
stress-ng -c "$(($(nproc) * 2))" -f 2 -t 40 >/dev/null 2>&1 &
sleep 2
numa_before=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent)
"$BIN" collect -q -d 30 -w vm-test -o "$out" || fail "collect exited $?"
wait
grep -q '^# workload: vm-test' "$out" || fail "no workload in the header"
# NUMA balancing is off while collecting (it never runs under sched_ext),
# and back as it was after.
grep -qE '^# numa_balancing: (0|absent)$' "$out" || fail "numa_balancing: $(grep '^# numa_balancing' "$out")"
numa_after=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent)
[ "$numa_after" = "$numa_before" ] || fail "numa_balancing was $numa_before, is $numa_after after collect"
grep -q '^# delayed_left_out: [0-9]' "$out" || fail "no count of delayed-dequeue calls left out"
grep -q '^# dropped: 0' "$out" || fail "events were dropped: $(grep '^# dropped' "$out")"
[[ $(grep -v '^#' "$out" | head -1) == *,label,point,src_cpu,dst_cpu ]] || fail "no context columns in the header"
# Columns from the end: dst_cpu, src_cpu, point, label.
rows() { grep -v '^#' "$1" | tail -n +2; }
stay=$(rows "$out" | awk -F, '$(NF-3) == 0' | wc -l)
move=$(rows "$out" | awk -F, '$(NF-3) == 1' | wc -l)
echo "rows: $stay stay, $move migrate"
[ "$stay" -gt 0 ] && [ "$move" -gt 0 ] || fail "expected both labels"
bad=$(rows "$out" | awk -F, '{p=$(NF-2); if ((p != 0 && p != 1 && p != 4) || $(NF-1) == $NF) n++} END {print n+0}')
[ "$bad" -eq 0 ] || fail "$bad collected rows with a point other than the kernel's, or src == dst"
ok "collect: both labels, the kernel's decision points and CPU pairs"
# The task history (bpf/taskhist.bpf.h, from sched_switch) reaches the
# rows; the serving-only features stay 0 in the collector's.
hist=$(grep -v '^#' "$out" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { r += $c["run_avg_us"] > 0; b += $c["burst_avg_us"] > 0; m += $c["since_mig_us"] < 1000000
      s += $c["vtime_lead_us"] != 0 || $c["decision_point"] != 0 }
    END { printf "%d %d %d %d\n", r, b, m, s }')
set -- $hist
echo "collected rows with a history: run_avg_us $1, burst_avg_us $2, a migration within 1 s $3; serving-only features set: $4"
[ "$1" -gt 0 ] && [ "$2" -gt 0 ] && [ "$3" -gt 0 ] || fail "the collector's rows carry no task history: $hist"
[ "$4" -eq 0 ] || fail "$4 collected rows with a serving-only feature set"
ok "collect: the task history reaches the rows"
"$BIN" train "$out" --folds 0 -o /tmp/collect-test-model.json >/dev/null || fail "train refused the collected dataset"
ok "train accepts the collected dataset"
# With a sched_ext scheduler attached the fair balancer does not run: refuse.
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 30 || fail "scheduler did not attach"
msg=$("$BIN" collect -d 1 -o /tmp/never.csv 2>&1) && fail "collect ran while a sched_ext scheduler was attached"
grep -q "sched_ext scheduler is attached" <<<"$msg" || fail "unclear error: $msg"
[ ! -e /tmp/never.csv ] || fail "collect created a file anyway"
ok "collect refuses while sched_ext is attached"
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit status $?"

serving=/tmp/serving-test.csv
# The stress recipe of ml.sh: on one LLC, CPU hogs alone wait in the LLC's
# shared DSQ and never reach the gate; re-pinned tasks and hot wakeups in
# per-CPU DSQs do.
N=$(nproc)
stress-ng -t 40 --aggressive -M -c "$N" -f "$N" --affinity 1 --affinity-delay 1 --affinity-pin >/dev/null 2>&1 &
load=$!
"$BIN" run --record "$serving" --record-max 20000 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 30 || fail "scheduler did not attach with --record"
sleep 25
kill -TERM "$pid"; wait "$pid" || fail "scheduler exit status $? with --record"
wait "$load"
grep -q '^# workload: serving' "$serving" || fail "no serving workload in the header"
grep -q '^# policy: heuristic' "$serving" || fail "no policy in the header"
head_row=$(grep -v '^#' "$serving" | head -1)
[[ $head_row == *,label,point,src_cpu,dst_cpu,explored,* ]] || fail "serving header: $head_row"
# Columns by name: label, point, src_cpu, dst_cpu (the outcome columns follow).
col() { tr ',' '\n' <<<"$head_row" | grep -nx "$1" | cut -d: -f1; }
c_label=$(col label); c_point=$(col point); c_src=$(col src_cpu); c_dst=$(col dst_cpu)
rows=$(sed -n 's/^# rows: //p' "$serving")
echo "recorded: $rows rows, $(grep -E '^# (dropped|over_limit|malformed):' "$serving" | tr '\n' ' ')"
[ "${rows:-0}" -gt 0 ] && [ "$rows" -le 20000 ] || fail "rows: ${rows:-none} (want 1..20000)"
grep -q '^# over_limit: [0-9]' "$serving" || fail "no over_limit count"
grep -q '^# malformed: 0' "$serving" || fail "malformed records"
# Every record BPF queued was read: the last drain follows the detach.
grep -q '^# lost: 0$' "$serving" || fail "records queued by BPF but never read: $(grep '^# lost:' "$serving")"
# Points: 2, 3 steals, 5 wake idle, 6, 7 enqueue (src == dst: the pool), 8 preempt wakee.
bad=$(rows "$serving" | awk -F, -v cp="$c_point" -v cs="$c_src" -v cd="$c_dst" '{p=$cp; enq = (p == 6 || p == 7)
    if ((p != 2 && p != 3 && p != 5 && !enq && p != 8) || (!enq && $cs == $cd) || (enq && $cs != $cd)) n++}
    END {print n+0}')
[ "$bad" -eq 0 ] || fail "$bad rows at a point that is not the scheduler's, or with src == dst off enqueue"
moved=$(rows "$serving" | awk -F, -v cl="$c_label" '$cl == 1' | wc -l)
echo "recorded verdicts: $moved allowed, $((rows - moved)) refused"
ok "run --record writes the scheduler's decisions"
"$BIN" eval /tmp/collect-test-model.json "$serving" --show 0 >/tmp/eval.txt || fail "eval refused the serving dataset"
"$BIN" skew --train "$out" --serving "$serving" --model /tmp/collect-test-model.json >/tmp/skew.txt || fail "skew exited $?"
cat /tmp/skew.txt
grep -q "serving decision points: .*enq_" /tmp/skew.txt || fail "skew did not count decision points"
nf=$(grep -c '^FEATURE(' bpf/features.def)
[ "$(grep -c '^| ' /tmp/skew.txt)" -eq $((nf + 1)) ] || fail "skew: expected a header and $nf feature rows"
flagged=$(sed -n "s/^\([0-9]*\) of $nf features flagged.*/\1/p" /tmp/skew.txt)
"$BIN" skew --strict --train "$out" --serving "$serving" --model /tmp/collect-test-model.json >/dev/null 2>&1
rc=$?
{ [ "$flagged" -gt 0 ] && [ $rc -ne 0 ]; } || { [ "$flagged" -eq 0 ] && [ $rc -eq 0 ]; } ||
    fail "skew --strict exited $rc with $flagged features flagged"
ok "skew compares training and serving: $flagged features flagged"
# With the shipped training file beside it: 30 s of CPU hogs leave few
# rows at the scheduler's points (40 once, all "migrate": one class, which
# train refuses).  What is checked is that the filter reads this file.
"$BIN" train "$out" datasets/kcompile-fio.csv --scheduler-points --folds 0 -o /tmp/points-model.json >/tmp/points.txt 2>&1 ||
    fail "train --scheduler-points: $(tail -2 /tmp/points.txt)"
grep -q "collect-test.csv: [0-9]* rows for the tree; left out: [0-9]* decided by the hard guards, [0-9]* of decision points" /tmp/points.txt ||
    fail "train --scheduler-points did not say what it left out of the collected file"
ok "train --scheduler-points: $(grep -o 'collect-test.csv: [0-9]* rows for the tree; left out.*have' /tmp/points.txt)"
