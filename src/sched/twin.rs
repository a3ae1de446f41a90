//! The userspace twin of the BPF tree: linfa checks the decisions BPF makes.
//!
//! BPF sends every `--sample-every`-th tree decision (features, verdicts,
//! model generation) through the `samples` ring buffer.  The twin predicts
//! each with linfa-trees' own `DecisionTree` of the model of that generation
//! (the tree as trained, from the model file) and counts agreement, which
//! must be 100%: a disagreement means the BPF walk, the flat node array or
//! the integer thresholds differ from what was trained.  Each disagreement is
//! logged with its feature vector (the first ones, then one in a thousand).
//!
//! Samples come from every decision point (enum mig_point) where the tree
//! walks, and are counted per point.  Each also carries the verdict of the
//! point's heuristic in BPF (can_migrate_decide()), which the twin checks
//! against the Rust heuristic (src/sched/heuristic.rs) on the same vector:
//! the per-point rules are checked live too, not only by `selftest`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use linfa_trees::DecisionTree;
use log::warn;

use crate::learn::features::{FeatureVec, SCHEMA};
use crate::learn::model::{linfa_predict, Model};
use crate::sched::bpf_intf as c;

/// Generations kept: samples of the previous model can still be in the ring
/// buffer right after a swap.
const KEEP_GENERATIONS: usize = 2;
const LOG_FIRST: u64 = 10;

const NR_POINTS: usize = c::mig_point_NR_MIG_POINTS as usize;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TwinCounts {
    pub checked: u64,
    pub agree: u64,
    pub disagree: u64,
    /// Samples of a generation the twin no longer (or never) had.
    pub unknown_generation: u64,
    /// Samples whose BPF heuristic verdict differs from the Rust heuristic's.
    pub heuristic_disagree: u64,
    /// (checked, agree) per decision point (enum mig_point).
    pub by_point: [(u64, u64); NR_POINTS],
}

impl TwinCounts {
    /// "name checked/agree" for each point with samples.
    pub fn per_point(&self) -> String {
        self.by_point
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(p, (n, a))| format!("{} {a}/{n}", crate::learn::dataset::point_name(p as i64)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Default)]
pub struct Twin {
    trees: BTreeMap<u64, DecisionTree<f64, usize>>,
    /// The heuristic the running scheduler follows (its options).
    pub rules: crate::sched::heuristic::Rules,
    pub counts: TwinCounts,
}

impl Twin {
    /// A twin of a scheduler that follows `rules`.
    pub fn new(rules: crate::sched::heuristic::Rules) -> Self {
        Twin {
            rules,
            ..Twin::default()
        }
    }

    /// Track the model now in force as `generation`.
    pub fn set_model(&mut self, generation: u64, model: &Model) -> Result<()> {
        self.trees.insert(generation, model.linfa_tree()?);
        while self.trees.len() > KEEP_GENERATIONS {
            self.trees.pop_first();
        }
        Ok(())
    }

    /// Check one sample; Some(linfa's verdict) when its generation is known.
    pub fn check(&mut self, s: &c::mig_sample) -> Option<bool> {
        let Some(tree) = self.trees.get(&s.generation) else {
            self.counts.unknown_generation += 1;
            return None;
        };
        let x: FeatureVec = s.in_.f;
        let linfa = linfa_predict(tree, &x);
        let heuristic = self.rules.decide_at(&x, s.point);
        if heuristic as i64 != s.heuristic as i64 {
            self.counts.heuristic_disagree += 1;
            if self.counts.heuristic_disagree <= LOG_FIRST {
                warn!(
                    "twin: BPF's heuristic said verdict {} but Rust's says {} at {}: {}",
                    s.heuristic,
                    heuristic.label(),
                    crate::learn::dataset::point_name(s.point as i64),
                    describe(&x)
                );
            }
        }
        let point = self.counts.by_point.get_mut(s.point as usize);
        self.counts.checked += 1;
        if linfa == (s.tree != 0) {
            self.counts.agree += 1;
            if let Some(p) = point {
                *p = (p.0 + 1, p.1 + 1);
            }
        } else {
            if let Some(p) = point {
                p.0 += 1;
            }
            self.counts.disagree += 1;
            let n = self.counts.disagree;
            if n <= LOG_FIRST || n.is_multiple_of(1000) {
                warn!(
                    "twin: BPF tree said {} but linfa says {} (generation {}, CPU {} -> {}, disagreement #{n}): {}",
                    verdict(s.tree != 0),
                    verdict(linfa),
                    s.generation,
                    s.src,
                    s.dst,
                    describe(&x)
                );
            }
        }
        Some(linfa)
    }

    /// Parse one ring-buffer record and check it.
    pub fn check_bytes(&mut self, data: &[u8]) -> Result<Option<bool>> {
        let s = parse_sample(data)?;
        Ok(self.check(&s))
    }
}

fn verdict(migrate: bool) -> &'static str {
    if migrate {
        "migrate"
    } else {
        "stay"
    }
}

/// `name=value` for every feature, in schema order.
pub fn describe(x: &FeatureVec) -> String {
    SCHEMA
        .names()
        .zip(x.iter())
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn parse_sample(data: &[u8]) -> Result<c::mig_sample> {
    let size = std::mem::size_of::<c::mig_sample>();
    if data.len() < size {
        bail!("sample of {} bytes, expected {size}", data.len());
    }
    // The ring buffer gives 8-byte aligned records, but read unaligned anyway.
    Ok(unsafe { std::ptr::read_unaligned(data.as_ptr() as *const c::mig_sample) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::model::tests::tiny;

    /// A steal's sample, with the verdict the kernel rule gives.
    fn sample(generation: u64, delta_hot: i64, tree: i32) -> c::mig_sample {
        let mut s: c::mig_sample = unsafe { std::mem::zeroed() };
        s.generation = generation;
        s.in_.f[c::mlsched_feature_FEAT_delta_hot as usize] = delta_hot;
        s.in_.f[c::mlsched_feature_FEAT_dst_allowed as usize] = 1;
        s.tree = tree;
        s.point = c::mig_point_POINT_STEAL_CPU_DSQ;
        s.heuristic = crate::sched::heuristic::decide(&s.in_.f) as i32;
        s
    }

    fn bytes(s: &c::mig_sample) -> Vec<u8> {
        unsafe {
            std::slice::from_raw_parts(
                s as *const _ as *const u8,
                std::mem::size_of::<c::mig_sample>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn agreement_and_disagreement_are_counted() {
        let mut t = Twin::default();
        t.set_model(1, &tiny()).unwrap();
        // tiny: delta_hot < 1 -> migrate, else stay
        assert_eq!(t.check_bytes(&bytes(&sample(1, 0, 1))).unwrap(), Some(true));
        assert_eq!(
            t.check_bytes(&bytes(&sample(1, 1, 0))).unwrap(),
            Some(false)
        );
        assert_eq!(t.check(&sample(1, 1, 1)), Some(false)); // BPF says migrate: wrong
        assert_eq!(t.check(&sample(7, 0, 1)), None);
        let mut by_point = [(0, 0); NR_POINTS];
        by_point[c::mig_point_POINT_STEAL_CPU_DSQ as usize] = (3, 2);
        assert_eq!(
            t.counts,
            TwinCounts {
                checked: 3,
                agree: 2,
                disagree: 1,
                unknown_generation: 1,
                heuristic_disagree: 0,
                by_point,
            }
        );
        assert_eq!(t.counts.per_point(), "steal_cpu_dsq 2/3");
        assert!(t.check_bytes(&[0u8; 8]).is_err());
    }

    /// Samples of the placements are counted at their point, and a BPF
    /// heuristic verdict that is not the point's rule is caught.
    #[test]
    fn placements_are_checked_per_point() {
        let mut t = Twin::default();
        t.set_model(1, &tiny()).unwrap();
        // a hot wakeup at enqueue: its heuristic keeps it (deny hot)
        let mut s = sample(1, 1, 0);
        s.point = c::mig_point_POINT_ENQ_WAKEUP;
        s.heuristic = c::mig_verdict_MIG_DENY_HOT as i32;
        assert_eq!(t.check(&s), Some(false));
        // the same vector re-queued (preempted): the rule lets it go; a
        // BPF that said "hot" there would be wrong
        s.point = c::mig_point_POINT_ENQ_REQUEUE;
        t.check(&s);
        s.point = c::mig_point_POINT_WAKE_IDLE;
        s.heuristic = c::mig_verdict_MIG_ALLOWED as i32;
        t.check(&s);
        assert_eq!(t.counts.heuristic_disagree, 1);
        assert_eq!(
            t.counts.per_point(),
            "wake_idle 1/1, enq_wakeup 1/1, enq_requeue 1/1"
        );
    }

    #[test]
    fn old_generations_are_forgotten() {
        let mut t = Twin::default();
        for g in 1..=3 {
            t.set_model(g, &tiny()).unwrap();
        }
        assert_eq!(t.check(&sample(1, 0, 1)), None);
        assert_eq!(t.check(&sample(2, 0, 1)), Some(true));
        assert_eq!(t.check(&sample(3, 0, 1)), Some(true));
    }

    #[test]
    fn describe_names_every_feature() {
        let d = describe(&[0; crate::learn::features::NR_FEATURES]);
        assert!(d.starts_with("delta_hot=0 idle_type=0"), "{d}");
    }
}
