#!/bin/bash
# Remake the shipped datasets (see datasets/README.md): boots the VM test bed
# with 4 vCPUs in 2 NUMA nodes and records can_migrate_task() decisions
# under each workload of bench/workloads.sh.
#   bench/collect-datasets.sh [SECS]      (default 240 s per workload)
. "$(dirname "$0")/../scripts/common.sh"
. bench/workloads.sh
secs=${1:-240}
setup
build
prepare_workloads
stage=/var/tmp/scx_mlsched-test
mkdir -p "$stage" && cp "$BIN" "$stage/scx_mlsched"
collect() { # NAME WORKLOAD_FN
    bash vm/testbed.sh run -c 4 -n 2 -t $((secs + 300)) -- \
        ". bench/workloads.sh; $2 $((secs + 5)) & sleep 2; $stage/scx_mlsched collect -q -d $secs -w $1 -o datasets/$1.csv; rc=\$?; wait; exit \$rc"
}
collect kcompile-fio kcompile_fio
collect hackbench-mix hackbench_mix
