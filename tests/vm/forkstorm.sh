#!/bin/bash
# A fork storm (thousands of short-lived tasks) and many more runnable
# tasks than CPUs: all complete.
. "$(dirname "$0")/lib.sh"
"$BIN" run >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 20 || fail "scheduler never attached"
n=3000
for i in $(seq 1 $n); do (echo "$i" >/dev/null) & done
wait_kids=$(jobs -p | grep -v "^$pid\$")
for j in $wait_kids; do wait "$j" || fail "a short-lived task failed"; done
ok "$n short-lived tasks completed"
many=$(( $(nproc) * 16 ))
dir=$(mktemp -d)
for i in $(seq 1 $many); do
    ( x=0; while [ $x -lt 20000 ]; do x=$((x + 1)); done; echo done >"$dir/$i" ) &
done
for j in $(jobs -p | grep -v "^$pid\$"); do wait "$j"; done
got=$(ls "$dir" | wc -l)
[ "$got" -eq "$many" ] || fail "only $got of $many CPU-bound tasks finished"
ok "$many CPU-bound tasks on $(nproc) CPUs completed"
[ "$(ext_ops)" = "$(cat /sys/kernel/sched_ext/root/ops)" ] && kill -0 "$pid" || fail "scheduler gone"
kill -TERM "$pid"; wait "$pid" || fail "exit $?"
ok "exit 0"
