# Shared by scripts/run and scripts/test (sourced): set-up and build.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target}
BIN=$CARGO_TARGET_DIR/release/scx_mlsched
# Parquet datasets are an optional feature; the project's own builds and
# tests include it, so CI builds and tests it.
FEATURES="--features parquet"

need_root() {
    [ "$(id -u)" = 0 ] || { echo "$0: run as root (it installs packages and boots a VM)" >&2; exit 2; }
}

# Host tools, BPF toolchain and (only if this kernel lacks sched_ext) the VM kernel.
setup() {
    need_root
    bash vm/testbed.sh setup
}

build() {
    cargo build --release --locked $FEATURES
}
