#!/bin/bash
# Host-side preparation of `scx_mlsched bench` (idempotent; as root).
#
# What it prepares, and why:
#   - the workload tools: fio, cyclictest (rt-tests), perf (linux-perf), and
#     the kernel build's own dependencies;
#   - the compile's source: Debian's linux-source, unpacked once under
#     $WORKDIR/linux, configured (defconfig) and prepared natively, so that
#     no run pays for `make prepare` under emulation.  The VM scopes build a
#     fixed subset of that tree, so `ksubset.tar` holds just what those
#     builds read (top-level build files, headers, scripts, arch/x86,
#     kernel/, the Kconfig files that `make` checks); the guest unpacks it
#     into its own tmpfs, never compiling through the shared folder;
#   - a raw disk image for fio (attached to the guest as a virtio disk, used
#     with O_DIRECT);
#   - the peer schedulers, built once from crates.io at pinned versions into
#     $CACHE/peers (outside the repository), with their own target dir.
#
#   bench/setup.sh [--no-peers]
# Env: SCX_MLSCHED_CACHE (default /var/cache/scx_mlsched), WORKDIR (default
# /var/tmp/scx_mlsched-work, shared writable with the VM test bed's guest).
set -euo pipefail
CACHE=${SCX_MLSCHED_CACHE:-/var/cache/scx_mlsched}
WORKDIR=${WORKDIR:-/var/tmp/scx_mlsched-work}
# Pinned peers: the scx release whose scx_utils this project builds with.
PEERS=${SCX_MLSCHED_PEERS:-"scx_bpfland@1.1.4 scx_rusty@1.1.4"}
export DEBIAN_FRONTEND=noninteractive
log() { echo "bench-setup: $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "bench-setup: run as root (it installs packages)" >&2; exit 2; }

pkgs=(linux-source fio rt-tests linux-perf bc flex bison libssl-dev libelf-dev fonts-dejavu-core
    clang-19 libclang-19-dev pkg-config zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- the compile's source tree -------------------------------------------------
ksrc=$(ls /usr/src/linux-source-*.tar.xz | sort -V | tail -1)
stamp=$WORKDIR/linux/.scx_mlsched-prepared
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(basename "$ksrc")" ]; then
    log "unpacking and preparing $(basename "$ksrc") (defconfig, make prepare; natively)"
    rm -rf "$WORKDIR/linux" "$WORKDIR/ksubset.tar" && mkdir -p "$WORKDIR/linux"
    tar -xf "$ksrc" -C "$WORKDIR/linux" --strip-components=1
    make -C "$WORKDIR/linux" -s defconfig >/dev/null
    make -C "$WORKDIR/linux" -s -j"$(nproc)" prepare >/dev/null
    basename "$ksrc" >"$stamp"
fi
if [ ! -f "$WORKDIR/ksubset.tar" ]; then
    log "packing the subset the VM scopes compile"
    (
        cd "$WORKDIR/linux"
        {
            ls -d Makefile Kbuild Kconfig .config include scripts arch/x86 kernel usr certs init \
                tools/objtool tools/lib tools/include tools/arch/x86 tools/build tools/scripts 2>/dev/null
            find . -path ./drivers -prune -o -path ./sound -prune -o -path ./Documentation -prune \
                -o \( -path './arch/*' -a ! -path './arch/x86*' \) -prune \
                -o \( -name 'Kconfig*' -o -name 'Makefile*' -o -name 'Kbuild*' -o -name '*.h' \) -print
            find drivers sound -name 'Kconfig*'
            find arch -maxdepth 2 -name 'Kconfig*'
        } | sed 's|^\./||' | sort -u >"$WORKDIR/ksubset.lst"
        tar -cf "$WORKDIR/ksubset.tar.part" -T "$WORKDIR/ksubset.lst"
    )
    mv "$WORKDIR/ksubset.tar.part" "$WORKDIR/ksubset.tar"
fi

# --- fio's disk ----------------------------------------------------------------
if [ ! -f "$WORKDIR/fio.img" ]; then
    log "allocating a 1 GiB disk image for fio"
    fallocate -l 1G "$WORKDIR/fio.img.part" && mv "$WORKDIR/fio.img.part" "$WORKDIR/fio.img"
fi

# --- peers -------------------------------------------------------------------
[ "${1:-}" = --no-peers ] && exit 0
for spec in $PEERS; do
    name=${spec%@*} ver=${spec#*@}
    if [ -x "$CACHE/peers/bin/$name" ] && grep -qx "$ver" "$CACHE/peers/$name.version" 2>/dev/null; then
        continue
    fi
    log "building $name $ver from crates.io into $CACHE/peers (once; 2-5 minutes on 2 cores)"
    BPF_CLANG=clang-19 LIBCLANG_PATH=/usr/lib/llvm-19/lib CARGO_TARGET_DIR="$CACHE/peers/target" \
        cargo install -q --locked "$name" --version "=$ver" --root "$CACHE/peers"
    echo "$ver" >"$CACHE/peers/$name.version"
done
rm -rf "$CACHE/peers/target"   # 1.4 GiB of intermediate files
log "ready: $WORKDIR (kernel tree, fio.img), peers in $CACHE/peers/bin"
