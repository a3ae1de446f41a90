#!/bin/bash
# Remake the shipped datasets (see datasets/README.md): boots the VM test bed
# with 4 vCPUs in 2 NUMA nodes and records, under each workload of
# bench/workloads.sh, the kernel's can_migrate_task() decisions (`collect`:
# datasets/NAME.csv) and scx_mlsched's own decisions (`run --record`, the
# heuristic policy: datasets/serving-NAME.csv).
#   bench/collect-datasets.sh [SECS] [all|collect|record] [NAME]   (default 240 s, all,
#                                                                  every workload)
. "$(dirname "$0")/../scripts/common.sh"
. bench/workloads.sh
secs=${1:-240}
what=${2:-all}
only=${3:-}
case $what in all | collect | record) ;; *) echo "usage: $0 [SECS] [all|collect|record]" >&2; exit 2 ;; esac
setup
build
prepare_workloads
stage=/var/tmp/scx_mlsched-test
mkdir -p "$stage" && cp "$BIN" "$stage/scx_mlsched"
collect() { # NAME WORKLOAD_FN
    bash vm/testbed.sh run -c 4 -n 2 -t $((secs + 300)) -- \
        ". bench/workloads.sh; $2 $((secs + 5)) & sleep 2; $stage/scx_mlsched collect -q -d $secs -w $1 -o datasets/$1.csv; rc=\$?; wait; exit \$rc"
}
record() { # NAME WORKLOAD_FN
    # The workload runs in a subshell: its `wait` must not wait for the scheduler.
    # Every 8th decision per CPU samples the whole run (about 1,500 decisions/s
    # under kcompile-fio in the emulated guest).
    bash vm/testbed.sh run -c 4 -n 2 -t $((secs + 300)) -- \
        ". bench/workloads.sh; $stage/scx_mlsched run --record datasets/serving-$1.csv --record-every 8 --record-max 40000 >/tmp/record.log 2>&1 & pid=\$!; sleep 5; ($2 $secs); kill -TERM \$pid; wait \$pid; rc=\$?; tail -3 /tmp/record.log; exit \$rc"
}
for w in kcompile-fio:kcompile_fio hackbench-mix:hackbench_mix; do
    [ -z "$only" ] || [ "$only" = "${w%%:*}" ] || continue
    [ "$what" = record ] || collect "${w%%:*}" "${w#*:}"
    [ "$what" = collect ] || record "${w%%:*}" "${w#*:}"
done
