//! Learning from outcomes (issue #25): what a recorded decision cost, what
//! another policy would have cost on the same logs, and a tree trained to
//! lower that cost instead of imitating a rule.
//!
//! Data: `run --explore EPS --record FILE` (bpf/outcome.bpf.h,
//! src/sched/record.rs).  Each row holds the action taken (the label), its
//! propensity p (1 - EPS/2 for the policy's own action, EPS/2 for the
//! other) and what followed.  Only explorable rows (explore_block 0) are
//! used: elsewhere a guard or a safety rule decided, the same for every
//! policy, with p = 1.  A log recorded without exploration (`--explore 0`)
//! supports no estimate of another policy, but its mean cost over the
//! rows the guards leave to the policy is that policy's measured cost, to
//! hold against the offline estimates.
//!
//! Cost: `cost_us = wait_us + P * (moved + moved_again)`, the wait until the
//! task ran plus a penalty P per move (a bounce is a second move).  TCG
//! models no cache, so P cannot be measured here; its default, 500 us, is
//! pre-registered: the kernel's `sysctl_sched_migration_cost` (its
//! cache-hot horizon) and this scheduler's `--migration-cost-us`.  Reports
//! sweep P.
//!
//! Estimates (Dudik, Langford and Li 2011; Swaminathan and Joachims 2015):
//! for a deterministic target policy pi, each row weighs w = 1[pi(x) = a] /
//! p.  IPS = sum(w c) / n is unbiased when p > 0 wherever pi acts; SNIPS =
//! sum(w c) / sum(w) trades a little bias for much less variance.  The
//! effective sample size (sum w)^2 / sum w^2 says how many rows the
//! estimate really rests on.  Intervals come from a block bootstrap (blocks
//! of consecutive rows within each file: rows close in time are
//! dependent), seeded.
//!
//! What the estimates mean: decisions are not an independent contextual
//! bandit.  A refused steal raises the CPU's failed-balance count
//! (extra_fails of the next decision), and each move changes the queue
//! lengths the next decisions see.  IPS estimates "change this one decision,
//! then follow the logging policy", not the cost of deploying pi everywhere;
//! the benchmark decides that.  And the cost is the decided task's own: a
//! decision that puts it ahead of others moves wait onto them, which no row
//! of its own shows.
//!
//! Training (a cost-sensitive reduction to weighted classification, as in
//! Beygelzimer and Langford's offset tree and Dudik et al.): with the
//! point's mean cost b as control variate, Gamma(a) = 1[a_i = a] (c_i - b) /
//! p_i estimates each action's cost relative to b; a row is labelled
//! "migrate" when Gamma(stay) > Gamma(migrate), and weighs |Gamma(stay) -
//! Gamma(migrate)|.  linfa-trees fits the weighted tree; the result is an
//! ordinary model file (same BPF walk, twin and hot swap).

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use linfa::prelude::*;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2};

use crate::learn::dataset::{self, Outcome, PROP_ONE};
use crate::learn::features::{FeatureVec, NR_FEATURES, SCHEMA};
use crate::learn::model::{linfa_predict, parse_points, Model, ModelMetrics, TrainingInfo};
use crate::learn::train::{time_tail_split, Split, TrainOpts};
use crate::rng::XorShift64Star;
use crate::sched::bpf_intf::explore_block_EXPLORE_OFF;
use crate::sched::heuristic;

/// The pre-registered migration penalty (see the module's comment).
pub const DEFAULT_PENALTY_US: f64 = 500.0;
/// Below this propensity, estimates rest on few heavy rows: warned.
const MIN_PROPENSITY: f64 = 0.01;
/// Fewer matching rows at a point than this: warned.
const MIN_MATCHED: usize = 100;

/// A recorded decision as the estimators see it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub x: FeatureVec,
    /// enum mig_point
    pub point: u32,
    /// The action taken: migrate?
    pub action: bool,
    /// Its propensity, in (0, 1].
    pub prop: f64,
    pub cost: f64,
    /// The heuristic of the run that recorded it (`--requeue-local`, from
    /// the recording's header): what the scheduler falls back to there.
    pub rules: heuristic::Rules,
}

/// The cost of a decision's outcome with penalty `penalty_us` per move.
pub fn cost_us(o: &Outcome, penalty_us: f64) -> f64 {
    o.wait_us as f64 + penalty_us * (o.moved as u8 + o.moved_again as u8) as f64
}

/// Logs read for the estimators: the explorable rows at the wanted points,
/// and what was left out.
#[derive(Debug, Default)]
pub struct Logs {
    pub rows: Vec<Logged>,
    /// Rows of each file, in time order (the bootstrap's blocks stay inside).
    pub files: Vec<Range<usize>>,
    /// Rows a guard or safety rule decided (explore_block != 0).
    pub unexplorable: usize,
    /// Rows at other points.
    pub elsewhere: usize,
    /// Decisions the recordings superseded and censored (their trailers).
    pub superseded: u64,
    pub censored: u64,
    pub recorded: u64,
}

impl Logs {
    /// Read recordings with outcomes; keep the explorable rows at `points`
    /// (all of the scheduler's points when empty).
    pub fn read(paths: &[PathBuf], points: &[u32], penalty_us: f64) -> Result<Self> {
        let mut logs = Logs::default();
        for p in paths {
            let ds = dataset::read(p)?;
            if ds.out.is_empty() || ds.ctx.is_empty() {
                bail!(
                    "{}: no outcome columns: record with `run --explore EPS --record FILE` on this build",
                    p.display()
                );
            }
            let trailer = |k: &str| ds.meta.get(k).and_then(|v| v.parse::<u64>().ok());
            logs.superseded += trailer("superseded").unwrap_or(0);
            logs.censored += trailer("censored").unwrap_or(0);
            let start = logs.rows.len();
            let rules = heuristic::Rules::from_meta(&ds.meta);
            // The label is the action taken.
            for (((x, y), ctx), o) in ds.x.iter().zip(&ds.y).zip(&ds.ctx).zip(&ds.out) {
                let point = u32::try_from(ctx.point).unwrap_or(u32::MAX);
                if !heuristic::SCHEDULER_POINTS.contains(&point)
                    || !(points.is_empty() || points.contains(&point))
                {
                    logs.elsewhere += 1;
                    continue;
                }
                // Explorable rows; with exploration off (an on-policy log,
                // whose mean cost is the policy's measured one), the rows
                // the guards would leave explorable.
                let off = o.explore_block == explore_block_EXPLORE_OFF as i64;
                if !(o.explore_block == 0 || off && heuristic::ml_guard(x).is_none()) {
                    logs.unexplorable += 1;
                    continue;
                }
                logs.rows.push(Logged {
                    x: *x,
                    point,
                    action: *y,
                    prop: o.propensity(),
                    cost: cost_us(o, penalty_us),
                    rules,
                });
            }
            logs.recorded += ds.len() as u64;
            logs.files.push(start..logs.rows.len());
        }
        Ok(logs)
    }

    /// Were the logs made with exploration at all?
    pub fn explored(&self) -> bool {
        self.rows.iter().any(|r| r.prop < 1.0)
    }
}

/// What a policy does with a logged decision: migrate?
pub type Policy<'a> = dyn Fn(&Logged) -> bool + 'a;

/// The scheduler's point heuristic, with the options of the run that
/// recorded the row.
pub fn heuristic_policy(r: &Logged) -> bool {
    r.rules.decide_at(&r.x, r.point).allows()
}

/// What `--policy ml` does with `model`, as ml_gate() in bpf/main.bpf.c:
/// at a point the model declares, the hard guards, then the tree; the
/// point's heuristic elsewhere.
pub fn model_policy(model: &Model) -> Result<impl Fn(&Logged) -> bool + '_> {
    let mask = model.points_mask()?;
    Ok(move |r: &Logged| {
        if r.point >= 32 || mask & (1 << r.point) == 0 {
            return heuristic_policy(r);
        }
        match heuristic::ml_guard(&r.x) {
            Some(_) => false,
            None => model.predict(&r.x),
        }
    })
}

/// An estimate of a policy's mean cost per decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub n: usize,
    /// Rows whose action the policy would take.
    pub matched: usize,
    pub ips: f64,
    pub snips: f64,
    pub ips_ci: (f64, f64),
    pub snips_ci: (f64, f64),
    /// (sum w)^2 / sum w^2
    pub ess: f64,
}

/// IPS and SNIPS of weights `w` and costs over rows `idx`.
fn ips_snips(rows: &[Logged], w: &[f64], idx: impl Iterator<Item = usize>) -> (f64, f64) {
    let (mut n, mut sw, mut swc) = (0usize, 0.0, 0.0);
    for i in idx {
        n += 1;
        sw += w[i];
        swc += w[i] * rows[i].cost;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    (swc / n as f64, if sw > 0.0 { swc / sw } else { f64::NAN })
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// Bootstrap settings: resamples, rows per block, seed.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    pub resamples: usize,
    pub block_rows: usize,
    pub seed: u64,
}

/// Importance weights of `pi`: 1/propensity where it takes the logged
/// action, else 0.
fn weights(rows: &[Logged], pi: &Policy) -> Vec<f64> {
    rows.iter()
        .map(|r| if pi(r) == r.action { 1.0 / r.prop } else { 0.0 })
        .collect()
}

/// The bootstrap's blocks: at most `block_rows` consecutive rows of one
/// file, and at least 20 blocks where there are rows enough (one block
/// resampled gives no interval at all).
fn blocks(rows: usize, files: &[Range<usize>], block_rows: usize) -> Vec<Range<usize>> {
    let size = block_rows.min(rows / 20).max(1);
    files
        .iter()
        .flat_map(|f| {
            (f.start..f.end)
                .step_by(size)
                .map(move |s| s..(s + size).min(f.end))
        })
        .collect()
}

/// `b.resamples` block-bootstrap resamples, each a list of row indices.
fn resamples<'a>(
    blocks: &'a [Range<usize>],
    b: Bootstrap,
) -> impl Iterator<Item = Vec<usize>> + 'a {
    let mut rng = XorShift64Star::from_seed(b.seed);
    let n = if blocks.is_empty() { 0 } else { b.resamples };
    (0..n).map(move |_| {
        (0..blocks.len())
            .flat_map(|_| blocks[rng.below(blocks.len())].clone())
            .collect()
    })
}

fn ci95(v: &mut Vec<f64>) -> (f64, f64) {
    (percentile(v, 0.025), percentile(v, 0.975))
}

/// Estimate the mean cost of `pi` on `rows` (of `files`), with 95 %
/// percentile intervals from a block bootstrap.
pub fn estimate(rows: &[Logged], files: &[Range<usize>], pi: &Policy, b: Bootstrap) -> Estimate {
    weighted(rows, files, weights(rows, pi), b)
}

/// The logging policy's own mean cost (every weight 1), with its interval.
pub fn logging_estimate(rows: &[Logged], files: &[Range<usize>], b: Bootstrap) -> Estimate {
    weighted(rows, files, vec![1.0; rows.len()], b)
}

fn weighted(rows: &[Logged], files: &[Range<usize>], w: Vec<f64>, b: Bootstrap) -> Estimate {
    let (ips, snips) = ips_snips(rows, &w, 0..rows.len());
    let (sw, sw2) = w.iter().fold((0.0, 0.0), |(a, b), x| (a + x, b + x * x));
    let blocks = blocks(rows.len(), files, b.block_rows);
    let (mut bi, mut bs) = (Vec::new(), Vec::new());
    for idx in resamples(&blocks, b) {
        let (i, s) = ips_snips(rows, &w, idx.into_iter());
        bi.push(i);
        if s.is_finite() {
            bs.push(s);
        }
    }
    Estimate {
        n: rows.len(),
        matched: w.iter().filter(|x| **x > 0.0).count(),
        ips,
        snips,
        ips_ci: ci95(&mut bi),
        snips_ci: ci95(&mut bs),
        ess: if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 },
    }
}

/// The SNIPS ratio of `pi` over `base` on the same rows, with a 95 %
/// interval from the same block resamples for both: paired, so far
/// tighter than the two policies' own intervals, which share most of
/// their noise (the rows both policies match).  Below 1: `pi` is cheaper.
pub fn ratio(
    rows: &[Logged],
    files: &[Range<usize>],
    pi: &Policy,
    base: &Policy,
    b: Bootstrap,
) -> (f64, (f64, f64)) {
    let (w1, w0) = (weights(rows, pi), weights(rows, base));
    let r = |idx: &[usize]| {
        let s1 = ips_snips(rows, &w1, idx.iter().copied()).1;
        let s0 = ips_snips(rows, &w0, idx.iter().copied()).1;
        s1 / s0
    };
    let all: Vec<usize> = (0..rows.len()).collect();
    let blocks = blocks(rows.len(), files, b.block_rows);
    let mut v: Vec<f64> = resamples(&blocks, b)
        .map(|idx| r(&idx))
        .filter(|x| x.is_finite())
        .collect();
    (r(&all), ci95(&mut v))
}

/// The logging policy's own mean cost (on-policy: the plain mean).
pub fn logging_mean(rows: &[Logged]) -> f64 {
    rows.iter().map(|r| r.cost).sum::<f64>() / rows.len().max(1) as f64
}

/// What the logs cannot support, one line each.
pub fn warnings(logs: &Logs, ests: &[(&str, Estimate)], min_ess: f64) -> Vec<String> {
    let mut w = Vec::new();
    if !logs.explored() {
        w.push(
            "deterministic logs (every propensity is 1): no estimate of another policy is \
             possible; record with --explore"
                .into(),
        );
        return w;
    }
    let min_p = logs.rows.iter().map(|r| r.prop).fold(1.0, f64::min);
    if min_p < MIN_PROPENSITY {
        w.push(format!(
            "smallest propensity {min_p:.4} < {MIN_PROPENSITY}: a few rows carry the estimate"
        ));
    }
    for (name, e) in ests {
        if e.ess < min_ess {
            w.push(format!(
                "{name}: effective sample size {:.0} < {min_ess:.0}",
                e.ess
            ));
        }
        if e.matched < MIN_MATCHED {
            w.push(format!(
                "{name}: only {} rows take its action (< {MIN_MATCHED})",
                e.matched
            ));
        }
    }
    // Censored decisions have no cost: if many, the rows that have one
    // are a biased sample (tasks that exit soon after a decision).
    if logs.censored * 20 > logs.recorded + logs.censored {
        w.push(format!(
            "{} decisions censored against {} recorded (> 5 %): their tasks left before \
             they ran, and the rows miss them",
            logs.censored, logs.recorded
        ));
    }
    w
}

fn fmt_est(e: &Estimate) -> String {
    format!(
        "IPS {:8.1} [{:.1}, {:.1}]  SNIPS {:8.1} [{:.1}, {:.1}]  ESS {:.0}, {} of {} rows match",
        e.ips, e.ips_ci.0, e.ips_ci.1, e.snips, e.snips_ci.0, e.snips_ci.1, e.ess, e.matched, e.n
    )
}

/// The estimates of `policies` on `logs`, overall and per point, as text.
pub fn report(
    logs: &Logs,
    policies: &[(&str, &Policy)],
    b: Bootstrap,
    min_ess: f64,
    penalty_us: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy value: mean cost per decision (us) = wait + {penalty_us} us per move; \
         {} explorable rows ({} decided by guards or safety rules, {} at other points); \
         95 % intervals from {} block-bootstrap resamples of {} rows, seed {}",
        logs.rows.len(),
        logs.unexplorable,
        logs.elsewhere,
        b.resamples,
        b.block_rows,
        b.seed
    );
    let (lo, hi) = logging_estimate(&logs.rows, &logs.files, b).ips_ci;
    let _ = writeln!(
        out,
        "  logging policy (on-policy mean): {:.1} [{lo:.1}, {hi:.1}]; the recordings superseded {} \
         decisions (made while their task's last recorded one was in its window) and censored {}",
        logging_mean(&logs.rows),
        logs.superseded,
        logs.censored
    );
    let ests: Vec<(&str, Estimate)> = policies
        .iter()
        .map(|(name, pi)| (*name, estimate(&logs.rows, &logs.files, pi, b)))
        .collect();
    let base = policies
        .iter()
        .find(|(n, _)| *n == "heuristic")
        .map(|p| p.1);
    // A policy's SNIPS over the heuristic's, paired, where both exist.
    let vs = |rows: &[Logged], files: &[Range<usize>], name: &str, pi: &Policy| match base {
        Some(h) if name != "heuristic" => {
            let (r, (lo, hi)) = ratio(rows, files, pi, h, b);
            format!("  vs heuristic x{r:.3} [{lo:.3}, {hi:.3}]")
        }
        _ => String::new(),
    };
    let explored = logs.explored();
    if explored {
        for ((name, e), (_, pi)) in ests.iter().zip(policies) {
            let _ = writeln!(
                out,
                "  {name:<10} {}{}",
                fmt_est(e),
                vs(&logs.rows, &logs.files, name, pi)
            );
        }
    }
    let mut points: Vec<u32> = logs.rows.iter().map(|r| r.point).collect();
    points.sort_unstable();
    points.dedup();
    for p in points {
        // One point's rows, with each file's range mapped to them.  The
        // logging policy's measured mean, with its interval, is what an
        // on-policy log (no exploration) can give: the check of another
        // log's estimates.
        let at = subset(logs, |i| logs.rows[i].point == p);
        let (rows, files) = (&at.rows, &at.files);
        let (lo, hi) = logging_estimate(rows, files, b).ips_ci;
        let _ = writeln!(
            out,
            "  at {} ({} rows, logging mean {:.1} [{lo:.1}, {hi:.1}]){}",
            dataset::point_name(p as i64),
            rows.len(),
            logging_mean(rows),
            if explored { ":" } else { "" }
        );
        if !explored {
            continue;
        }
        for (name, pi) in policies {
            let e = estimate(rows, files, pi, b);
            let _ = writeln!(
                out,
                "    {name:<10} {}{}",
                fmt_est(&e),
                vs(rows, files, name, pi)
            );
        }
    }
    for w in warnings(logs, &ests, min_ess) {
        let _ = writeln!(out, "  warning: {w}");
    }
    let _ = writeln!(
        out,
        "  (decisions are not independent: a refused steal raises the next one's failed-balance \
         count, and every move changes the queues the next decisions see; the estimates are of \
         changing one decision under the logging policy, and the benchmark judges a deployment)"
    );
    out
}

/// The training rows of a cost-sensitive reduction: label (migrate?) and
/// weight (normalised to mean 1) per row, with each point's mean cost as
/// control variate.
pub fn reduce(rows: &[Logged]) -> (Vec<bool>, Vec<f64>) {
    let mut mean = std::collections::BTreeMap::<u32, (f64, usize)>::new();
    for r in rows {
        let e = mean.entry(r.point).or_default();
        e.0 += r.cost;
        e.1 += 1;
    }
    let (mut labels, mut weights) = (Vec::new(), Vec::new());
    for r in rows {
        let (sum, n) = mean[&r.point];
        let g = (r.cost - sum / n as f64) / r.prop;
        // Delta = Gamma(stay) - Gamma(migrate): only the taken action's
        // Gamma is non-zero.
        let delta = if r.action { -g } else { g };
        labels.push(delta > 0.0);
        weights.push(delta.abs());
    }
    let m = weights.iter().sum::<f64>() / weights.len().max(1) as f64;
    if m > 0.0 {
        weights.iter_mut().for_each(|w| *w /= m);
    }
    (labels, weights)
}

/// Fit a tree on the reduction of `rows` (every feature: outcome logs are
/// the scheduler's own, so its serving-only features are known).
pub fn fit(
    rows: &[Logged],
    max_depth: usize,
    min_weight_leaf: f32,
) -> Result<DecisionTree<f64, usize>> {
    let (labels, weights) = reduce(rows);
    let records = Array2::from_shape_fn((rows.len(), NR_FEATURES), |(r, c)| rows[r].x[c] as f64);
    let targets = Array1::from_iter(labels.iter().map(|l| *l as usize));
    let weights = Array1::from_iter(weights.iter().map(|w| *w as f32));
    let names: Vec<String> = SCHEMA.names().map(str::to_string).collect();
    let data = linfa::Dataset::new(records, targets)
        .with_weights(weights)
        .with_feature_names(names);
    DecisionTree::params()
        .max_depth(Some(max_depth))
        .min_weight_leaf(min_weight_leaf)
        .min_weight_split(2.0 * min_weight_leaf)
        .fit(&data)
        .context("fitting the outcome tree")
}

/// Refuse logs that cannot train: no exploration, or too few rows of
/// either action at a point.
pub fn check_trainable(logs: &Logs, min_explored: usize) -> Result<()> {
    if logs.rows.is_empty() {
        bail!("no explorable row at the requested points: record with --explore EPS");
    }
    if !logs.explored() {
        bail!(
            "deterministic logs (every propensity is {PROP_ONE} ppm): an outcome model needs \
             exploration, record with --explore EPS"
        );
    }
    let mut points: Vec<u32> = logs.rows.iter().map(|r| r.point).collect();
    points.sort_unstable();
    points.dedup();
    for p in points {
        let at = || logs.rows.iter().filter(move |r| r.point == p);
        let migrate = at().filter(|r| r.action).count();
        let stay = at().count() - migrate;
        if migrate.min(stay) < min_explored {
            bail!(
                "at {}: {migrate} rows migrated and {stay} stayed; each needs {min_explored} \
                 (--min-explored): record longer or with a larger --explore",
                dataset::point_name(p as i64)
            );
        }
    }
    Ok(())
}

/// The rows `keep` keeps, each file's range mapped to them.  The counts of
/// what was left out (superseded, censored, ...) stay the whole logs'.
fn subset(logs: &Logs, keep: impl Fn(usize) -> bool) -> Logs {
    let (mut rows, mut files) = (Vec::new(), Vec::new());
    for f in &logs.files {
        let start = rows.len();
        rows.extend(f.clone().filter(|i| keep(*i)).map(|i| logs.rows[i].clone()));
        files.push(start..rows.len());
    }
    Logs {
        rows,
        files,
        unexplorable: logs.unexplorable,
        elsewhere: logs.elsewhere,
        superseded: logs.superseded,
        censored: logs.censored,
        recorded: logs.recorded,
    }
}

/// `train --target outcome`: fit the cost-sensitive tree on exploration
/// logs, at `--points`, check its export against linfa, and print the
/// offline estimates of it, the heuristic and the constant policies on the
/// time tail of each log (the rows it did not train on).
pub fn train(o: &TrainOpts) -> Result<Model> {
    let points = parse_points(&o.points)?;
    let logs = Logs::read(&o.datasets, &points, o.penalty_us)?;
    check_trainable(&logs, o.min_explored)?;
    if !(0.0..1.0).contains(&o.test_fraction) {
        bail!("--test-fraction must be in [0, 1)");
    }
    let lens: Vec<usize> = logs.files.iter().map(|f| f.len()).collect();
    let (train_idx, _) = time_tail_split(&lens, o.test_fraction);
    let in_train: std::collections::HashSet<usize> = train_idx.iter().copied().collect();
    let fit_on = subset(&logs, |i| in_train.contains(&i));
    let test = subset(&logs, |i| !in_train.contains(&i));
    let tree = fit(&fit_on.rows, o.max_depth as usize, o.min_samples_leaf)?;
    let training = TrainingInfo {
        datasets: o.datasets.iter().map(|p| p.display().to_string()).collect(),
        rows: fit_on.rows.len(),
        max_depth: o.max_depth as usize,
        min_samples_leaf: o.min_samples_leaf,
        class_weight: "cost".into(),
        seed: o.seed,
        scheduler_points: false,
        split: Split::TimeTail.name().to_string(),
        target: "outcome".into(),
        penalty_us: Some(o.penalty_us),
    };
    let model =
        Model::from_linfa(&tree, ModelMetrics::default(), training)?.deciding_at(o.points.clone());
    if let Some(r) = logs
        .rows
        .iter()
        .find(|r| model.predict(&r.x) != linfa_predict(&tree, &r.x))
    {
        bail!(
            "internal error: exported tree disagrees with linfa on {:?}",
            r.x
        );
    }
    println!(
        "outcome tree: {} rows at {} ({} explorable, {} decided by guards or safety rules), \
         penalty {} us per move; depth {}, {} nodes",
        fit_on.rows.len(),
        o.points.join(","),
        logs.rows.len(),
        logs.unexplorable,
        o.penalty_us,
        model.depth,
        model.nodes.len()
    );
    print!("{}", model.render());
    let held = if test.rows.is_empty() { &logs } else { &test };
    println!(
        "on the {} (rows it was {}trained on):",
        if test.rows.is_empty() {
            "training rows"
        } else {
            "time tail"
        },
        if test.rows.is_empty() { "" } else { "not " }
    );
    let b = Bootstrap {
        resamples: 500,
        block_rows: 256,
        seed: o.seed,
    };
    {
        let pi = model_policy(&model)?;
        print!(
            "{}",
            report(
                held,
                &[
                    ("model", &pi),
                    ("heuristic", &heuristic_policy),
                    ("stay", &|_: &Logged| false),
                    ("migrate", &|_: &Logged| true),
                ],
                b,
                100.0,
                o.penalty_us,
            )
        );
    }
    model.save(&o.out)?;
    println!("model written to {}", o.out.display());
    Ok(model)
}

/// `eval --policy-value MODEL LOGS...`: the offline estimates of the model,
/// the heuristic and the constant policies on exploration logs.
pub fn policy_value(
    model: &Model,
    paths: &[PathBuf],
    model_points: bool,
    penalty_us: f64,
    b: Bootstrap,
    min_ess: f64,
) -> Result<String> {
    let points = if model_points {
        parse_points(&model.points)?
    } else {
        vec![]
    };
    let logs = Logs::read(paths, &points, penalty_us)?;
    if logs.rows.is_empty() {
        bail!("no explorable row in the logs: record with --explore EPS");
    }
    let pi = model_policy(model)?;
    Ok(report(
        &logs,
        &[
            ("model", &pi),
            ("heuristic", &heuristic_policy),
            ("stay", &|_: &Logged| false),
            ("migrate", &|_: &Logged| true),
        ],
        b,
        min_ess,
        penalty_us,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::bpf_intf as c;

    const RUN_AVG: usize = c::mlsched_feature_FEAT_run_avg_us as usize;
    const STEAL: u32 = c::mig_point_POINT_STEAL_LLC_DSQ;

    fn row(run_avg: i64, action: bool, prop: f64, cost: f64) -> Logged {
        let mut x = [0i64; NR_FEATURES];
        x[RUN_AVG] = run_avg;
        x[c::mlsched_feature_FEAT_dst_allowed as usize] = 1;
        x[c::mlsched_feature_FEAT_decision_point as usize] = STEAL as i64;
        Logged {
            x,
            point: STEAL,
            action,
            prop,
            cost,
            rules: Default::default(),
        }
    }

    /// Logs whose counts are exactly proportional to the propensities
    /// (EPS 0.2, a policy that always stays: per 100 contexts 90 stay, 10
    /// migrate), with costs c(x, stay) and c(x, migrate) deterministic.
    fn balanced(contexts: &[(i64, f64, f64)]) -> Vec<Logged> {
        let mut rows = Vec::new();
        for &(x, stay, migrate) in contexts {
            for k in 0..100 {
                let m = k < 10;
                rows.push(if m {
                    row(x, true, 0.1, migrate)
                } else {
                    row(x, false, 0.9, stay)
                });
            }
        }
        rows
    }

    fn boot() -> Bootstrap {
        Bootstrap {
            resamples: 200,
            block_rows: 50,
            seed: 7,
        }
    }

    /// IPS and SNIPS recover each constant policy's true mean cost on
    /// balanced logs, and the logging mean is the mix of the two actions.
    #[test]
    fn estimates_are_exact_on_balanced_logs() {
        let ctx = [(100, 50.0, 900.0), (5000, 3000.0, 800.0)];
        let rows = balanced(&ctx);
        let files = [0..rows.len()];
        let stay = estimate(&rows, &files, &|_: &Logged| false, boot());
        let migrate = estimate(&rows, &files, &|_: &Logged| true, boot());
        let truth = |f: fn(&(i64, f64, f64)) -> f64| ctx.iter().map(f).sum::<f64>() / 2.0;
        assert!((stay.ips - truth(|c| c.1)).abs() < 1e-9, "{stay:?}");
        assert!((stay.snips - truth(|c| c.1)).abs() < 1e-9);
        assert!((migrate.ips - truth(|c| c.2)).abs() < 1e-9, "{migrate:?}");
        assert!((migrate.snips - truth(|c| c.2)).abs() < 1e-9);
        assert_eq!((migrate.matched, stay.matched), (20, 180));
        let mix = ctx.iter().map(|c| 0.9 * c.1 + 0.1 * c.2).sum::<f64>() / 2.0;
        assert!((logging_mean(&rows) - mix).abs() < 1e-9);
        let logged = logging_estimate(&rows, &files, boot());
        assert!((logged.ips - mix).abs() < 1e-9, "{logged:?}");
        assert!(logged.ips_ci.0 <= mix && mix <= logged.ips_ci.1);
        // The best policy migrates only the long runs: 50 and 800.
        let best = estimate(&rows, &files, &|r: &Logged| r.x[RUN_AVG] >= 2000, boot());
        assert!((best.snips - 425.0).abs() < 1e-9, "{best:?}");
        assert!(best.snips_ci.0 <= best.snips && best.snips <= best.snips_ci.1);
    }

    /// The paired ratio is the ratio of the two SNIPS estimates, its
    /// interval holds it, and where both policies share most rows (and
    /// their noise) it is tighter than the two intervals combined as if
    /// independent.
    #[test]
    fn paired_ratio_against_the_heuristic() {
        let ctx = [(100, 50.0, 900.0), (5000, 3000.0, 800.0)];
        let rows = balanced(&ctx);
        let files = [0..rows.len()];
        let best = |r: &Logged| r.x[RUN_AVG] >= 2000;
        let stay = |_: &Logged| false;
        let (r, (lo, hi)) = ratio(&rows, &files, &best, &stay, boot());
        assert!((r - 425.0 / 1525.0).abs() < 1e-9, "{r}");
        assert!(lo <= r && r <= hi, "{lo} {r} {hi}");
        // Noisy costs that both policies see alike: the policy differs
        // from "stay" on one row in 50, where migrating costs 10 % less.
        let mut rng = XorShift64Star::from_seed(3);
        let noisy: Vec<Logged> = (0..4000)
            .map(|i| {
                let level = 1000.0 + (rng.next_u64() % 20_000) as f64;
                let m = i % 10 == 0;
                let mut r = row(i % 50, m, if m { 0.1 } else { 0.9 }, level);
                if m && i % 50 == 0 {
                    r.cost = level * 0.9;
                }
                r
            })
            .collect();
        let files = [0..noisy.len()];
        let pi = |r: &Logged| r.x[RUN_AVG] == 0;
        let (r, (lo, hi)) = ratio(&noisy, &files, &pi, &stay, boot());
        let a = estimate(&noisy, &files, &pi, boot());
        let h = estimate(&noisy, &files, &stay, boot());
        assert!(lo <= r && r <= hi, "{lo} {r} {hi}");
        // Independent errors would add in quadrature: pairing beats that.
        let rel = |e: &Estimate| (e.snips_ci.1 - e.snips_ci.0) / e.snips;
        let apart = rel(&a).hypot(rel(&h));
        assert!(hi - lo < apart * 0.8, "paired {lo}..{hi}, apart {apart}");
    }

    /// Equal weights give ESS = n; SNIPS equals IPS when the weights
    /// average 1.
    #[test]
    fn ess_and_snips_in_the_simple_cases() {
        let rows: Vec<Logged> = (0..40).map(|i| row(i, false, 0.5, i as f64)).collect();
        let e = estimate(&rows, &[0..40], &|_: &Logged| false, boot());
        assert!((e.ess - 40.0).abs() < 1e-9);
        // 40 rows in blocks of at most 2: the interval is not one point.
        assert!(e.ips_ci.0 < e.ips_ci.1, "{e:?}");
        // Weights 2 on half the rows and 0 on the rest average 1.
        let mixed: Vec<Logged> = (0..40).map(|i| row(i, i % 2 == 0, 0.5, i as f64)).collect();
        let e = estimate(&mixed, &[0..40], &|_: &Logged| true, boot());
        assert!((e.ips - e.snips).abs() < 1e-9, "{e:?}");
        assert!((e.ess - 20.0).abs() < 1e-9);
    }

    /// Over many seeded noisy logs, the 95 % SNIPS interval covers the
    /// true value most of the time.
    #[test]
    fn intervals_cover_the_truth() {
        let (truth_stay, truth_migrate) = (300.0, 700.0);
        let mut covered = 0;
        let trials = 100;
        for t in 0..trials {
            let mut rng = XorShift64Star::from_seed(t);
            let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let rows: Vec<Logged> = (0..2000)
                .map(|_| {
                    let migrate = u() < 0.1;
                    let noise = (u() - 0.5) * 400.0;
                    let cost = if migrate { truth_migrate } else { truth_stay } + noise;
                    row(1, migrate, if migrate { 0.1 } else { 0.9 }, cost)
                })
                .collect();
            let b = Bootstrap {
                resamples: 200,
                block_rows: 20,
                seed: t,
            };
            let e = estimate(&rows, &[0..rows.len()], &|_: &Logged| true, b);
            if e.snips_ci.0 <= truth_migrate && truth_migrate <= e.snips_ci.1 {
                covered += 1;
            }
        }
        assert!(covered >= 85, "covered {covered} of {trials}");
    }

    /// Logs without exploration support no estimate and no training.
    #[test]
    fn deterministic_logs_are_refused() {
        let rows: Vec<Logged> = (0..500).map(|i| row(i, i % 2 == 0, 1.0, 1.0)).collect();
        let logs = Logs {
            files: vec![0..rows.len()],
            rows,
            ..Default::default()
        };
        assert!(!logs.explored());
        let e = check_trainable(&logs, 10).unwrap_err().to_string();
        assert!(e.contains("deterministic"), "{e}");
        let w = warnings(&logs, &[], 100.0);
        assert!(w[0].contains("deterministic"), "{w:?}");
        let text = report(
            &logs,
            &[("stay", &|_: &Logged| false)],
            boot(),
            100.0,
            500.0,
        );
        assert!(
            text.contains("deterministic") && !text.contains("IPS"),
            "{text}"
        );
        // What an on-policy log gives: its measured mean, per point.
        assert!(
            text.contains("at steal_llc_dsq (500 rows, logging mean 1.0 [1.0, 1.0])"),
            "{text}"
        );
    }

    /// Migrating is cheaper exactly for runs of 2 ms or more: the outcome
    /// tree learns that split, with both sides right, from logs where the
    /// policy always stayed.
    #[test]
    fn the_reduction_learns_which_action_is_cheaper() {
        let ctx: Vec<(i64, f64, f64)> = (0..20)
            .map(|i| {
                let run = 250 * i as i64;
                if run >= 2000 {
                    (run, 3000.0, 900.0)
                } else {
                    (run, 100.0, 900.0)
                }
            })
            .collect();
        let rows = balanced(&ctx);
        let logs = Logs {
            files: vec![0..rows.len()],
            rows,
            ..Default::default()
        };
        check_trainable(&logs, 10).unwrap();
        let tree = fit(&logs.rows, 3, 1.0).unwrap();
        for &(run, _, _) in &ctx {
            let r = row(run, false, 1.0, 0.0);
            assert_eq!(
                crate::learn::model::linfa_predict(&tree, &r.x),
                run >= 2000,
                "run_avg {run}"
            );
        }
        assert!(
            check_trainable(&logs, 400).is_err(),
            "200 migrated rows < 400"
        );
    }

    /// "heuristic" is the recording run's: a cache-hot requeue goes to the
    /// pool under the shipped rules and stays under --requeue-local.
    #[test]
    fn the_heuristic_is_the_recording_runs() {
        let mut r = row(1, false, 0.9, 0.0);
        r.point = c::mig_point_POINT_ENQ_REQUEUE;
        r.x[c::mlsched_feature_FEAT_decision_point as usize] = r.point as i64;
        r.x[c::mlsched_feature_FEAT_delta_hot as usize] = 1;
        assert!(heuristic_policy(&r));
        r.rules.requeue_local = true;
        assert!(!heuristic_policy(&r));
        r.x[c::mlsched_feature_FEAT_delta_hot as usize] = 0;
        assert!(heuristic_policy(&r), "a cold requeue leaves either way");
    }

    /// Logs::read takes each file's Rules from its header.
    #[test]
    fn logs_carry_the_recording_runs_rules() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, meta: &[(&str, String)]| {
            let path = d.path().join(name);
            let mut w = dataset::Writer::create_with_outcome(&path, meta).unwrap();
            let mut x = [0i64; NR_FEATURES];
            x[c::mlsched_feature_FEAT_dst_allowed as usize] = 1;
            let o = Outcome {
                propensity_ppm: PROP_ONE,
                ..Default::default()
            };
            let ctx = dataset::RowCtx {
                point: c::mig_point_POINT_ENQ_REQUEUE as i64,
                src: 0,
                dst: 0,
            };
            w.write_outcome(&x, true, ctx, &o).unwrap();
            w.finish(&[]).unwrap()
        };
        let local = heuristic::Rules {
            requeue_local: true,
        };
        let files = [
            write("local.csv", &[local.meta()]),
            write("shipped.csv", &[]),
        ];
        let logs = Logs::read(&files, &[], 0.0).unwrap();
        let rules: Vec<_> = logs.rows.iter().map(|r| r.rules).collect();
        assert_eq!(rules, [local, heuristic::Rules::default()]);
    }

    /// The penalty sets where migrating pays: a move that saves 1000 us of
    /// wait is worth it at P = 0, not at P = 5000.
    #[test]
    fn the_penalty_moves_the_verdict() {
        let o = |moved: bool, wait_us: i64| Outcome {
            moved,
            wait_us,
            propensity_ppm: PROP_ONE,
            ..Default::default()
        };
        let rows = |p: f64| -> Vec<Logged> {
            (0..200)
                .map(|k| {
                    let m = k % 10 == 0;
                    let cost = cost_us(&if m { o(true, 200) } else { o(false, 1200) }, p);
                    row(1, m, if m { 0.1 } else { 0.9 }, cost)
                })
                .collect()
        };
        for (p, migrate) in [(0.0, true), (5000.0, false)] {
            let r = rows(p);
            let tree = fit(&r, 2, 1.0).unwrap();
            assert_eq!(
                crate::learn::model::linfa_predict(&tree, &r[0].x),
                migrate,
                "P = {p}"
            );
        }
        assert_eq!(
            cost_us(
                &Outcome {
                    moved: true,
                    moved_again: true,
                    wait_us: 3,
                    ..Default::default()
                },
                10.0
            ),
            23.0
        );
    }
}

/// The shipped outcome model is what `train --target outcome` makes of the
/// shipped exploration logs, with the settings the model file records.
#[cfg(all(test, feature = "parquet"))]
mod shipped {
    use super::*;
    use std::path::Path;

    #[test]
    fn outcome_model_retrains_from_the_shipped_logs() {
        let top = Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = Model::load(&top.join("model/outcome.json")).expect("model/outcome.json");
        let t = &model.training;
        assert_eq!(t.target, "outcome");
        let tmp = tempfile::tempdir().unwrap();
        let o = TrainOpts::of_model(&model, top);
        assert_eq!(o.target, crate::learn::train::Target::Outcome);
        assert_eq!(
            o.penalty_us,
            t.penalty_us.expect("an outcome model records its penalty")
        );
        let again = train(&TrainOpts {
            out: tmp.path().join("outcome.json"),
            ..o
        })
        .unwrap();
        assert_eq!(
            again.training.rows, t.rows,
            "the same rows (test fraction 0.2)"
        );
        assert_eq!(again.nodes, model.nodes);
        assert_eq!(again.points, model.points);
    }
}
