//! `scx_mlsched eval MODEL DATASET...`: score an existing model on datasets
//! (CSV or Parquet) without retraining.  Per dataset and over all of them:
//! accuracy, precision, recall, F1, balanced accuracy and MCC (the labels are
//! imbalanced, so accuracy alone flatters a model that always says "stay"),
//! the confusion matrix, and the rows where the model and the label differ,
//! with their file, row and non-zero features.  The model is walked exactly
//! as BPF walks it (`Model::predict`, integer thresholds).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::learn::dataset::{self, Dataset};
use crate::learn::features::SCHEMA;
use crate::learn::metrics::Metrics;
use crate::learn::model::Model;

#[derive(Debug, Clone, Args)]
pub struct EvalOpts {
    /// Model file (JSON), as `train` writes it.
    pub model: PathBuf,
    /// Datasets to score (CSV as `collect` writes it, or Parquet).
    #[arg(required = true)]
    pub datasets: Vec<PathBuf>,
    /// How many disagreeing rows to print per dataset (0: none).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Score only rows of decision points the scheduler has (as `train
    /// --scheduler-points`).  Rows the hard guards decide are never scored:
    /// the model does not decide them.
    #[arg(long)]
    pub scheduler_points: bool,
    /// Instead of scoring labels: estimate the mean cost per decision of
    /// the model, the heuristic and the constant policies on exploration
    /// logs (`run --explore EPS --record`), by IPS and SNIPS with bootstrap
    /// intervals and the effective sample size (src/learn/outcome.rs).
    #[arg(long)]
    pub policy_value: bool,
    /// With --policy-value: the cost's penalty per move, in us.
    #[arg(long, default_value_t = crate::learn::outcome::DEFAULT_PENALTY_US)]
    pub penalty_us: f64,
    /// With --policy-value: bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// With --policy-value: rows per bootstrap block (rows close in time
    /// are dependent).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub block_rows: u64,
    /// With --policy-value: the bootstrap's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// With --policy-value: warn below this effective sample size.
    #[arg(long, default_value_t = 100.0)]
    pub min_ess: f64,
    /// With --policy-value: only the rows at the points the model declares
    /// (where it and the heuristic can differ).  On on-policy logs (`run
    /// --policy ml --record`, and the heuristic's), the measured mean cost
    /// there is what the exploration logs' estimates predict.
    #[arg(long)]
    pub model_points: bool,
}

/// One dataset's score and the rows (0-based) where model and label differ.
pub struct Score {
    pub metrics: Metrics,
    pub wrong: Vec<usize>,
}

pub fn score(model: &Model, ds: &Dataset) -> Score {
    let pred: Vec<bool> = ds.x.iter().map(|x| model.predict(x)).collect();
    Score {
        metrics: Metrics::compute(&ds.y, &pred),
        wrong: (0..ds.len()).filter(|&i| pred[i] != ds.y[i]).collect(),
    }
}

/// A row as "name=value" for its non-zero features.
fn row_text(x: &[i64]) -> String {
    SCHEMA
        .names()
        .zip(x)
        .filter(|(_, v)| **v != 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn report(o: &EvalOpts, model: &Model, sets: &[Dataset]) -> String {
    let mut out = String::new();
    let (mut truth, mut pred) = (Vec::new(), Vec::new());
    for ds in sets {
        let s = score(model, ds);
        let _ = writeln!(
            out,
            "{} ({}, {} rows):\n{}\n",
            ds.path.display(),
            ds.workload(),
            ds.len(),
            s.metrics
        );
        if !s.wrong.is_empty() && o.show > 0 {
            let _ = writeln!(
                out,
                "  rows where the model and the label differ ({} of {}{}):",
                s.wrong.len(),
                ds.len(),
                if s.wrong.len() > o.show {
                    format!(", first {}", o.show)
                } else {
                    String::new()
                }
            );
            for &i in s.wrong.iter().take(o.show) {
                let _ = writeln!(
                    out,
                    "  row {}: label {}, model {}: {}",
                    i + 1,
                    if ds.y[i] { "migrate" } else { "stay" },
                    if ds.y[i] { "stay" } else { "migrate" },
                    row_text(&ds.x[i])
                );
            }
            out.push('\n');
        }
        truth.extend_from_slice(&ds.y);
        pred.extend(ds.x.iter().map(|x| model.predict(x)));
    }
    if sets.len() > 1 {
        let _ = writeln!(out, "all datasets:\n{}", Metrics::compute(&truth, &pred));
    }
    out
}

pub fn run(o: &EvalOpts) -> Result<()> {
    let model = Model::load(&o.model)?;
    if o.policy_value {
        let b = crate::learn::outcome::Bootstrap {
            resamples: o.bootstrap,
            block_rows: o.block_rows as usize,
            seed: o.seed,
        };
        print!(
            "{}",
            crate::learn::outcome::policy_value(
                &model,
                &o.datasets,
                o.model_points,
                o.penalty_us,
                b,
                o.min_ess
            )?
        );
        return Ok(());
    }
    let sets = o
        .datasets
        .iter()
        .map(|p| dataset::read_for_model(p, o.scheduler_points))
        .collect::<Result<Vec<_>>>()?;
    print!("{}", report(o, &model, &sets));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shipped(name: &str) -> Dataset {
        dataset::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
    }

    /// The shipped model scored here gives what `train` recorded in it for
    /// the hold-out workload, so eval and train measure the same thing.
    #[test]
    fn shipped_model_scores_as_recorded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = Model::load(&root.join("model/default.json")).unwrap();
        let ds = dataset::read_for_model(
            &root.join("datasets/hackbench-mix.csv"),
            model.training.scheduler_points,
        )
        .unwrap();
        let s = score(&model, &ds);
        let recorded = model
            .metrics
            .holdout
            .iter()
            .find(|(p, _)| p.ends_with("hackbench-mix.csv"))
            .expect("the shipped model records its hold-out score")
            .1;
        assert_eq!(s.metrics.confusion, recorded.confusion);
        assert_eq!(
            s.wrong.len(),
            recorded.confusion[0][1] + recorded.confusion[1][0]
        );
    }

    #[test]
    fn report_lists_disagreements_and_the_total() {
        // delta_hot < 1 -> migrate: the kernel rule without its guards.
        let model = crate::learn::model::tests::tiny();
        let mut ds = shipped("datasets/hackbench-mix.csv");
        ds.x.truncate(200);
        ds.y.truncate(200);
        let s = score(&model, &ds);
        assert!(
            s.wrong.len() > 3,
            "the tiny model should miss rows: {}",
            s.wrong.len()
        );
        let o = EvalOpts {
            model: "m.json".into(),
            datasets: vec![],
            show: 3,
            scheduler_points: false,
            policy_value: false,
            penalty_us: 500.0,
            bootstrap: 10,
            block_rows: 256,
            seed: 1,
            min_ess: 100.0,
            model_points: false,
        };
        let text = report(&o, &model, &[ds.clone(), ds]);
        assert!(text.contains("balanced_accuracy="), "{text}");
        let head = format!("differ ({} of 200, first 3)", s.wrong.len());
        assert!(text.contains(&head), "{text}");
        assert_eq!(
            text.matches("  row ").count(),
            6,
            "3 rows shown per dataset: {text}"
        );
        let first = s.wrong[0];
        assert!(
            text.contains(&format!("  row {}: label", first + 1)),
            "{text}"
        );
        assert!(text.contains("all datasets:\nn=400 "), "{text}");
    }
}
