//! The userspace twin of can_migrate_decide() in bpf/main.bpf.c: the
//! kernel's can_migrate_task() rules on a feature vector.
//!
//! Why a twin: the BPF function cannot be unit-tested on a host without
//! sched_ext, and the learned model decides beside it; the VM test
//! (`scx_mlsched selftest`) runs the BPF one through test_run on many
//! vectors and requires the same verdicts as this one.

use crate::learn::features::FeatureVec;
use crate::sched::bpf_intf as c;

/// Why a migration was allowed or refused; values are enum mig_verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Verdict {
    Allowed = c::mig_verdict_MIG_ALLOWED,
    AllowedFails = c::mig_verdict_MIG_ALLOWED_FAILS,
    DenyAffinity = c::mig_verdict_MIG_DENY_AFFINITY,
    DenyRunning = c::mig_verdict_MIG_DENY_RUNNING,
    DenyPinned = c::mig_verdict_MIG_DENY_PINNED,
    DenyHot = c::mig_verdict_MIG_DENY_HOT,
}

impl Verdict {
    /// Every verdict of the heuristic; enum mig_verdict's later values
    /// (the ML guard's kthread refusal, the model's verdicts) are not its.
    pub const ALL: [Verdict; c::mig_verdict_MIG_DENY_KTHREAD as usize] = [
        Verdict::Allowed,
        Verdict::AllowedFails,
        Verdict::DenyAffinity,
        Verdict::DenyRunning,
        Verdict::DenyPinned,
        Verdict::DenyHot,
    ];

    pub fn from_raw(v: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|x| *x as i64 == v)
    }

    pub fn allows(self) -> bool {
        matches!(self, Verdict::Allowed | Verdict::AllowedFails)
    }

    /// Short name used in stats output.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::AllowedFails => "allowed_after_fails",
            Verdict::DenyAffinity => "deny_affinity",
            Verdict::DenyRunning => "deny_running",
            Verdict::DenyPinned => "deny_migration_disabled",
            Verdict::DenyHot => "deny_cache_hot",
        }
    }
}

fn f(v: &FeatureVec, idx: u32) -> i64 {
    v[idx as usize]
}

/// The kernel's order: migration disabled, affinity, running, cache-hot.
pub fn decide(v: &FeatureVec) -> Verdict {
    if f(v, c::mlsched_feature_FEAT_migration_disabled) != 0 {
        Verdict::DenyPinned
    } else if f(v, c::mlsched_feature_FEAT_dst_allowed) == 0 {
        Verdict::DenyAffinity
    } else if f(v, c::mlsched_feature_FEAT_running) != 0 {
        Verdict::DenyRunning
    } else if f(v, c::mlsched_feature_FEAT_delta_hot) == 0 {
        Verdict::Allowed
    } else if f(v, c::mlsched_feature_FEAT_extra_fails) != 0 {
        Verdict::AllowedFails
    } else {
        Verdict::DenyHot
    }
}

/// Twin of ml_guard() in bpf/main.bpf.c: the refusal (enum mig_verdict)
/// that the ml policy makes before the tree, or None to let the tree
/// decide.  The kernel's hard rules, then per-CPU kthreads.  Its inputs are
/// the features features.def marks `guard`.
pub fn ml_guard(v: &FeatureVec) -> Option<u32> {
    match decide(v) {
        hard @ (Verdict::DenyPinned | Verdict::DenyAffinity | Verdict::DenyRunning) => {
            Some(hard as u32)
        }
        _ if f(v, c::mlsched_feature_FEAT_per_cpu_kthread) != 0 => {
            Some(c::mig_verdict_MIG_DENY_KTHREAD)
        }
        _ => None,
    }
}

/// Twin of balance_failed_next(): dst's failed balances after a steal that
/// saw `seen` (enum scan_seen flags), as the kernel's load_balance() counts
/// `sd->nr_balance_failed`.  extra_fails and balance_failed_any read it.
pub fn balance_failed_next(failed: u64, seen: u32, idle_type: i64) -> u64 {
    if seen & c::scan_seen_SCAN_MOVED != 0 {
        0 // a move resets it
    } else if seen & c::scan_seen_SCAN_REFUSED != 0 {
        // a failure, but newly-idle attempts are not counted
        if idle_type == 2 {
            failed
        } else {
            failed + 1
        }
    } else {
        // only pinned tasks (LBF_ALL_PINNED), or nothing queued (out_balanced
        // falls through to out_all_pinned): reset
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::features::NR_FEATURES;

    fn cold_movable() -> FeatureVec {
        let mut v = [0; NR_FEATURES];
        v[c::mlsched_feature_FEAT_dst_allowed as usize] = 1;
        v
    }

    fn with(mut v: FeatureVec, idx: u32, val: i64) -> FeatureVec {
        v[idx as usize] = val;
        v
    }

    #[test]
    fn kernel_rules_in_kernel_order() {
        let v = cold_movable();
        assert_eq!(decide(&v), Verdict::Allowed);
        assert_eq!(
            decide(&with(v, c::mlsched_feature_FEAT_dst_allowed, 0)),
            Verdict::DenyAffinity
        );
        let hot = with(v, c::mlsched_feature_FEAT_delta_hot, 1);
        assert_eq!(decide(&hot), Verdict::DenyHot);
        assert_eq!(
            decide(&with(hot, c::mlsched_feature_FEAT_extra_fails, 1)),
            Verdict::AllowedFails
        );
        // running beats the failure count, migration-disabled beats affinity
        let run = with(
            with(hot, c::mlsched_feature_FEAT_extra_fails, 1),
            c::mlsched_feature_FEAT_running,
            1,
        );
        assert_eq!(decide(&run), Verdict::DenyRunning);
        let pinned = with(
            with(v, c::mlsched_feature_FEAT_dst_allowed, 0),
            c::mlsched_feature_FEAT_migration_disabled,
            1,
        );
        assert_eq!(decide(&pinned), Verdict::DenyPinned);
    }

    #[test]
    fn load_features_do_not_matter_to_the_heuristic() {
        let v = cold_movable();
        let loaded = with(
            with(v, c::mlsched_feature_FEAT_src_len, 40),
            c::mlsched_feature_FEAT_weight,
            9000,
        );
        assert_eq!(decide(&v), decide(&loaded));
    }

    /// The guard reads exactly the features features.def marks `guard`:
    /// each of them alone makes it refuse a cold movable task, and no other
    /// feature changes what it says, on any vector.
    #[test]
    fn ml_guard_reads_the_guard_features_only() {
        use crate::learn::features::{Parity, SCHEMA};
        assert_eq!(ml_guard(&cold_movable()), None);
        for (i, feat) in SCHEMA.features.iter().enumerate() {
            let flipped = with(cold_movable(), i as u32, 1 - cold_movable()[i]);
            assert_eq!(
                ml_guard(&flipped).is_some(),
                feat.parity == Parity::Guard,
                "{}",
                feat.name
            );
        }
        for v in crate::sched::selftest::vectors(2000, 7) {
            for (i, feat) in SCHEMA.features.iter().enumerate() {
                if feat.parity == Parity::Same {
                    let w = with(v, i as u32, v[i].wrapping_add(1));
                    assert_eq!(ml_guard(&v), ml_guard(&w), "{} on {v:?}", feat.name);
                }
            }
        }
    }

    #[test]
    fn verdict_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_raw(v as i64), Some(v));
        }
        assert_eq!(Verdict::from_raw(99), None);
    }

    #[test]
    fn balance_failures_counted_as_load_balance_counts_them() {
        use c::scan_seen_SCAN_REFUSED as REFUSED;
        use c::{scan_seen_SCAN_MOVED as MOVED, scan_seen_SCAN_PINNED as PINNED};
        // a refused candidate is a failure of an idle CPU's balance...
        assert_eq!(balance_failed_next(0, REFUSED, 1), 1);
        assert_eq!(balance_failed_next(3, REFUSED | PINNED, 1), 4);
        // ...but not of a newly idle one (the kernel's CPU_NEWLY_IDLE)
        assert_eq!(balance_failed_next(3, REFUSED, 2), 3);
        // a move resets it, whatever else was refused
        assert_eq!(balance_failed_next(5, MOVED | REFUSED | PINNED, 1), 0);
        assert_eq!(balance_failed_next(5, MOVED, 2), 0);
        // only pinned tasks: LBF_ALL_PINNED resets it, newly idle or not
        assert_eq!(balance_failed_next(5, PINNED, 1), 0);
        assert_eq!(balance_failed_next(5, PINNED, 2), 0);
        // nothing to take: balanced, reset
        assert_eq!(balance_failed_next(5, 0, 1), 0);
        // with cache_nice_tries 1, hot tasks move after the second failure
        // of an idle CPU, never after newly-idle ones alone
        let after = |n, idle| (0..n).fold(0, |f, _| balance_failed_next(f, REFUSED, idle));
        assert!(after(2, 1) > 1);
        assert_eq!(after(100, 2), 0);
    }
}
