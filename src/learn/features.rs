//! The feature schema, read from its one definition, bpf/features.def.
//!
//! C includes that file as an X-macro (enum mlsched_feature in bpf/intf.h);
//! Rust parses the same text here.  The schema hash (FNV-1a 64 of the
//! FEATURE lines, whitespace-normalised) is written into every dataset and
//! model so that files made with another schema are refused.

use std::sync::LazyLock;

use anyhow::{bail, Result};

use crate::sched::bpf_intf;

const DEF: &str = include_str!("../../bpf/features.def");

/// Number of features, as C sees it.
pub const NR_FEATURES: usize = bpf_intf::mlsched_feature_NR_FEATURES as usize;

/// One feature vector in schema order.
pub type FeatureVec = [i64; NR_FEATURES];

/// How a feature is kept at parity between training and serving (the
/// `parity` argument of features.def).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// Computed the same way by the collector and the scheduler.
    Same,
    /// The same on both sides, and read by the hard guards before the tree
    /// (ml_guard()): rows the guards decide are not trained or scored on.
    Guard,
    /// Only the scheduler computes it (the collector writes 0): imitation
    /// training leaves it out (`serving-only` in features.def).
    ServingOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    pub name: String,
    pub unit: String,
    pub parity: Parity,
    /// How the kprobe collector computes it from can_migrate_task().
    pub collector: String,
    /// How the scheduler computes it at can_migrate().
    pub scheduler: String,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub features: Vec<Feature>,
    pub hash: u64,
}

/// FNV-1a, 64 bit: stable across platforms and Rust versions (std's hasher is not).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Split "a, b, \"c, d\"" at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

pub fn parse(def: &str) -> Result<Schema> {
    let mut features = Vec::new();
    let mut canon = String::new();
    for (i, line) in def.lines().enumerate() {
        let line = line.trim();
        let Some(body) = line.strip_prefix("FEATURE(") else {
            continue;
        };
        let Some(body) = body.strip_suffix(')') else {
            bail!(
                "features.def line {}: FEATURE( without closing parenthesis",
                i + 1
            );
        };
        let args = split_args(body);
        if args.len() != 5 || args[0].is_empty() {
            bail!(
                "features.def line {}: expected FEATURE(name, unit, parity, \"collector\", \"scheduler\")",
                i + 1
            );
        }
        let parity = match args[2].as_str() {
            "same" => Parity::Same,
            "guard" => Parity::Guard,
            "serving-only" => Parity::ServingOnly,
            p => bail!(
                "features.def line {}: parity of {} is {p:?}, not same, guard or serving-only",
                i + 1,
                args[0]
            ),
        };
        if features.iter().any(|f: &Feature| f.name == args[0]) {
            bail!(
                "features.def line {}: feature {} defined twice",
                i + 1,
                args[0]
            );
        }
        canon.push_str(&line.split_whitespace().collect::<Vec<_>>().join(" "));
        canon.push('\n');
        features.push(Feature {
            name: args[0].clone(),
            unit: args[1].clone(),
            parity,
            collector: args[3].clone(),
            scheduler: args[4].clone(),
        });
    }
    if features.is_empty() {
        bail!("features.def defines no FEATURE");
    }
    Ok(Schema {
        features,
        hash: fnv1a64(canon.as_bytes()),
    })
}

/// The schema this binary was built with.
pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let s = parse(DEF).expect("bpf/features.def is valid (checked by tests)");
    assert_eq!(
        s.features.len(),
        NR_FEATURES,
        "features.def and intf.h disagree"
    );
    s
});

impl Schema {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    #[cfg(test)]
    pub fn index(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::bpf_intf as c;

    #[test]
    fn rust_and_c_agree_on_order() {
        let s = &*SCHEMA;
        assert_eq!(s.features.len(), NR_FEATURES);
        let pairs = [
            ("delta_hot", c::mlsched_feature_FEAT_delta_hot),
            ("idle_type", c::mlsched_feature_FEAT_idle_type),
            ("same_node", c::mlsched_feature_FEAT_same_node),
            ("src_len", c::mlsched_feature_FEAT_src_len),
            ("extra_fails", c::mlsched_feature_FEAT_extra_fails),
            ("running", c::mlsched_feature_FEAT_running),
            ("dst_allowed", c::mlsched_feature_FEAT_dst_allowed),
            ("weight", c::mlsched_feature_FEAT_weight),
            (
                "migration_disabled",
                c::mlsched_feature_FEAT_migration_disabled,
            ),
            ("idle_policy", c::mlsched_feature_FEAT_idle_policy),
            ("per_cpu_kthread", c::mlsched_feature_FEAT_per_cpu_kthread),
            (
                "balance_failed_any",
                c::mlsched_feature_FEAT_balance_failed_any,
            ),
            ("numa_delta_pct", c::mlsched_feature_FEAT_numa_delta_pct),
            ("prefer_src", c::mlsched_feature_FEAT_prefer_src),
            ("prefer_dst", c::mlsched_feature_FEAT_prefer_dst),
            ("run_avg_us", c::mlsched_feature_FEAT_run_avg_us),
            ("burst_avg_us", c::mlsched_feature_FEAT_burst_avg_us),
            ("since_mig_us", c::mlsched_feature_FEAT_since_mig_us),
            ("mig_rate", c::mlsched_feature_FEAT_mig_rate),
            ("dst_len", c::mlsched_feature_FEAT_dst_len),
            ("same_llc", c::mlsched_feature_FEAT_same_llc),
            ("vtime_lead_us", c::mlsched_feature_FEAT_vtime_lead_us),
            ("decision_point", c::mlsched_feature_FEAT_decision_point),
        ];
        assert_eq!(pairs.len(), NR_FEATURES);
        for (name, idx) in pairs {
            assert_eq!(s.index(name), Some(idx as usize), "{name}");
        }
    }

    #[test]
    fn hash_changes_with_the_schema_and_not_with_spacing() {
        let a = parse(
            "FEATURE(x, bool, same, \"a, b\", \"c\")\nFEATURE(y, count, guard, \"d\", \"e\")",
        )
        .unwrap();
        let spaced = parse(
            "  FEATURE(x,  bool, same, \"a, b\", \"c\")\n\nFEATURE(y, count, guard, \"d\",   \"e\")",
        )
        .unwrap();
        let swapped = parse(
            "FEATURE(y, count, guard, \"d\", \"e\")\nFEATURE(x, bool, same, \"a, b\", \"c\")",
        )
        .unwrap();
        let reparity = parse(
            "FEATURE(x, bool, guard, \"a, b\", \"c\")\nFEATURE(y, count, guard, \"d\", \"e\")",
        )
        .unwrap();
        let serving = parse(
            "FEATURE(x, bool, serving-only, \"a, b\", \"c\")\nFEATURE(y, count, guard, \"d\", \"e\")",
        )
        .unwrap();
        assert_ne!(reparity.hash, serving.hash);
        assert_eq!(serving.features[0].parity, Parity::ServingOnly);
        assert_eq!(a.hash, spaced.hash);
        assert_ne!(a.hash, swapped.hash);
        assert_ne!(a.hash, reparity.hash);
        assert_eq!(a.features[0].collector, "a, b");
        assert_eq!(
            (a.features[0].parity, a.features[1].parity),
            (Parity::Same, Parity::Guard)
        );
    }

    /// A dataset row is features, label and context columns, under one
    /// header: no feature may take another column's name.
    #[test]
    fn feature_names_leave_the_dataset_columns_free() {
        use crate::learn::dataset::{CONTEXT, LABEL};
        for name in SCHEMA.names() {
            assert!(name != LABEL && !CONTEXT.contains(&name), "{name}");
        }
    }

    /// The collector writes 0 for what only the scheduler knows.
    #[test]
    fn the_scheduler_only_features_are_serving_only() {
        for name in ["vtime_lead_us", "decision_point"] {
            let i = SCHEMA.index(name).unwrap();
            assert_eq!(SCHEMA.features[i].parity, Parity::ServingOnly, "{name}");
        }
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(parse("/* nothing */").is_err());
        assert!(parse("FEATURE(x, bool, same, \"a\")").is_err());
        assert!(parse("FEATURE(x, bool, \"a\", \"b\")").is_err());
        assert!(parse("FEATURE(x, bool, maybe, \"a\", \"b\")").is_err());
        assert!(parse(
            "FEATURE(x, bool, same, \"a\", \"b\")\nFEATURE(x, bool, same, \"a\", \"b\")"
        )
        .is_err());
        assert!(parse("FEATURE(x, bool, same, \"a\", \"b\"").is_err());
    }
}
