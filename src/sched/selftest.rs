//! Feature vectors for checking the BPF decision against its Rust twin:
//! every combination of the inputs the rule reads, then random vectors
//! (fixed seed, so a failure is reproducible).  And the replay check of the
//! tree: the BPF walk against linfa on every row of datasets.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::learn::dataset;
use crate::learn::features::{FeatureVec, NR_FEATURES};
use crate::learn::model::{linfa_predict, Model};
use crate::rng::XorShift64Star;
use crate::sched::bpf_intf as c;

/// The boolean inputs of the kernel rule.
const RULE_INPUTS: [u32; 5] = [
    c::mlsched_feature_FEAT_migration_disabled,
    c::mlsched_feature_FEAT_dst_allowed,
    c::mlsched_feature_FEAT_running,
    c::mlsched_feature_FEAT_delta_hot,
    c::mlsched_feature_FEAT_extra_fails,
];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::heuristic::{decide, Verdict};

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
