//! The benchmark's statistics.  Per arm and metric: the median, min and max
//! over the measured rounds; and the paired per-round ratio to the default
//! scheduler (same round, so slow phases of the machine cancel out) as a
//! geometric mean with a percentile-bootstrap 95% confidence interval over
//! rounds.  An interval that contains 1 is reported as "within noise".
//! The warm-up round (0) and failed runs never enter a statistic.

use serde::Serialize;

use super::record::{Better, Metric, RunRecord, METRICS};
use crate::rng::XorShift64Star;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// Linear-interpolation quantile of sorted values (q in [0, 1]).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub fn spread(xs: &[f64]) -> Option<Spread> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(Spread {
        median: quantile(&v, 0.5),
        min: v[0],
        max: v[v.len() - 1],
        n: v.len(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// Geometric mean of the per-round ratios arm / default.
    pub point: f64,
    pub lo: f64,
    pub hi: f64,
    /// Rounds paired.
    pub n: usize,
}

impl Ratio {
    pub fn within_noise(&self) -> bool {
        self.lo <= 1.0 && 1.0 <= self.hi
    }

    /// Plain words for the report.
    pub fn verdict(&self, better: Better) -> &'static str {
        if self.within_noise() {
            return "within noise";
        }
        match (better, self.point > 1.0) {
            (Better::Higher, true) | (Better::Lower, false) => "better",
            (Better::Higher, false) | (Better::Lower, true) => "worse",
            (Better::Neither, true) => "more",
            (Better::Neither, false) => "fewer",
        }
    }
}

/// Paired ratios (arm, default) of the same rounds.  None with fewer than
/// two pairs or a non-positive value (a ratio of those means nothing).
pub fn paired_ratio(pairs: &[(f64, f64)], resamples: usize, seed: u64) -> Option<Ratio> {
    if pairs.len() < 2 || pairs.iter().any(|&(a, b)| a <= 0.0 || b <= 0.0) {
        return None;
    }
    let logs: Vec<f64> = pairs.iter().map(|&(a, b)| (a / b).ln()).collect();
    let n = logs.len();
    let mean = |xs: &mut dyn Iterator<Item = f64>| xs.sum::<f64>() / n as f64;
    let mut rng = XorShift64Star::from_seed(seed);
    let mut boots: Vec<f64> = (0..resamples)
        .map(|_| mean(&mut (0..n).map(|_| logs[rng.below(n)])))
        .collect();
    boots.sort_by(f64::total_cmp);
    Some(Ratio {
        point: mean(&mut logs.iter().copied()).exp(),
        lo: quantile(&boots, 0.025).exp(),
        hi: quantile(&boots, 0.975).exp(),
        n,
    })
}

/// One arm's figures for one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The metric's key (record::METRICS).
    pub metric: &'static str,
    pub spread: Option<Spread>,
    /// None for the default arm itself, or with fewer than two paired rounds.
    pub ratio: Option<Ratio>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArmSummary {
    pub arm: String,
    /// Measured runs that completed, and those that failed.
    pub ok_runs: usize,
    pub failed_runs: usize,
    /// Set when the arm could not run at all (and why).
    pub unavailable: Option<String>,
    /// One cell per entry of METRICS, in order.
    pub cells: Vec<Cell>,
}

fn measured<'a>(runs: &'a [RunRecord], arm: &'a str) -> impl Iterator<Item = &'a RunRecord> {
    runs.iter().filter(move |r| r.arm == arm && r.round > 0)
}

fn cell(runs: &[RunRecord], arm: &str, baseline: &str, m: &Metric, seed: u64) -> Cell {
    let vals: Vec<f64> = measured(runs, arm)
        .filter(|r| r.ok)
        .map(|r| (m.get)(r))
        // Figures a run could not measure (NaN) are left out.
        .filter(|v| v.is_finite())
        .collect();
    let ratio = (arm != baseline)
        .then(|| {
            let pairs: Vec<(f64, f64)> = measured(runs, arm)
                .filter(|r| r.ok)
                .filter_map(|r| {
                    measured(runs, baseline)
                        .find(|b| b.round == r.round && b.ok)
                        .map(|b| ((m.get)(r), (m.get)(b)))
                })
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            paired_ratio(&pairs, RESAMPLES, seed)
        })
        .flatten();
    Cell {
        metric: m.key,
        spread: spread(&vals),
        ratio,
    }
}

/// Summaries of `arms` (in that order) against `baseline`.
/// `unavailable` names arms that could not run, with the reason.
pub fn summarize(
    runs: &[RunRecord],
    arms: &[String],
    baseline: &str,
    unavailable: &[(String, String)],
    seed: u64,
) -> Vec<ArmSummary> {
    arms.iter()
        .map(|arm| ArmSummary {
            arm: arm.clone(),
            ok_runs: measured(runs, arm).filter(|r| r.ok).count(),
            failed_runs: measured(runs, arm).filter(|r| !r.ok).count(),
            unavailable: unavailable
                .iter()
                .find(|(a, _)| a == arm)
                .map(|(_, why)| why.clone()),
            cells: METRICS
                .iter()
                .map(|m| cell(runs, arm, baseline, m, seed))
                .collect(),
        })
        .collect()
}

/// `arm` against `other` instead of the default scheduler: one cell per
/// entry of METRICS, the same paired ratio (arm over other, per round).
pub fn versus(runs: &[RunRecord], arm: &str, other: &str, seed: u64) -> Vec<Cell> {
    METRICS
        .iter()
        .map(|m| cell(runs, arm, other, m, seed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(arm: &str, round: u32, wall: f64, ok: bool) -> RunRecord {
        RunRecord {
            arm: arm.into(),
            round,
            ok,
            compile_wall_s: wall,
            ..Default::default()
        }
    }

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        let s = spread(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1.0, 4.0, 4));
        assert!(spread(&[]).is_none());
    }

    #[test]
    fn a_clear_difference_is_not_noise() {
        // The arm takes 0.80x..0.84x of the default's time in every round.
        let pairs: Vec<(f64, f64)> = (0..6).map(|i| (80.0 + i as f64 * 0.8, 100.0)).collect();
        let r = paired_ratio(&pairs, RESAMPLES, 7).unwrap();
        assert!(
            r.lo > 0.79 && r.hi < 0.85 && r.lo <= r.point && r.point <= r.hi,
            "{r:?}"
        );
        assert_eq!(r.verdict(Better::Lower), "better");
        assert_eq!(r.verdict(Better::Higher), "worse");
    }

    #[test]
    fn ratios_either_side_of_one_are_noise() {
        let pairs = [(90.0, 100.0), (110.0, 100.0), (95.0, 100.0), (108.0, 100.0)];
        let r = paired_ratio(&pairs, RESAMPLES, 7).unwrap();
        assert!(r.within_noise(), "{r:?}");
        assert_eq!(r.verdict(Better::Neither), "within noise");
        assert!(paired_ratio(&pairs[..1], RESAMPLES, 7).is_none());
        assert!(paired_ratio(&[(1.0, 0.0), (1.0, 1.0)], RESAMPLES, 7).is_none());
    }

    #[test]
    fn summary_pairs_rounds_and_drops_warmup_and_failures() {
        let runs = vec![
            run("default", 0, 1000.0, true), // warm-up: never counted
            run("x", 0, 1.0, true),
            run("default", 1, 100.0, true),
            run("x", 1, 50.0, true),
            run("default", 2, 200.0, true),
            run("x", 2, 100.0, true),
            run("default", 3, 100.0, false), // failed default: round 3 unpaired
            run("x", 3, 10.0, true),
            run("x", 4, 999.0, false),
        ];
        let arms = vec!["default".to_string(), "x".to_string(), "y".to_string()];
        let s = summarize(
            &runs,
            &arms,
            "default",
            &[("y".into(), "not built".into())],
            1,
        );
        let d = &s[0].cells[0];
        assert_eq!(d.spread.unwrap().n, 2);
        assert!(d.ratio.is_none());
        let x = &s[1];
        assert_eq!((x.ok_runs, x.failed_runs), (3, 1));
        let r = x.cells[0].ratio.unwrap();
        assert_eq!(r.n, 2);
        assert!(
            (r.point - 0.5).abs() < 1e-12 && (r.lo - 0.5).abs() < 1e-12,
            "{r:?}"
        );
        assert_eq!(x.cells[0].spread.unwrap().min, 10.0);
        assert_eq!(s[2].unavailable.as_deref(), Some("not built"));
        assert!(s[2].cells[0].spread.is_none());
    }

    #[test]
    fn figures_a_run_could_not_measure_are_left_out() {
        let m = METRICS.iter().position(|m| m.key == "fio_wait_us").unwrap();
        let with = |arm: &str, round, w: Option<f64>| RunRecord {
            fio_wait_us: w,
            ..run(arm, round, 1.0, true)
        };
        let runs = vec![
            with("default", 1, Some(100.0)),
            with("x", 1, Some(50.0)),
            with("default", 2, None), // an older record: not measured
            with("x", 2, Some(999.0)),
            with("default", 3, Some(200.0)),
            with("x", 3, Some(100.0)),
        ];
        let arms = vec!["default".to_string(), "x".to_string()];
        let s = summarize(&runs, &arms, "default", &[], 1);
        assert_eq!(s[0].cells[m].spread.unwrap().n, 2);
        let r = s[1].cells[m].ratio.unwrap();
        assert_eq!(r.n, 2);
        assert!((r.point - 0.5).abs() < 1e-12, "{r:?}");
    }

    proptest! {
        /// The interval holds the point, and scaling every arm figure by k
        /// scales the ratio and both bounds by k.
        #[test]
        fn interval_brackets_point_and_scales(
            xs in proptest::collection::vec((1.0f64..1e4, 1.0f64..1e4), 2..12),
            k in 0.1f64..10.0,
        ) {
            let r = paired_ratio(&xs, 2000, 3).unwrap();
            prop_assert!(r.lo <= r.point * (1.0 + 1e-9) && r.point <= r.hi * (1.0 + 1e-9));
            let scaled: Vec<(f64, f64)> = xs.iter().map(|&(a, b)| (a * k, b)).collect();
            let s = paired_ratio(&scaled, 2000, 3).unwrap();
            for (u, v) in [(s.point, r.point), (s.lo, r.lo), (s.hi, r.hi)] {
                prop_assert!((u / (v * k) - 1.0).abs() < 1e-9);
            }
        }
    }
}
