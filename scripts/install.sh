#!/bin/bash
# Install scx_mlsched as a system scheduler, as root (sudo is not needed and
# need not be installed):
#   - the binary, with `cargo install --path .` into PREFIX/bin;
#   - the shipped model into PREFIX/share/scx_mlsched/;
#   - dist/scx_mlsched.service into /etc/systemd/system, its ExecStart
#     pointing at that binary;
#   - dist/scx_mlsched.default as /etc/default/scx_mlsched (an existing one
#     is kept).
# It does not start anything: `systemctl enable --now scx_mlsched` does.
#
#   scripts/install.sh [PREFIX]          (default /usr/local)
#   scripts/install.sh --uninstall [PREFIX]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
uninstall=0
[ "${1:-}" = --uninstall ] && { uninstall=1; shift; }
prefix=${1:-/usr/local}
unit=/etc/systemd/system/scx_mlsched.service
[ "$(id -u)" = 0 ] || { echo "$0: run as root (it writes $prefix/bin and /etc)" >&2; exit 2; }
have_systemd() { [ -d /run/systemd/system ]; }

if [ $uninstall = 1 ]; then
    have_systemd && systemctl disable --now scx_mlsched 2>/dev/null || true
    rm -f "$unit" "$prefix/bin/scx_mlsched"
    rm -rf "$prefix/share/scx_mlsched"
    have_systemd && systemctl daemon-reload
    echo "uninstalled (kept /etc/default/scx_mlsched)"
    exit 0
fi

apt_missing=()
for p in clang-19 libclang-19-dev libelf-dev zlib1g-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || apt_missing+=("$p")
done
if [ ${#apt_missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
cargo install --locked --features parquet --path . --root "$prefix"
install -Dm644 model/default.json "$prefix/share/scx_mlsched/default.json"
sed -e "s|^ExecStart=/usr/local/bin/scx_mlsched|ExecStart=$prefix/bin/scx_mlsched|" \
    -e "s|=/usr/local/share/scx_mlsched/|=$prefix/share/scx_mlsched/|" \
    dist/scx_mlsched.service >"$unit"
if [ ! -f /etc/default/scx_mlsched ]; then
    sed "s|=/usr/local/share/scx_mlsched/|=$prefix/share/scx_mlsched/|" dist/scx_mlsched.default |
        install -Dm644 /dev/stdin /etc/default/scx_mlsched
fi
if have_systemd; then
    systemctl daemon-reload
    echo "installed: systemctl enable --now scx_mlsched   (scx_mlsched --monitor 1 to watch it)"
else
    echo "installed $prefix/bin/scx_mlsched and $unit (systemd is not running here)"
fi
