//! The benchmark's statistics.  Per arm and metric: the median, min and max
//! over the measured rounds; and the paired per-round ratio to the default
//! scheduler (same round, so slow phases of the machine cancel out) as a
//! geometric mean with a 95% Student t-interval on the per-round log-ratios.
//! An interval that contains 1 is reported as "within noise".
//!
//! Why a t-interval and not the percentile bootstrap used before: with few
//! rounds a percentile bootstrap cannot see beyond the rounds it has, and
//! its "95%" interval covered the true ratio in only about 87% of simulated
//! 5-round boots (the coverage test below).  The t-interval holds its
//! coverage at any count of rounds when the log-ratios are near normal, and
//! stays near 95% under the 2x outliers of the emulated test bed.  Below
//! MIN_ROUNDS paired rounds no interval and no verdict are given at all:
//! the ratio is printed with "too few rounds to judge".
//! The warm-up round (0) and failed runs never enter a statistic.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::record::{Better, Metric, RunRecord, METRICS};

/// The fewest paired rounds from which a ratio gets an interval and a
/// verdict (better, worse, within noise).  Fewer rounds print the ratio and
/// "too few rounds to judge".
pub const MIN_ROUNDS: usize = 5;

/// Confidence level of every interval.
pub const LEVEL: f64 = 0.95;

/// The words printed instead of a verdict below MIN_ROUNDS.
pub const TOO_FEW: &str = "too few rounds to judge";

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

/// A confidence interval of a ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// Geometric mean of the per-round ratios arm / default.
    pub point: f64,
    /// The 95% interval; None below MIN_ROUNDS paired rounds.
    pub ci: Option<Interval>,
    /// Rounds paired.
    pub n: usize,
}

impl Ratio {
    /// The interval contains 1 (false when there is no interval).
    pub fn within_noise(&self) -> bool {
        self.ci.is_some_and(|c| c.lo <= 1.0 && 1.0 <= c.hi)
    }

    /// Plain words for the report.
    pub fn verdict(&self, better: Better) -> &'static str {
        if self.ci.is_none() {
            return TOO_FEW;
        }
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

/// The two-sided Student t interval of the mean of `xs` (at least two
/// values) at `level`: (mean, lo, hi).
pub fn t_interval(xs: &[f64], level: f64) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .expect("n >= 2 gives a valid t distribution")
        .inverse_cdf(0.5 + level / 2.0);
    let half = t * (var / n).sqrt();
    (mean, mean - half, mean + half)
}

/// Paired ratios (arm, default) of the same rounds.  None with fewer than
/// two pairs or a non-positive value (a ratio of those means nothing); no
/// interval below MIN_ROUNDS pairs.
pub fn paired_ratio(pairs: &[(f64, f64)]) -> Option<Ratio> {
    if pairs.len() < 2 || pairs.iter().any(|&(a, b)| a <= 0.0 || b <= 0.0) {
        return None;
    }
    let logs: Vec<f64> = pairs.iter().map(|&(a, b)| (a / b).ln()).collect();
    let (mean, lo, hi) = t_interval(&logs, LEVEL);
    Some(Ratio {
        point: mean.exp(),
        ci: (logs.len() >= MIN_ROUNDS).then(|| Interval {
            lo: lo.exp(),
            hi: hi.exp(),
        }),
        n: logs.len(),
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

fn cell(runs: &[RunRecord], arm: &str, baseline: &str, m: &Metric) -> Cell {
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
            paired_ratio(&pairs)
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
                .map(|m| cell(runs, arm, baseline, m))
                .collect(),
        })
        .collect()
}

/// `arm` against `other` instead of the default scheduler: one cell per
/// entry of METRICS, the same paired ratio (arm over other, per round).
pub fn versus(runs: &[RunRecord], arm: &str, other: &str) -> Vec<Cell> {
    METRICS.iter().map(|m| cell(runs, arm, other, m)).collect()
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
    fn t_interval_matches_the_textbook() {
        // 1..5: mean 3, s = sqrt(2.5), t(0.975, 4 df) = 2.776445.
        let (m, lo, hi) = t_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        let half = 2.776445 * (2.5f64 / 5.0).sqrt();
        assert!((m - 3.0).abs() < 1e-12);
        assert!((lo - (3.0 - half)).abs() < 1e-5, "{lo}");
        assert!((hi - (3.0 + half)).abs() < 1e-5, "{hi}");
    }

    #[test]
    fn a_clear_difference_is_not_noise() {
        // The arm takes 0.80x..0.84x of the default's time in every round.
        let pairs: Vec<(f64, f64)> = (0..6).map(|i| (80.0 + i as f64 * 0.8, 100.0)).collect();
        let r = paired_ratio(&pairs).unwrap();
        let c = r.ci.unwrap();
        assert!(
            c.lo > 0.79 && c.hi < 0.85 && c.lo <= r.point && r.point <= c.hi,
            "{r:?}"
        );
        assert_eq!(r.verdict(Better::Lower), "better");
        assert_eq!(r.verdict(Better::Higher), "worse");
    }

    #[test]
    fn ratios_either_side_of_one_are_noise() {
        let pairs = [
            (90.0, 100.0),
            (110.0, 100.0),
            (95.0, 100.0),
            (108.0, 100.0),
            (99.0, 100.0),
        ];
        let r = paired_ratio(&pairs).unwrap();
        assert!(r.within_noise(), "{r:?}");
        assert_eq!(r.verdict(Better::Neither), "within noise");
        assert!(paired_ratio(&pairs[..1]).is_none());
        assert!(paired_ratio(&[(1.0, 0.0), (1.0, 1.0)]).is_none());
    }

    #[test]
    fn too_few_rounds_give_a_ratio_but_no_interval_and_no_verdict() {
        // Half the default's time in each of 4 rounds: clear, yet too few.
        let pairs: Vec<(f64, f64)> = (0..MIN_ROUNDS - 1)
            .map(|i| (50.0 + i as f64, 100.0 + 2.0 * i as f64))
            .collect();
        let r = paired_ratio(&pairs).unwrap();
        assert!((r.point - 0.5).abs() < 1e-12, "{r:?}");
        assert_eq!((r.ci, r.n), (None, MIN_ROUNDS - 1));
        assert!(!r.within_noise());
        for b in [Better::Lower, Better::Higher, Better::Neither] {
            assert_eq!(r.verdict(b), TOO_FEW);
        }
        let mut more = pairs.clone();
        more.push((60.0, 120.0));
        assert_eq!(
            paired_ratio(&more).unwrap().verdict(Better::Lower),
            "better"
        );
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
        let s = summarize(&runs, &arms, "default", &[("y".into(), "not built".into())]);
        let d = &s[0].cells[0];
        assert_eq!(d.spread.unwrap().n, 2);
        assert!(d.ratio.is_none());
        let x = &s[1];
        assert_eq!((x.ok_runs, x.failed_runs), (3, 1));
        let r = x.cells[0].ratio.unwrap();
        assert_eq!((r.n, r.ci), (2, None));
        assert!((r.point - 0.5).abs() < 1e-12, "{r:?}");
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
        let s = summarize(&runs, &arms, "default", &[]);
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
            xs in proptest::collection::vec((1.0f64..1e4, 1.0f64..1e4), MIN_ROUNDS..12),
            k in 0.1f64..10.0,
        ) {
            let r = paired_ratio(&xs).unwrap();
            let c = r.ci.unwrap();
            prop_assert!(c.lo <= r.point * (1.0 + 1e-9) && r.point <= c.hi * (1.0 + 1e-9));
            let scaled: Vec<(f64, f64)> = xs.iter().map(|&(a, b)| (a * k, b)).collect();
            let s = paired_ratio(&scaled).unwrap();
            let d = s.ci.unwrap();
            for (u, v) in [(s.point, r.point), (d.lo, c.lo), (d.hi, c.hi)] {
                prop_assert!((u / (v * k) - 1.0).abs() < 1e-9);
            }
        }
    }

    /// Simulated benchmark boots: paired (arm, default) figures per round
    /// with a known true ratio, a slow phase per round that both arms share,
    /// and per-run noise.
    mod coverage {
        use super::*;
        use crate::rng::XorShift64Star;

        struct Sim(XorShift64Star);

        impl Sim {
            /// Uniform in (0, 1].
            fn uniform(&mut self) -> f64 {
                ((self.0.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
            }
            /// Standard normal (Box-Muller).
            fn normal(&mut self) -> f64 {
                let (u, v) = (self.uniform(), self.uniform());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            }
            /// One run's noise factor: log-normal (sd 0.08), and with
            /// `outliers`, one run in ten slowed by 1x to 2x (the emulated
            /// test bed's short timings vary by 2x in one boot).
            fn noise(&mut self, outliers: bool) -> f64 {
                let slow = if outliers && self.uniform() < 0.1 {
                    1.0 + self.uniform()
                } else {
                    1.0
                };
                (0.08 * self.normal()).exp() * slow
            }
            fn boot(&mut self, rounds: usize, ratio: f64, outliers: bool) -> Vec<(f64, f64)> {
                (0..rounds)
                    .map(|_| {
                        let phase = 100.0 * (0.2 * self.normal()).exp();
                        let a = ratio * phase * self.noise(outliers);
                        (a, phase * self.noise(outliers))
                    })
                    .collect()
            }
        }

        /// The share of `boots` simulated boots whose interval holds the
        /// true ratio.
        fn coverage(rounds: usize, outliers: bool, boots: usize, seed: u64) -> f64 {
            let mut sim = Sim(XorShift64Star::from_seed(seed));
            let truth = 0.9;
            let hits = (0..boots)
                .filter(|_| {
                    let c = paired_ratio(&sim.boot(rounds, truth, outliers))
                        .unwrap()
                        .ci
                        .unwrap();
                    c.lo <= truth && truth <= c.hi
                })
                .count();
            hits as f64 / boots as f64
        }

        /// The interval the report gives holds its 95% at the rounds a
        /// benchmark runs.  With 20,000 boots the standard error of a
        /// coverage near 0.95 is 0.0015.
        #[test]
        fn t_interval_covers_the_true_ratio_95_percent_of_the_time() {
            for (i, rounds) in [5, 6, 10].into_iter().enumerate() {
                let normal = coverage(rounds, false, 20_000, 100 + i as u64);
                let outl = coverage(rounds, true, 20_000, 200 + i as u64);
                eprintln!(
                    "coverage at {rounds} rounds: {normal:.3} (log-normal noise), \
                     {outl:.3} (with 2x outliers)"
                );
                assert!((0.94..=0.96).contains(&normal), "{rounds}: {normal}");
                assert!((0.93..=0.98).contains(&outl), "{rounds}: {outl}");
            }
        }

        /// Why the percentile bootstrap was replaced: over 5 rounds its
        /// "95%" interval misses the true ratio far more often than 5%.
        #[test]
        fn percentile_bootstrap_undercovers_at_five_rounds() {
            let mut sim = Sim(XorShift64Star::from_seed(300));
            let mut rng = XorShift64Star::from_seed(301);
            let (truth, boots, resamples, n) = (0.9f64, 4000, 1000, 5);
            let hits = (0..boots)
                .filter(|_| {
                    let logs: Vec<f64> = sim
                        .boot(n, truth, false)
                        .iter()
                        .map(|(a, b)| (a / b).ln())
                        .collect();
                    let mut means: Vec<f64> = (0..resamples)
                        .map(|_| (0..n).map(|_| logs[rng.below(n)]).sum::<f64>() / n as f64)
                        .collect();
                    means.sort_by(f64::total_cmp);
                    let (lo, hi) = (quantile(&means, 0.025), quantile(&means, 0.975));
                    lo <= truth.ln() && truth.ln() <= hi
                })
                .count();
            let cov = hits as f64 / boots as f64;
            eprintln!("percentile bootstrap coverage at {n} rounds: {cov:.3}");
            assert!(cov < 0.91, "{cov}");
        }
    }
}
