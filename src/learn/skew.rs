//! `scx_mlsched skew --train DATASET... --serving DATASET...`: does the
//! model see in service what it was trained on?
//!
//! Training rows come from the kernel's can_migrate_task() (`collect`),
//! serving rows from the scheduler's own decisions (`run --record`).  A
//! model is only as good as the overlap of the two.  Per feature, this
//! compares the two distributions (range, share of non-zero values,
//! distinct values) and flags:
//!   - `constant-serving` / `constant-training`: one value on one side only
//!     (the feature cannot mean the same on both);
//!   - `out-of-range`: a feature the model splits on takes values in service
//!     outside the training range (its thresholds were never tested there);
//!   - `dead-splits`: thresholds of the model that no serving value crosses
//!     (those branches are decided by the serving side's constant).
//!
//! A `serving-only` feature (features.def) is 0 in every training row by
//! definition: it is shown, marked, and never flagged.
//!
//! Serving rows are also counted per decision point (enum mig_point).
//! `--strict` makes any flag an error, for scripts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::learn::dataset::{self, point_name, Dataset};
use crate::learn::features::{FeatureVec, Parity, NR_FEATURES, SCHEMA};
use crate::learn::model::Model;
use crate::sched::model_map::ModelSource;

#[derive(Debug, Clone, Args)]
pub struct SkewOpts {
    /// Training datasets (as `collect` writes them, or Parquet).
    #[arg(long, required = true, num_args = 1.., value_name = "DATASET")]
    pub train: Vec<PathBuf>,
    /// Serving datasets (as `run --record` writes them).
    #[arg(long, required = true, num_args = 1.., value_name = "DATASET")]
    pub serving: Vec<PathBuf>,
    /// The model whose splits matter (default: the shipped model).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Exit with an error when any feature is flagged.
    #[arg(long)]
    pub strict: bool,
    /// Compare only the training rows of decision points the scheduler has
    /// (as `train --scheduler-points` trains).
    #[arg(long)]
    pub scheduler_points: bool,
}

/// Distinct values kept per feature; more are counted as "many".
const DISTINCT_CAP: usize = 64;

/// One side's distribution of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Dist {
    pub min: i64,
    pub max: i64,
    pub nonzero: f64,
    /// Distinct values, up to DISTINCT_CAP + 1.
    pub distinct: usize,
}

impl Dist {
    fn of(rows: &[&FeatureVec], i: usize) -> Self {
        let mut seen = BTreeSet::new();
        let (mut min, mut max, mut nz) = (i64::MAX, i64::MIN, 0usize);
        for x in rows {
            let v = x[i];
            min = min.min(v);
            max = max.max(v);
            nz += (v != 0) as usize;
            if seen.len() <= DISTINCT_CAP {
                seen.insert(v);
            }
        }
        Dist {
            min,
            max,
            nonzero: nz as f64 / rows.len().max(1) as f64,
            distinct: seen.len(),
        }
    }

    fn text(&self) -> String {
        let distinct = if self.distinct > DISTINCT_CAP {
            format!(">{DISTINCT_CAP}")
        } else {
            self.distinct.to_string()
        };
        format!(
            "[{}, {}] {:.1}% ≠0, {distinct} values",
            self.min,
            self.max,
            100.0 * self.nonzero
        )
    }
}

/// What the report found about one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSkew {
    pub name: &'static str,
    pub train: Dist,
    pub serving: Dist,
    /// The model's splits on this feature.
    pub splits: usize,
    /// ... that no serving value crosses.
    pub dead_splits: usize,
    /// Share of serving rows outside the training range.
    pub out_of_range: f64,
    pub flags: Vec<&'static str>,
    /// Only the scheduler computes it (imitation training leaves it out).
    pub serving_only: bool,
}

pub struct Skew {
    pub features: Vec<FeatureSkew>,
    pub train_rows: usize,
    pub serving_rows: usize,
    pub train_migrate: f64,
    pub serving_migrate: f64,
    /// Serving rows per decision point name.
    pub points: BTreeMap<&'static str, usize>,
}

impl Skew {
    pub fn flagged(&self) -> impl Iterator<Item = &FeatureSkew> {
        self.features.iter().filter(|f| !f.flags.is_empty())
    }
}

fn migrate_share(sets: &[Dataset]) -> f64 {
    let n: usize = sets.iter().map(Dataset::len).sum();
    sets.iter().map(Dataset::positives).sum::<usize>() as f64 / n.max(1) as f64
}

pub fn compare(model: &Model, train: &[Dataset], serving: &[Dataset]) -> Skew {
    let t: Vec<&FeatureVec> = train.iter().flat_map(|d| &d.x).collect();
    let s: Vec<&FeatureVec> = serving.iter().flat_map(|d| &d.x).collect();
    let features = SCHEMA
        .names()
        .enumerate()
        .take(NR_FEATURES)
        .map(|(i, name)| {
            let (train, serving) = (Dist::of(&t, i), Dist::of(&s, i));
            let thresholds: Vec<i64> = model
                .nodes
                .iter()
                .filter(|n| !n.is_leaf() && n.feature as usize == i)
                .map(|n| n.threshold)
                .collect();
            // x < threshold goes left: a split is dead when every serving
            // value falls on one side.
            let dead_splits = thresholds
                .iter()
                .filter(|&&th| serving.max < th || serving.min >= th)
                .count();
            let outside = s
                .iter()
                .filter(|x| x[i] < train.min || x[i] > train.max)
                .count();
            let out_of_range = outside as f64 / s.len().max(1) as f64;
            let serving_only = SCHEMA.features[i].parity == Parity::ServingOnly;
            let mut flags = Vec::new();
            if serving_only {
                // 0 in training by definition, and no imitation tree reads it
            } else if serving.distinct == 1 && train.distinct > 1 {
                flags.push("constant-serving");
            }
            if !serving_only && train.distinct == 1 && serving.distinct > 1 {
                flags.push("constant-training");
            }
            if !thresholds.is_empty() && outside > 0 {
                flags.push("out-of-range");
            }
            if dead_splits > 0 {
                flags.push("dead-splits");
            }
            FeatureSkew {
                name,
                train,
                serving,
                splits: thresholds.len(),
                dead_splits,
                out_of_range,
                flags,
                serving_only,
            }
        })
        .collect();
    let mut points = BTreeMap::new();
    for d in serving {
        for c in &d.ctx {
            *points.entry(point_name(c.point)).or_insert(0) += 1;
        }
    }
    Skew {
        features,
        train_rows: t.len(),
        serving_rows: s.len(),
        train_migrate: migrate_share(train),
        serving_migrate: migrate_share(serving),
        points,
    }
}

pub fn report(skew: &Skew) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "training: {} rows, {:.1}% migrate | serving: {} rows, {:.1}% migrate",
        skew.train_rows,
        100.0 * skew.train_migrate,
        skew.serving_rows,
        100.0 * skew.serving_migrate
    );
    if !skew.points.is_empty() {
        let pts: Vec<String> = skew
            .points
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        let _ = writeln!(out, "serving decision points: {}", pts.join(", "));
    }
    let _ = writeln!(
        out,
        "\n| feature | splits (dead) | training | serving | serving outside training | flags |\n|---|---|---|---|---|---|"
    );
    for f in &skew.features {
        let _ = writeln!(
            out,
            "| {}{} | {} ({}) | {} | {} | {:.1}% | {} |",
            f.name,
            if f.serving_only {
                " (serving-only)"
            } else {
                ""
            },
            f.splits,
            f.dead_splits,
            f.train.text(),
            f.serving.text(),
            100.0 * f.out_of_range,
            f.flags.join(" ")
        );
    }
    let flagged: Vec<&str> = skew.flagged().map(|f| f.name).collect();
    let _ = writeln!(
        out,
        "\n{} of {} features flagged{}{}",
        flagged.len(),
        skew.features.len(),
        if flagged.is_empty() { "" } else { ": " },
        flagged.join(", ")
    );
    out
}

pub fn run(o: &SkewOpts) -> Result<()> {
    let source = ModelSource::from_opt(o.model.as_deref());
    let model = source.load()?;
    // Both sides as the tree sees them: past the hard guards (and, if
    // asked, at the scheduler's decision points: all serving rows are).
    let read = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| dataset::read_for_model(p, o.scheduler_points))
            .collect::<Result<Vec<_>>>()
    };
    let (train, serving) = (read(&o.train)?, read(&o.serving)?);
    let skew = compare(&model, &train, &serving);
    println!("model: {source}");
    print!("{}", report(&skew));
    let n = skew.flagged().count();
    if o.strict && n > 0 {
        bail!("{n} features are skewed between training and serving");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::dataset::RowCtx;
    use crate::learn::model::Node;
    use crate::sched::bpf_intf as c;
    use std::path::Path;

    fn ds(rows: Vec<(FeatureVec, bool)>, ctx: Vec<RowCtx>) -> Dataset {
        Dataset {
            path: Path::new("t.csv").to_path_buf(),
            meta: Default::default(),
            x: rows.iter().map(|r| r.0).collect(),
            y: rows.iter().map(|r| r.1).collect(),
            ctx,
            out: vec![],
        }
    }

    /// A model with splits on feature 1 (threshold 1) and feature 7
    /// (threshold 10), as the shipped model would be read.
    fn model() -> Model {
        let mut m = crate::learn::model::tests::tiny();
        m.nodes = vec![
            Node::split(1, 1, 1, 2),
            Node::leaf(1),
            Node::split(7, 10, 3, 4),
            Node::leaf(1),
            Node::leaf(0),
        ];
        m
    }

    #[test]
    fn flags_constant_out_of_range_and_dead_splits() {
        let v = |a: i64, b: i64, k: i64| {
            let mut x = [0i64; NR_FEATURES];
            x[1] = a;
            x[7] = b;
            x[0] = k;
            x
        };
        // Training: f1 in {0,1}, f7 in [5, 20], f0 in {0, 3}.
        let train = ds(
            vec![
                (v(0, 5, 0), true),
                (v(1, 20, 3), false),
                (v(1, 12, 0), false),
            ],
            vec![],
        );
        // Serving: f1 in {0,1}; f7 in [30, 40] (outside, and split 10 dead);
        // f0 constant 0 (varies in training, no split on it).
        let pt = RowCtx {
            point: c::mig_point_POINT_STEAL_CPU_DSQ as i64,
            src: 0,
            dst: 1,
        };
        let mut s0 = v(0, 30, 0);
        let mut s1 = v(1, 40, 0);
        for (i, f) in SCHEMA.features.iter().enumerate() {
            if f.parity == Parity::ServingOnly {
                (s0[i], s1[i]) = (5, 6);
            }
        }
        let serving = ds(vec![(s0, true), (s1, false)], vec![pt, pt]);
        let skew = compare(&model(), &[train], &[serving]);
        let by = |i: usize| &skew.features[i];
        assert_eq!(by(0).flags, vec!["constant-serving"]);
        assert_eq!(by(1).flags, Vec::<&str>::new());
        assert_eq!((by(1).splits, by(1).dead_splits), (1, 0));
        assert_eq!(by(7).flags, vec!["out-of-range", "dead-splits"]);
        assert_eq!((by(7).splits, by(7).dead_splits), (1, 1));
        assert_eq!(by(7).out_of_range, 1.0);
        assert_eq!(by(7).train.min, 5);
        // Zero on both sides: not flagged.
        assert!(by(2).flags.is_empty());
        // A serving-only feature varies in serving only: marked, not flagged.
        let so = SCHEMA
            .features
            .iter()
            .position(|f| f.parity == Parity::ServingOnly)
            .unwrap();
        assert!(by(so).serving_only && by(so).flags.is_empty());
        assert_eq!(skew.flagged().count(), 2);
        assert_eq!(skew.points["steal_cpu_dsq"], 2);
        assert!((skew.train_migrate - 1.0 / 3.0).abs() < 1e-9);
        let text = report(&skew);
        assert!(
            text.contains(&format!("2 of {NR_FEATURES} features flagged: ")),
            "{text}"
        );
        assert!(text.contains(" (serving-only) |"), "{text}");
        assert!(
            text.contains(&format!("| {} | 1 (1) |", SCHEMA.names().nth(7).unwrap())),
            "{text}"
        );
    }

    #[test]
    fn identical_sides_flag_nothing() {
        let rows: Vec<(FeatureVec, bool)> =
            (0..20).map(|i| ([i; NR_FEATURES], i % 2 == 0)).collect();
        let skew = compare(&model(), &[ds(rows.clone(), vec![])], &[ds(rows, vec![])]);
        assert_eq!(skew.flagged().count(), 0, "{}", report(&skew));
        assert!(report(&skew).contains(&format!("0 of {NR_FEATURES} features flagged")));
    }
}
