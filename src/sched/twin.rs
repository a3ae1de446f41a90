//! The userspace twin of the BPF tree: linfa checks the decisions BPF makes.
//!
//! BPF sends every `--sample-every`-th tree decision (features, verdicts,
//! model generation) through the `samples` ring buffer.  The twin predicts
//! each with linfa-trees' own `DecisionTree` of the model of that generation
//! (the tree as trained, from the model file) and counts agreement, which
//! must be 100%: a disagreement means the BPF walk, the flat node array or
//! the integer thresholds differ from what was trained.  Each disagreement is
//! logged with its feature vector (the first ones, then one in a thousand).

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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TwinCounts {
    pub checked: u64,
    pub agree: u64,
    pub disagree: u64,
    /// Samples of a generation the twin no longer (or never) had.
    pub unknown_generation: u64,
}

#[derive(Default)]
pub struct Twin {
    trees: BTreeMap<u64, DecisionTree<f64, usize>>,
    pub counts: TwinCounts,
}

impl Twin {
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
        self.counts.checked += 1;
        if linfa == (s.tree != 0) {
            self.counts.agree += 1;
        } else {
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

    fn sample(generation: u64, delta_hot: i64, tree: i32) -> c::mig_sample {
        let mut s: c::mig_sample = unsafe { std::mem::zeroed() };
        s.generation = generation;
        s.in_.f[c::mlsched_feature_FEAT_delta_hot as usize] = delta_hot;
        s.tree = tree;
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
        assert_eq!(
            t.counts,
            TwinCounts {
                checked: 3,
                agree: 2,
                disagree: 1,
                unknown_generation: 1
            }
        );
        assert!(t.check_bytes(&[0u8; 8]).is_err());
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
