//! Feature vectors for checking the BPF decision against its Rust twin:
//! every combination of the inputs the rule reads, then random vectors
//! (fixed seed, so a failure is reproducible).  And the replay check of the
//! tree: the BPF walk against linfa on every row of datasets.  And the
//! record check: every verdict a `run --record` of the heuristic policy
//! wrote equals its point's heuristic (the rule the scheduler followed
//! there before the gate asked), point by point.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::learn::dataset;
use crate::learn::features::{FeatureVec, NR_FEATURES, SCHEMA};
use crate::learn::model::{linfa_predict, Model};
use crate::rng::XorShift64Star;
use crate::sched::bpf_intf as c;

use crate::sched::heuristic::RULE_INPUTS;

pub fn vectors(random: usize, seed: u64) -> Vec<FeatureVec> {
    let mut out = Vec::new();
    for mask in 0..(1u32 << RULE_INPUTS.len()) {
        let mut v = [0i64; NR_FEATURES];
        for (bit, idx) in RULE_INPUTS.iter().enumerate() {
            v[*idx as usize] = ((mask >> bit) & 1) as i64;
        }
        out.push(v);
    }
    let mut rng = XorShift64Star::new(seed);
    for _ in 0..random {
        let mut v = [0i64; NR_FEATURES];
        for x in v.iter_mut() {
            // mostly small values, sometimes large or negative ones
            let r = rng.next_u64();
            *x = match r % 4 {
                0 => (r >> 8) as i64,
                1 => -((r >> 40) as i64),
                _ => ((r >> 8) % 3) as i64,
            };
        }
        out.push(v);
    }
    out
}

/// Replay every row of `datasets` through the BPF walk (sched::tree) and
/// compare with linfa's prediction; fails on the first dataset with any
/// disagreement, listing a few.  Returns one summary line per dataset.
pub fn replay(model: &Model, datasets: &[PathBuf]) -> Result<Vec<String>> {
    let linfa = model.linfa_tree()?;
    let mut lines = Vec::new();
    for path in datasets {
        let ds = dataset::read(path)?;
        let bpf = crate::sched::tree::replay(model, &ds.x)?;
        let mut bad = Vec::new();
        for (i, (x, v)) in ds.x.iter().zip(&bpf).enumerate() {
            let want = linfa_predict(&linfa, x);
            if *v != want as i32 {
                bad.push(format!(
                    "row {i}: BPF {v}, linfa {}: {}",
                    want as i32,
                    crate::sched::twin::describe(x)
                ));
            }
        }
        if !bad.is_empty() {
            bail!(
                "{}: the BPF walk disagrees with linfa on {} of {} rows:\n{}",
                path.display(),
                bad.len(),
                ds.len(),
                bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
            );
        }
        let migrate = bpf.iter().filter(|v| **v == 1).count();
        lines.push(format!(
            "replay: {}: the BPF walk agrees with linfa on all {} rows ({migrate} migrate)",
            path.display(),
            ds.len()
        ));
    }
    Ok(lines)
}

/// What is wrong with the scheduler's features of one recorded decision at
/// `point`, by the definitions of bpf/features.def, if anything: the
/// decision point feature is the point, the pool of an enqueue is in the
/// task's LLC, and the task history stays in its ranges.
pub fn feature_problem(x: &FeatureVec, point: i64) -> Option<String> {
    let f = |i: u32| x[i as usize];
    let enqueue = [
        c::mig_point_POINT_ENQ_WAKEUP as i64,
        c::mig_point_POINT_ENQ_REQUEUE as i64,
    ]
    .contains(&point);
    if f(c::mlsched_feature_FEAT_decision_point) != point {
        return Some("decision_point is not the row's point".into());
    }
    if enqueue && f(c::mlsched_feature_FEAT_same_llc) != 1 {
        return Some("same_llc is not 1 at an enqueue (dst is the task's LLC's pool)".into());
    }
    if !(0..=1_000_000).contains(&f(c::mlsched_feature_FEAT_since_mig_us)) {
        return Some("since_mig_us outside [0, 1 s]".into());
    }
    for i in [
        c::mlsched_feature_FEAT_run_avg_us,
        c::mlsched_feature_FEAT_burst_avg_us,
        c::mlsched_feature_FEAT_mig_rate,
        c::mlsched_feature_FEAT_dst_len,
        c::mlsched_feature_FEAT_src_len,
    ] {
        if f(i) < 0 {
            return Some(format!("{} is negative", SCHEMA.features[i as usize].name));
        }
    }
    None
}

/// Check serving datasets that `run --record` wrote under the heuristic
/// policy: at every decision point, each row's verdict (its label) must be
/// what the point's heuristic says on its features, and its features must
/// keep their definitions (feature_problem()); some rows must carry a task
/// history (run_avg_us > 0).  Fails on any disagreement, on a file of
/// another policy, and on a file without rows.  Returns one line per point
/// seen, per file.
pub fn check_record(paths: &[PathBuf]) -> Result<Vec<String>> {
    use std::collections::BTreeMap;
    let mut lines = Vec::new();
    for path in paths {
        let ds = dataset::read(path)?;
        match ds.meta.get("policy").map(String::as_str) {
            Some("heuristic") => {}
            other => bail!(
                "{}: recorded under policy {other:?}; only a heuristic recording shows the old rule",
                path.display()
            ),
        }
        if ds.ctx.len() != ds.len() || ds.is_empty() {
            bail!("{}: no rows with a decision point", path.display());
        }
        let rules = crate::sched::heuristic::Rules::from_meta(&ds.meta);
        // point -> (rows, agreeing rows, moves allowed)
        let mut per: BTreeMap<i64, (usize, usize, usize)> = BTreeMap::new();
        let mut bad = Vec::new();
        for (i, ((x, taken), ctx)) in ds.x.iter().zip(&ds.y).zip(&ds.ctx).enumerate() {
            // The policy's own verdict: under --explore the action taken
            // (the label) may be the coin's.
            let y = &ds.out.get(i).map_or(*taken, |o| o.policy_action);
            if let Some(p) = feature_problem(x, ctx.point) {
                bail!(
                    "{}: row {i} at {}: {p}: {}",
                    path.display(),
                    dataset::point_name(ctx.point),
                    crate::sched::twin::describe(x)
                );
            }
            let want = u32::try_from(ctx.point)
                .map(|p| rules.decide_at(x, p).allows())
                .unwrap_or(!*y);
            let e = per.entry(ctx.point).or_default();
            e.0 += 1;
            e.2 += *y as usize;
            if want == *y {
                e.1 += 1;
            } else if bad.len() < 5 {
                bad.push(format!(
                    "row {i} at {}: recorded {}, heuristic {}: {}",
                    dataset::point_name(ctx.point),
                    *y as u8,
                    want as u8,
                    crate::sched::twin::describe(x)
                ));
            }
        }
        let run_avg = c::mlsched_feature_FEAT_run_avg_us as usize;
        if ds.x.iter().all(|x| x[run_avg] == 0) {
            bail!(
                "{}: no row has a task history (run_avg_us is 0 in all {} rows)",
                path.display(),
                ds.len()
            );
        }
        for (point, (rows, agree, allowed)) in &per {
            lines.push(format!(
                "record: {}: {}: {agree} of {rows} verdicts ({:.2}%) equal the point's heuristic ({allowed} allowed)",
                path.display(),
                dataset::point_name(*point),
                *agree as f64 * 100.0 / *rows as f64
            ));
        }
        if !bad.is_empty() {
            bail!(
                "{}: recorded verdicts differ from their point's heuristic:\n{}",
                path.display(),
                bad.join("\n")
            );
        }
    }
    Ok(lines)
}

/// `selftest --check-explore`: what `run --explore EPS --record` logged
/// obeys the exploration's rules (bpf/outcome.bpf.h), row by row.
pub fn check_explore(paths: &[PathBuf], eps: f64) -> Result<Vec<String>> {
    use crate::learn::dataset::PROP_ONE;
    if eps <= 0.0 {
        bail!("--check-explore needs the --explore EPS the recording was made with");
    }
    let eps_ppm = (eps * 1e6).round() as i64;
    let (own, other) = (PROP_ONE - eps_ppm / 2, eps_ppm / 2);
    let mut lines = Vec::new();
    for path in paths {
        let p = path.display();
        let ds = dataset::read(path)?;
        if ds.out.is_empty() || ds.ctx.len() != ds.len() {
            bail!("{p}: no outcome columns: not a `run --record` file of this build");
        }
        // blocks[enum explore_block], explored, flipped
        let (mut blocks, mut explored, mut flipped) = ([0usize; 5], 0, 0);
        for (i, ((x, taken), o)) in ds.x.iter().zip(&ds.y).zip(&ds.out).enumerate() {
            let at = || {
                format!(
                    "{p}: row {} at {}",
                    i + 1,
                    dataset::point_name(ds.ctx[i].point)
                )
            };
            let guarded = crate::sched::heuristic::ml_guard(x).is_some();
            if guarded != (o.explore_block == c::explore_block_EXPLORE_GUARD as i64) {
                bail!(
                    "{}: guard {guarded} but explore_block {}: {}",
                    at(),
                    o.explore_block,
                    crate::sched::twin::describe(x)
                );
            }
            match usize::try_from(o.explore_block)
                .ok()
                .filter(|b| *b < blocks.len())
            {
                Some(b) => blocks[b] += 1,
                None => bail!("{}: explore_block {}", at(), o.explore_block),
            }
            if o.explore_block == c::explore_block_EXPLORE_OFF as i64 {
                bail!("{}: exploration was off", at());
            }
            let agrees = *taken == o.policy_action;
            if o.explore_block != 0 {
                if o.explored || o.propensity_ppm != PROP_ONE || !agrees {
                    bail!(
                        "{}: not explorable (block {}), yet explored {}, propensity {} ppm, \
                         action {} against the policy's {}",
                        at(),
                        o.explore_block,
                        o.explored,
                        o.propensity_ppm,
                        taken,
                        o.policy_action
                    );
                }
                continue;
            }
            let want = if agrees { own } else { other };
            if o.propensity_ppm != want || (!o.explored && !agrees) {
                bail!(
                    "{}: explored {}, action {} against the policy's {}: propensity {} ppm, \
                     expected {want}",
                    at(),
                    o.explored,
                    taken,
                    o.policy_action,
                    o.propensity_ppm
                );
            }
            explored += o.explored as usize;
            flipped += !agrees as usize;
        }
        if explored == 0 {
            bail!("{p}: no explored row in {} rows", ds.len());
        }
        let meta = |k: &str| ds.meta.get(k).map_or("?", String::as_str);
        lines.push(format!(
            "explore: {p}: {} rows, {} explorable: {explored} explored ({flipped} against the \
             policy); not explorable: {} guarded, {} RCU readers, {} starved; superseded {}, \
             censored {}, unjoined {}",
            ds.len(),
            blocks[0],
            blocks[1],
            blocks[2],
            blocks[3],
            meta("superseded"),
            meta("censored"),
            meta("unjoined"),
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::dataset::Outcome;
    use crate::sched::heuristic::{decide, Verdict};

    /// Small vectors (a dataset holds integers within ±2^53), each at one
    /// of the scheduler's points in turn, within one LLC: (row, point,
    /// vector).
    fn point_vectors(random: usize, seed: u64) -> Vec<(usize, u32, FeatureVec)> {
        use crate::sched::heuristic::SCHEDULER_POINTS;
        vectors(random, seed)
            .iter()
            .map(|v| v.map(|x| x.rem_euclid(3)))
            .enumerate()
            .map(|(i, mut v)| {
                let point = SCHEDULER_POINTS[i % SCHEDULER_POINTS.len()];
                v[c::mlsched_feature_FEAT_decision_point as usize] = point as i64;
                v[c::mlsched_feature_FEAT_same_llc as usize] = 1;
                (i, point, v)
            })
            .collect()
    }

    /// A heuristic recording passes point by point; one verdict that is
    /// not its point's rule, or a recording of another policy, fails.
    #[test]
    fn record_check_finds_a_verdict_off_the_rule() {
        use crate::learn::dataset::{RowCtx, Writer};
        use crate::sched::heuristic::{decide_at, SCHEDULER_POINTS};
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, policy: &str, flip: Option<usize>, broken: Option<usize>| {
            let path = d.path().join(name);
            let mut w =
                Writer::create_with_context(&path, &[("policy", policy.to_string())]).unwrap();
            for (i, point, mut v) in point_vectors(200, 5) {
                if Some(i) == broken {
                    v[c::mlsched_feature_FEAT_decision_point as usize] = 99;
                }
                let v = &v;
                let allows = decide_at(v, point).allows() ^ (flip == Some(i));
                let ctx = RowCtx {
                    point: point as i64,
                    src: 0,
                    dst: 1,
                };
                w.write_ctx(v, allows, ctx).unwrap();
            }
            w.finish(&[]).unwrap()
        };
        let good = write("good.csv", "heuristic", None, None);
        let lines = check_record(&[good]).unwrap();
        assert_eq!(lines.len(), SCHEDULER_POINTS.len(), "{lines:?}");
        assert!(lines.iter().all(|l| l.contains("(100.00%)")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("enq_wakeup")), "{lines:?}");
        let bad = write("bad.csv", "heuristic", Some(9), None);
        let e = check_record(&[bad]).unwrap_err().to_string();
        assert!(e.contains("row 9 at"), "{e}");
        let off = write("off.csv", "heuristic", None, Some(4));
        let e = check_record(&[off]).unwrap_err().to_string();
        assert!(
            e.contains("row 4 at") && e.contains("decision_point"),
            "{e}"
        );
        let ml = write("ml.csv", "ml", None, None);
        assert!(check_record(&[ml]).is_err());
    }

    /// A log that follows the exploration's rules passes; each broken
    /// rule (a guarded row explored, a wrong propensity, an unexplored
    /// row against the policy, no exploration at all) fails.
    #[test]
    fn explore_check_finds_each_broken_rule() {
        use crate::learn::dataset::{tests::outcome_sample, RowCtx, Writer};
        let d = tempfile::tempdir().unwrap();
        let pinned = c::mlsched_feature_FEAT_migration_disabled as usize;
        let allowed = c::mlsched_feature_FEAT_dst_allowed as usize;
        // (guarded, explored, policy, taken, propensity, block)
        type Row = (bool, bool, bool, bool, i64, i64);
        let write = |name: &str, rows: &[Row]| {
            let path = d.path().join(name);
            let mut w = Writer::create_with_outcome(&path, &[]).unwrap();
            for (i, &(guarded, explored, policy, taken, prop, block)) in rows.iter().enumerate() {
                let mut x = [0i64; NR_FEATURES];
                x[allowed] = 1;
                x[pinned] = guarded as i64;
                let o = Outcome {
                    explored,
                    policy_action: policy,
                    propensity_ppm: prop,
                    explore_block: block,
                    ..outcome_sample(i as i64)
                };
                let ctx = RowCtx {
                    point: c::mig_point_POINT_STEAL_CPU_DSQ as i64,
                    src: 0,
                    dst: 1,
                };
                w.write_outcome(&x, taken, ctx, &o).unwrap();
            }
            w.finish(&[("superseded", "4".into())]).unwrap()
        };
        let good: Vec<Row> = vec![
            (true, false, false, false, 1_000_000, 1),
            (false, false, true, true, 950_000, 0),
            (false, true, true, true, 950_000, 0),
            (false, true, true, false, 50_000, 0),
            (false, false, false, false, 1_000_000, 2),
        ];
        let lines = check_explore(&[write("good.csv", &good)], 0.1).unwrap();
        assert!(
            lines[0].contains("5 rows, 3 explorable: 2 explored (1 against the policy)")
                && lines[0].contains("1 guarded, 1 RCU readers")
                && lines[0].contains("superseded 4"),
            "{lines:?}"
        );
        let broken = |k: usize, row: Row| {
            let mut rows = good.clone();
            rows[k] = row;
            check_explore(&[write("bad.csv", &rows)], 0.1)
                .unwrap_err()
                .to_string()
        };
        assert!(broken(0, (true, true, false, true, 50_000, 1)).contains("not explorable"));
        assert!(broken(0, (true, false, false, false, 1_000_000, 0)).contains("guard true"));
        assert!(broken(1, (false, false, true, true, 900_000, 0)).contains("expected 950000"));
        assert!(broken(1, (false, false, true, false, 50_000, 0)).contains("explored false"));
        assert!(broken(1, (false, false, true, true, 1_000_000, 4)).contains("exploration was off"));
        let none: Vec<Row> = vec![good[0], good[1]];
        let e = check_explore(&[write("none.csv", &none)], 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no explored row"), "{e}");
        assert!(check_explore(&[write("eps.csv", &good)], 0.0).is_err());
    }

    /// Under --explore the label is the action taken, which may be the
    /// coin's: the check reads the policy's own action from the outcome
    /// columns, and still finds a policy action off the rule.
    #[test]
    fn record_check_reads_the_policy_action_of_explored_rows() {
        use crate::learn::dataset::{tests::outcome_sample, RowCtx, Writer};
        use crate::sched::heuristic::decide_at;
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, off_rule: Option<usize>| {
            let path = d.path().join(name);
            let mut w =
                Writer::create_with_outcome(&path, &[("policy", "heuristic".to_string())]).unwrap();
            for (i, point, v) in point_vectors(100, 7) {
                let policy = decide_at(&v, point).allows() ^ (off_rule == Some(i));
                // Every third row explored against the policy.
                let taken = policy ^ (i % 3 == 0);
                let o = Outcome {
                    policy_action: policy,
                    explored: i % 3 == 0,
                    ..outcome_sample(i as i64)
                };
                let ctx = RowCtx {
                    point: point as i64,
                    src: 0,
                    dst: 1,
                };
                w.write_outcome(&v, taken, ctx, &o).unwrap();
            }
            w.finish(&[]).unwrap()
        };
        let lines = check_record(&[write("explored.csv", None)]).unwrap();
        assert!(lines.iter().all(|l| l.contains("(100.00%)")), "{lines:?}");
        let e = check_record(&[write("off.csv", Some(5))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 5 at"), "{e}");
    }

    #[test]
    fn vectors_reach_every_verdict() {
        let vs = vectors(100, 7);
        assert_eq!(vs.len(), 32 + 100);
        for want in Verdict::ALL {
            assert!(
                vs.iter().any(|v| decide(v) == want),
                "{want:?} never reached"
            );
        }
        assert_eq!(vectors(10, 7), vectors(10, 7));
    }
}
