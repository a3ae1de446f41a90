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
stress-ng -c 2 -t 60 >/dev/null 2>&1 &    # competition, so that stealing happens
taskset -c 1 bash -c 'while :; do :; done' & a=$!
taskset -c 2,3 bash -c 'while :; do :; done' & b=$!
bash -c 'while :; do :; done' & c=$!
sleep 1
bad=0 samples=0
# last_cpu VAR PID: no fork per sample (comm is "bash": no spaces in the fields)
last_cpu() { local s; read -ra s </proc/$2/stat; printf -v "$1" %s "${s[38]}"; }
for i in $(seq 1 200); do
    [ $i -eq 100 ] && taskset -p -c 0 "$c" >/dev/null      # sched_setaffinity mid-run
    last_cpu ca $a; last_cpu cb $b; last_cpu cc $c
    [ "$ca" = 1 ] || { echo "pinned-to-1 task ran on $ca"; bad=$((bad + 1)); }
    [ "$cb" = 2 ] || [ "$cb" = 3 ] || { echo "pinned-to-2,3 task ran on $cb"; bad=$((bad + 1)); }
    if [ $i -gt 102 ]; then [ "$cc" = 0 ] || { echo "re-pinned task ran on $cc"; bad=$((bad + 1)); }; fi
    samples=$((samples + 1))
    sleep 0.02
done
kill $a $b $c; wait $a $b $c 2>/dev/null
[ $bad -eq 0 ] || fail "$bad samples outside the allowed CPUs"
ok "$samples samples of 3 tasks, all within their allowed CPUs"
kill -TERM "$pid"; wait "$pid" || fail "exit $?"
