#!/bin/bash
# scx_mlsched VM test bed.
#
# What: boots a stock Debian kernel built with CONFIG_SCHED_CLASS_EXT=y under
# virtme-ng and runs one command inside it, with the host's filesystem (and so
# this project) visible.  It returns the command's exit status and keeps the
# guest's kernel log.
#
# Why: most development machines and CI run kernels without sched_ext (and
# without kprobes), so every test of the scheduler itself needs a guest kernel.
#
#   vm/testbed.sh setup                  install host tools, fetch the kernel (idempotent)
#   vm/testbed.sh kernel                 print the cached kernel version that `run` uses
#   vm/testbed.sh run [-c CPUS] [-s SOCKETS] [-n NUMA_NODES] [-m MEM] [-t SECS] [-d DISK]... -- CMD...
#                                        run CMD (a shell line) in a guest, print its output,
#                                        exit with its status; kernel log -> $CACHE/last-guest.log;
#                                        each -d attaches an image file as a virtio disk
#                                        (/dev/vda, /dev/vdb, ... in the guest); -s splits
#                                        the CPUs into sockets, each with its own L3
#                                        (LLC), as on multi-CCX and two-socket parts
#
# Environment: SCX_MLSCHED_CACHE (default /var/cache/scx_mlsched) holds the
# kernels, the private apt state and the built virtiofsd; SCX_MLSCHED_VM_KVM=1
# tries KVM first (falls back to TCG when KVM is missing or the guest dies).
#
# The system's apt sources are never edited except to add bookworm-backports when
# the installed qemu-utils comes from there (qemu-system-x86 must match it).
# Kernels come from trixie-backports/sid through a private apt state directory:
# adding those suites to the system would replace bookworm's libc.
set -euo pipefail

CACHE=${SCX_MLSCHED_CACHE:-/var/cache/scx_mlsched}
KERNEL_SUITES=${SCX_MLSCHED_KERNEL_SUITES:-"trixie-backports sid"}
export DEBIAN_FRONTEND=noninteractive

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: error: $*" >&2; exit 2; }

# --- private apt, for kernels only ---------------------------------------------
apt_private() { # SUITE CMD... : run an apt command against SUITE alone, with private state
    local suite=$1; shift
    local d=$CACHE/apt/$suite uri
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources"
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || die "cannot read the Debian mirror URI from /etc/apt/sources.list.d/debian.sources"
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$uri" "$suite" >"$d/sources/kernel.sources"
    "$@" -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$d/sources" \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status=/dev/null
}

fetch_kernel() { # SUITE -> prints the version, cached under $CACHE/kernels/VER
    local suite=$1 ver kdir
    apt_private "$suite" apt-get -qq update >&2 || return 1
    ver=$(apt_private "$suite" apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/{print $2; exit}' | sed 's/^linux-image-//')
    [ -n "$ver" ] || { log "no cloud kernel in $suite"; return 1; }
    kdir=$CACHE/kernels/$ver
    if [ ! -f "$kdir/ok" ]; then
        rm -rf "$kdir"; mkdir -p "$kdir/debs"
        (cd "$kdir/debs" && apt_private "$suite" apt-get -qq download \
            "linux-binary-$ver" "linux-base-$ver" "linux-modules-$ver" >&2) || return 1
        for f in "$kdir"/debs/*.deb; do dpkg-deb -x "$f" "$kdir/root"; done
        rm -rf "$kdir/debs"
        [ -f "$kdir/root/usr/lib/modules/$ver/vmlinuz" ] || { log "$ver: no vmlinuz in packages"; return 1; }
        [ -f "$kdir/root/usr/lib/modules/$ver/config" ] || { log "$ver: no config in packages"; return 1; }
        depmod -b "$kdir/root/usr" "$ver" 2>/dev/null || depmod -b "$kdir/root" "$ver" 2>/dev/null || true
        touch "$kdir/ok"
    fi
    if ! grep -q '^CONFIG_SCHED_CLASS_EXT=y' "$kdir/root/usr/lib/modules/$ver/config"; then
        log "$ver lacks CONFIG_SCHED_CLASS_EXT=y; not using it"; return 1
    fi
    echo "$ver"
}

# --- host tools --------------------------------------------------------------
apt_install() { # PKG...: install what is missing from the system's own suites
    local missing=() p
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_qemu() {
    command -v qemu-system-x86_64 >/dev/null && return 0
    # qemu-system-x86 must come from the suite the installed qemu-utils came from.
    if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo'; then
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            local uri; uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
            printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$uri" >/etc/apt/sources.list.d/bookworm-backports.sources
        fi
        apt-get update -qq >/dev/null 2>&1 || true
        log "installing qemu-system-x86 from bookworm-backports"
        apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
    else
        apt_install qemu-system-x86
    fi
}

setup() {
    [ "$(id -u)" = 0 ] || die "setup must run as root (it installs packages)"
    mkdir -p "$CACHE"
    apt_install kmod busybox-static clang-19 llvm-19 libclang-19-dev libelf-dev zlib1g-dev pkg-config \
        libseccomp-dev libcap-ng-dev stress-ng fio procps
    install_qemu
    command -v vng >/dev/null || { log "installing virtme-ng"; pip install -q 'virtme-ng==1.42' >/dev/null; }
    if ! command -v virtiofsd >/dev/null && [ ! -x /usr/libexec/virtiofsd ]; then
        if [ ! -x "$CACHE/virtiofsd/bin/virtiofsd" ]; then
            log "building virtiofsd (cargo install; bookworm has none and trixie's needs a newer glibc)"
            cargo install -q --locked virtiofsd --root "$CACHE/virtiofsd"
        fi
        ln -sf "$CACHE/virtiofsd/bin/virtiofsd" /usr/local/bin/virtiofsd
    fi
    local s ver=""
    if [ -f "$CACHE/kernel" ] && [ -f "$CACHE/kernels/$(cat "$CACHE/kernel")/ok" ]; then
        log "ready: kernel $(cat "$CACHE/kernel") (cached; remove $CACHE/kernel to look for a newer one)"
        return 0
    fi
    for s in $KERNEL_SUITES; do
        ver=$(fetch_kernel "$s") && break
        ver=""
    done
    [ -n "$ver" ] || die "no sched_ext kernel could be fetched from: $KERNEL_SUITES"
    echo "$ver" >"$CACHE/kernel"
    log "ready: kernel $ver"
}

kernel_version() {
    [ -f "$CACHE/kernel" ] || die "no kernel cached in $CACHE: run '$0 setup' first"
    cat "$CACHE/kernel"
}

# --- running a guest ---------------------------------------------------------
run() {
    local cpus=4 mem=3G tmo=1200 nodes=1 sockets=1 disks=()
    while [ $# -gt 0 ]; do
        case $1 in
        -d) [ -f "$2" ] || die "run: no disk image $2"; disks+=(--disk "$2"); shift 2 ;;
        -c) cpus=$2; shift 2 ;;
        -n) nodes=$2; shift 2 ;;
        -s) sockets=$2; shift 2 ;;
        -m) mem=$2; shift 2 ;;
        -t) tmo=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
        esac
    done
    [ $# -gt 0 ] || die "run: no command given"
    local ver kroot vmlinuz
    ver=$(kernel_version)
    kroot=$CACHE/kernels/$ver/root/usr/lib/modules/$ver
    vmlinuz=$kroot/vmlinuz
    [ -f "$vmlinuz" ] || die "kernel $ver is not cached: run '$0 setup'"

    local work script out
    work=$(mktemp -d /var/tmp/scx_mlsched-vm.XXXXXX)
    script=$work/guest.sh
    out=$work/console.log
    # In the guest: make the kernel config visible where libbpf looks for it
    # (/boot/config-$(uname -r)) without touching the host's /boot, then run
    # CMD.  The guest sees /var/tmp (shared, writable) but not /var/cache
    # (a guest tmpfs), so the config travels through the work directory.
    cp "$kroot/config" "$work/config"
    [ ${#disks[@]} -eq 0 ] || cp "$kroot/kernel/drivers/block/virtio_blk.ko.xz" "$work/"
    cat >"$script" <<EOF
#!/bin/bash
mkdir -p /run/boot && cp $(printf %q "$work/config") /run/boot/config-\$(uname -r) && mount --bind /run/boot /boot
mount -t debugfs none /sys/kernel/debug 2>/dev/null
# Attached disks (-d) need the virtio_blk module.  The guest cannot see the
# cached modules (/var/cache), so the module travels through the work dir.
[ -f $(printf %q "$work/virtio_blk.ko.xz") ] && insmod $(printf %q "$work/virtio_blk.ko.xz")
cd $(printf %q "$PWD")
echo "__GUEST_BEGIN__"
bash -c $(printf %q "$*")
echo "__GUEST_RC=\$?"
EOF
    chmod +x "$script"

    # -n NODES: split CPUs and memory evenly into NUMA nodes (memory in MiB)
    local numa_opt=() n per_cpu per_mem
    if [ "$nodes" -gt 1 ]; then
        per_cpu=$((cpus / nodes)); per_mem=$(( $(numfmt --from=iec "$mem") / 1048576 / nodes ))
        for n in $(seq 0 $((nodes - 1))); do
            numa_opt+=(--numa "${per_mem}M,cpus=$((n * per_cpu))-$((n * per_cpu + per_cpu - 1))")
        done
    fi
    # -s SOCKETS: QEMU gives each socket its own L3 in CPUID, so the guest
    # kernel sees one LLC per socket (QEMU merges this -smp with vng's).
    local smp_opt=()
    if [ "$sockets" -gt 1 ]; then
        [ $((cpus % sockets)) -eq 0 ] || die "run: $cpus CPUs do not split into $sockets sockets"
        smp_opt=(--qemu-opts "-smp $cpus,sockets=$sockets,cores=$((cpus / sockets)),threads=1")
    fi
    local kvm_opt=(--disable-kvm)
    if [ "${SCX_MLSCHED_VM_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then kvm_opt=(); fi
    # Under TCG the guest now and then hangs during SMP bring-up (seen on
    # these machines, about one boot in ten). A boot that has not reached
    # the script within $boot_tmo seconds is killed and retried.
    local attempt boot_tmo=${SCX_MLSCHED_BOOT_TIMEOUT:-180} vpid t
    for attempt in 1 2 3; do
        : >"$out"
        setsid timeout "$tmo" vng -r "$vmlinuz" --cpus "$cpus" --memory "$mem" "${numa_opt[@]}" "${smp_opt[@]}" "${kvm_opt[@]}" "${disks[@]}" \
            --verbose --rwdir /var/tmp --rwdir "$PWD" --exec "$script" >"$out" 2>&1 &
        vpid=$!
        t=0
        while kill -0 "$vpid" 2>/dev/null && ! grep -aq '__GUEST_BEGIN__' "$out"; do
            sleep 1; t=$((t + 1))
            if [ "$t" -ge "$boot_tmo" ]; then
                log "guest did not boot within ${boot_tmo}s (attempt $attempt); retrying"
                kill -- -"$vpid" 2>/dev/null || true    # its own session: vng, qemu, virtiofsd
                break
            fi
        done
        wait "$vpid" 2>/dev/null || true
        if [ ${#kvm_opt[@]} -eq 0 ] && grep -aq 'KVM internal error\|emulation failure\|Could not access KVM' "$out"; then
            log "KVM failed to run the guest; retrying under software emulation (TCG)"
            kvm_opt=(--disable-kvm); continue
        fi
        grep -aq '__GUEST_BEGIN__' "$out" && break
    done
    # Guest output is interleaved with kernel log lines ("[   1.23] ...").
    sed -n '/__GUEST_BEGIN__/,$p' "$out" | sed 1d | grep -av '^\[ *[0-9]' | grep -av '^__GUEST_RC=' || true
    cp "$out" "$CACHE/last-guest.log"
    local rc
    rc=$(grep -ao '__GUEST_RC=[0-9]*' "$out" | tail -1 | cut -d= -f2 || true)
    if [ -z "$rc" ]; then
        log "the guest did not report a status (timeout after ${tmo}s or crash); last lines of its console:"
        tail -20 "$out" >&2
        rc=99
    fi
    rm -rf "$work"
    return "$rc"
}

case ${1:-} in
setup) setup ;;
kernel) kernel_version ;;
run) shift; run "$@" ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
