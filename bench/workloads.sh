# Workloads shared by the benchmark and by dataset collection (sourced).
#
#   prepare_workloads            host side, once: unpack a kernel tree and configure it
#   kcompile_fio SECS            a CPU-bound kernel compile mixed with fio random I/O
#   hackbench_mix SECS           messaging stress-ng mix at partial load (the hold-out workload)
#
# Everything lives under $WORKDIR (default /var/tmp/scx_mlsched-work), which
# the VM test bed shares writable with the guest.

WORKDIR=${WORKDIR:-/var/tmp/scx_mlsched-work}
KSRC_TAR=${KSRC_TAR:-$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)}

prepare_workloads() {
    command -v fio >/dev/null && command -v stress-ng >/dev/null && command -v bison >/dev/null && [ -n "$KSRC_TAR" ] ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source fio stress-ng bc flex bison libssl-dev libelf-dev >/dev/null
    KSRC_TAR=$(ls /usr/src/linux-source-*.tar.xz | sort -V | tail -1)
    mkdir -p "$WORKDIR/fio"
    if [ ! -f "$WORKDIR/linux/.config" ]; then
        rm -rf "$WORKDIR/linux" && mkdir -p "$WORKDIR/linux"
        tar -xf "$KSRC_TAR" -C "$WORKDIR/linux" --strip-components=1
        make -C "$WORKDIR/linux" -s defconfig >/dev/null
    fi
}

kcompile_fio() {
    local secs=$1
    (cd "$WORKDIR/linux" && timeout "$secs" make -s -j"$(($(nproc) + 2))" vmlinux >/dev/null 2>&1) &
    fio --name=mix --directory="$WORKDIR/fio" --rw=randrw --rwmixread=70 --bs=4k --size=32m \
        --numjobs=2 --ioengine=psync --time_based --runtime="$secs" >/dev/null 2>&1 &
    wait
}

# Socket and pipe ping-pong beside more CPU workers than CPUs, each busy 70%
# of the time: CPUs go idle and busy all the time while tasks queue, so idle
# balances (the decisions the scheduler makes too) are frequent.  With yield
# workers and 60% load on half as many workers, as before, CPUs were never
# idle: 7 of 13,674 rows were such decisions; with half-loaded workers and
# sleepers, the balancer found 11 candidates in 240 s.  This one: 696 such
# rows of 20,694 in 240 s (VM, TCG, 4 vCPUs).
hackbench_mix() {
    stress-ng --sock 1 --pipe 1 --cpu "$(($(nproc) + 2))" --cpu-load 70 -t "$1" >/dev/null 2>&1
}
