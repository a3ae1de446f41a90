#!/bin/bash
# Host-side checks of scx_mlsched as a system scheduler (no VM needed):
#   - the shipped systemd unit passes `systemd-analyze verify`, with its
#     ExecStart pointed at the built binary (verify wants it executable);
#   - the unit's RestartPreventExitStatus is the binary's documented
#     ejection exit code (86, see src/sched/scheduler.rs);
#   - `--version` is the full build version (crate version, git revision,
#     target) and `--help-stats` describes the statistics;
#   - the bare invocation is `run`: it reaches the same preflight refusal.
#   tests/dist.sh BIN
set -euo pipefail
bin=$(realpath "${1:?usage: tests/dist.sh PATH_TO_scx_mlsched}")
top=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: dist: $*"; exit 1; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

sed "s|^ExecStart=/usr/local/bin/scx_mlsched|ExecStart=$bin|" "$top/dist/scx_mlsched.service" >"$d/scx_mlsched.service"
grep -q "^ExecStart=$bin " "$d/scx_mlsched.service" || fail "ExecStart line not found in the unit"
if ! command -v systemd-analyze >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null || fail "cannot install systemd-analyze"
fi
out=$(systemd-analyze verify "$d/scx_mlsched.service" 2>&1) || fail "systemd-analyze verify: $out"
# Warnings about this unit (not about other units of the machine) fail it too.
! grep -q 'scx_mlsched.service' <<<"$out" || fail "systemd-analyze verify warned: $out"
echo "ok: dist: systemd-analyze verify passes"
code=$(grep -o 'EXIT_EJECTED: u8 = [0-9]*' "$top/src/sched/scheduler.rs" | grep -o '[0-9]*$')
grep -qx "RestartPreventExitStatus=$code" "$top/dist/scx_mlsched.service" ||
    fail "the unit does not prevent restarts on the ejection exit code $code"
echo "ok: dist: RestartPreventExitStatus=$code matches the binary's ejection exit code"

# The model path: the unit's default, the default file's, and where
# install.sh puts the shipped model are one path, and that file is valid.
unit_model=$(grep -o '^Environment=SCX_MLSCHED_MODEL=.*' "$top/dist/scx_mlsched.service" | cut -d= -f3)
file_model=$(grep -o '^SCX_MLSCHED_MODEL=.*' "$top/dist/scx_mlsched.default" | cut -d= -f2)
[ -n "$unit_model" ] && [ "$unit_model" = "$file_model" ] || fail "model paths differ: unit '$unit_model', default file '$file_model'"
[ "$unit_model" = /usr/local/share/scx_mlsched/default.json ] || fail "unexpected model path $unit_model"
grep -q 'share/scx_mlsched/default.json' "$top/scripts/install.sh" || fail "install.sh does not install the model there"
grep -q -- '--model ${SCX_MLSCHED_MODEL}' "$top/dist/scx_mlsched.service" || fail "ExecStart does not pass the model"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$top/dist/scx_mlsched.service" || fail "no ExecReload (SIGHUP reloads the model)"
"$bin" inspect "$top/model/default.json" >/dev/null || fail "the shipped model file does not load"
echo "ok: dist: unit and default file pass the shipped model's path ($unit_model)"

ver=$("$bin" --version)
[[ $ver =~ ^scx_mlsched\ [0-9]+\.[0-9]+\.[0-9]+-g[0-9a-f]{7,}(-dirty)?\ x86_64-[a-z_-]+ ]] ||
    fail "--version is not the full build version: $ver"
echo "ok: dist: --version: $ver"
help=$("$bin" --help-stats) || fail "--help-stats failed"
for stat in mig_deny_hot ml_agree_heuristic twin_disagree model_generation migrations moved_llc_pool moved_other; do
    grep -q "$stat" <<<"$help" || fail "--help-stats does not describe $stat"
done
echo "ok: dist: --help-stats"
if [ ! -d /sys/kernel/sched_ext ]; then
    out=$("$bin" --slice-us 2000 2>&1) && fail "bare run succeeded without sched_ext"
    grep -q 'no sched_ext' <<<"$out" || fail "bare invocation did not reach run's preflight: $out"
    echo "ok: dist: bare invocation runs the scheduler's preflight"
fi
