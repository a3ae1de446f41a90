#!/bin/bash
# Learning from outcomes, end to end (issue #25; docs/learning.md, "Learning
# from outcomes"), on a short workload.  It checks the artifacts, not
# numbers:
#   1. `run --policy ml --explore 0.2 --record` under a CPU, fork and pipe
#      load: the log has the outcome columns, propensities in (0, 1e6] ppm,
#      waits, and a trailer that counts superseded and censored decisions;
#   2. `train --target outcome` on it writes a model that `inspect` reads;
#   3. `eval --policy-value` on it prints estimates with intervals;
#   4. the new model is hot-swapped into a running scheduler (--watch):
#      generation 2 in force, no model refused.
. "$(dirname "$0")/lib.sh"
N=$(nproc)
cur=/tmp/cur.json
cp model/default.json "$cur"
load() {
    stress-ng -t "$1" -c "$N" -f 1 --pipe 1 --sleep 1 >/tmp/stress.log 2>&1 ||
        fail "stress-ng failed: $(tail -3 /tmp/stress.log)"
}

"$BIN" run --policy ml --model "$cur" --explore 0.2 --record /tmp/a.csv --record-meta seed=1 \
    --record-meta workload=loop-stress --stats 5 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
load 20
kill -INT "$pid"; wait "$pid" || fail "run --explore --record exited $?"
[ -s /tmp/a.csv ] || fail "no log written"
grep -q '^# explore_eps: 0.2$' /tmp/a.csv && grep -q '^# seed: 1$' /tmp/a.csv ||
    fail "the header does not say the exploration rate and the seed"
head=$(grep -v '^#' /tmp/a.csv | head -1)
for col in propensity_ppm wait_us moved_again closed_by; do
    grep -q "$col" <<<"$head" || fail "no column $col"
done
awk -F, -v h="$head" 'BEGIN {n = split(h, c, ","); for (i = 1; i <= n; i++) col[c[i]] = i}
    /^#/ || NR == 1 || $0 == h {next}
    {p = $col["propensity_ppm"]; if (p <= 0 || p > 1000000) bad++; rows++}
    END {if (rows == 0 || bad) exit 1}' /tmp/a.csv || fail "propensities outside (0, 1e6] or no rows"
for k in superseded censored unjoined; do
    grep -q "^# $k: [0-9]" /tmp/a.csv || fail "the trailer does not count $k"
done
ok "log: $(grep -c -v '^#' /tmp/a.csv) lines, $(grep -E '^# (superseded|censored|unjoined):' /tmp/a.csv | tr '\n' ' ')"

"$BIN" train --target outcome --points enq_wakeup,enq_requeue --min-explored 20 --max-depth 4 \
    --min-samples-leaf 20 --folds 0 -o /tmp/new.json /tmp/a.csv >/tmp/train.log 2>&1 ||
    { cat /tmp/train.log; fail "train --target outcome failed"; }
cat /tmp/train.log
"$BIN" inspect /tmp/new.json >/tmp/inspect.log 2>&1 || { cat /tmp/inspect.log; fail "inspect refused the new model"; }
grep -q '"target": "outcome"' /tmp/new.json || fail "the model does not say it learned outcomes"
ok "train --target outcome wrote a model that inspect reads"

"$BIN" eval --policy-value --bootstrap 200 /tmp/new.json /tmp/a.csv >/tmp/eval.log 2>&1 ||
    { cat /tmp/eval.log; fail "eval --policy-value failed"; }
cat /tmp/eval.log
grep -qE '^  model +IPS +[0-9.-]+ \[[0-9.-]+, [0-9.-]+\]' /tmp/eval.log || fail "no estimate with an interval for the model"
grep -qE '^  heuristic +IPS' /tmp/eval.log || fail "no estimate for the heuristic"
ok "eval --policy-value: estimates with intervals"

"$BIN" run --policy ml --model "$cur" --watch --stats 2 >/tmp/sched.log 2>&1 &
pid=$!
wait_ops mlsched 60 || fail "scheduler never attached"
sleep 3
grep -q 'model generation 1 in force' /tmp/sched.log || fail "generation 1 not loaded"
cp /tmp/new.json "$cur"
load 6
grep -q 'model generation 2 in force' /tmp/sched.log || fail "--watch did not load the outcome model"
! grep -q 'refused the new model' /tmp/sched.log || fail "the outcome model was refused"
ok "the outcome model was hot-swapped in: generation 2 in force"
kill -INT "$pid"; wait "$pid" || fail "exit $? on SIGINT"
wait_disabled 10 || fail "state is $(ext_state) after exit"
ok "state back to disabled"
