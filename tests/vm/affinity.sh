#!/bin/bash
# Affinity: tasks pinned with taskset, or re-pinned with sched_setaffinity
# (taskset -p) while running, never run outside their allowed CPUs.  The
# CPU a task last ran on is field 39 of /proc/PID/stat; we sample it often.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
[ "$N" -ge 4 ] || fail "needs 4 CPUs"
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
stress-ng -c "$N" -t 40 >/dev/null 2>&1 &    # competition, so that stealing happens
spin() { while :; do :; done; }
taskset -c 1 bash -c 'while :; do :; done' & a=$!
taskset -c 2,3 bash -c 'while :; do :; done' & b=$!
bash -c 'while :; do :; done' & c=$!
sleep 1
bad=0 samples=0
for i in $(seq 1 300); do
    [ $i -eq 150 ] && taskset -p -c 0 "$c" >/dev/null      # sched_setaffinity mid-run
    ca=$(awk '{print $39}' /proc/$a/stat); cb=$(awk '{print $39}' /proc/$b/stat); cc=$(awk '{print $39}' /proc/$c/stat)
    [ "$ca" = 1 ] || { echo "pinned-to-1 task ran on $ca"; bad=$((bad + 1)); }
    [ "$cb" = 2 ] || [ "$cb" = 3 ] || { echo "pinned-to-2,3 task ran on $cb"; bad=$((bad + 1)); }
    if [ $i -gt 152 ]; then [ "$cc" = 0 ] || { echo "re-pinned task ran on $cc"; bad=$((bad + 1)); }; fi
    samples=$((samples + 1))
    sleep 0.05
done
kill $a $b $c; wait $a $b $c 2>/dev/null
[ $bad -eq 0 ] || fail "$bad samples outside the allowed CPUs"
ok "$samples samples of 3 tasks, all within their allowed CPUs"
kill -TERM "$pid"; wait "$pid" || fail "exit $?"
