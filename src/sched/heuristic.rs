//! The userspace twin of can_migrate_decide() in bpf/main.bpf.c: each
//! decision point's heuristic on a feature vector.  At steals it is the
//! kernel's can_migrate_task() rules; at the scheduler's placements (A, B
//! and C of enum mig_path) it is the rule the scheduler followed there
//! before the gate asked, so that `--policy heuristic` behaves as it did.
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

/// The placements' points (enum mig_point), in enum order, with the
/// steals: every point where the scheduler asks its gate.
pub const SCHEDULER_POINTS: [u32; 6] = [
    c::mig_point_POINT_STEAL_CPU_DSQ,
    c::mig_point_POINT_STEAL_LLC_DSQ,
    c::mig_point_POINT_WAKE_IDLE,
    c::mig_point_POINT_ENQ_WAKEUP,
    c::mig_point_POINT_ENQ_REQUEUE,
    c::mig_point_POINT_PREEMPT_WAKEE,
];

/// The scheduler's options that change its heuristic (the rodata of
/// can_migrate_decide()); the default is the heuristic as shipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// `--requeue-local`: a cache-hot requeue (B, not a wakeup) stays.
    pub requeue_local: bool,
}

impl Rules {
    /// The rules of a run with these options.
    pub fn of(o: &crate::cli::RunOpts) -> Self {
        Rules {
            requeue_local: o.requeue_local,
        }
    }

    /// The rules a `run --record` file was recorded under (its header's
    /// `requeue_local`; absent in files older than the option: off).
    pub fn from_meta(meta: &std::collections::BTreeMap<String, String>) -> Self {
        Rules {
            requeue_local: meta.get("requeue_local").is_some_and(|v| v == "1"),
        }
    }

    /// The header entry from_meta() reads back.
    pub fn meta(&self) -> (&'static str, String) {
        ("requeue_local", (self.requeue_local as u8).to_string())
    }

    /// The heuristic of decision point `point` (enum mig_point); the
    /// kernel's rule at steals and at the collector's points.
    ///   A (wake idle), C (preempt wakee): allow.  The idle search chose the
    ///     CPU; C is asked only where the direct-preemption rule holds.
    ///   B (enqueue, wakeup or not): migration disabled, or a single allowed
    ///     CPU (dst_allowed 0 for the pool), stays; a cache-hot wakeup stays
    ///     (and with requeue_local a cache-hot requeue); the rest goes to
    ///     the LLC's pool.  running is 0 there by definition.
    pub fn decide_at(&self, v: &FeatureVec, point: u32) -> Verdict {
        // (what it reads is RULE_INPUTS, and nothing at A and C: can_migrate()'s
        // fast path relies on it)
        let hot_stays = point == c::mig_point_POINT_ENQ_WAKEUP
            || (point == c::mig_point_POINT_ENQ_REQUEUE && self.requeue_local);
        match point {
            c::mig_point_POINT_WAKE_IDLE | c::mig_point_POINT_PREEMPT_WAKEE => Verdict::Allowed,
            c::mig_point_POINT_ENQ_WAKEUP | c::mig_point_POINT_ENQ_REQUEUE => match decide(v) {
                hard @ (Verdict::DenyPinned | Verdict::DenyAffinity | Verdict::DenyRunning) => hard,
                _ if hot_stays && f(v, c::mlsched_feature_FEAT_delta_hot) != 0 => Verdict::DenyHot,
                _ => Verdict::Allowed,
            },
            _ => decide(v),
        }
    }
}

/// The shipped heuristic (default Rules) of decision point `point` (the
/// tests' shorthand; the scheduler's code takes its run's Rules).
#[cfg(test)]
pub fn decide_at(v: &FeatureVec, point: u32) -> Verdict {
    Rules::default().decide_at(v, point)
}

/// The boolean inputs of the kernel rule: all that decide_at() reads, at
/// any point.  BPF's mig_rule_fill() fills exactly these, and under the
/// heuristic policy, when not recording, can_migrate() fills nothing else
/// (nothing at all at A and C).
pub const RULE_INPUTS: [u32; 5] = [
    c::mlsched_feature_FEAT_migration_disabled,
    c::mlsched_feature_FEAT_dst_allowed,
    c::mlsched_feature_FEAT_running,
    c::mlsched_feature_FEAT_delta_hot,
    c::mlsched_feature_FEAT_extra_fails,
];

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

    /// Each placement's rule, as the scheduler followed it before the gate
    /// asked (bpf/main.bpf.c before issue #23): select_cpu's idle CPU was
    /// taken, a preempting wakee went onto the waking CPU, and enqueue kept
    /// on its CPU exactly `nr_cpus_allowed == 1 || migration disabled ||
    /// (wakeup && hot)`.
    #[test]
    fn each_point_reproduces_the_old_rule() {
        use c::{mig_point_POINT_ENQ_REQUEUE as REQUEUE, mig_point_POINT_ENQ_WAKEUP as WAKEUP};
        for v in crate::sched::selftest::vectors(500, 11) {
            for p in [
                c::mig_point_POINT_WAKE_IDLE,
                c::mig_point_POINT_PREEMPT_WAKEE,
            ] {
                assert_eq!(decide_at(&v, p), Verdict::Allowed);
            }
            // B's features: running is 0 there, dst_allowed is "more than one CPU"
            let v = with(v, c::mlsched_feature_FEAT_running, 0);
            let flag = |i: u32| v[i as usize] != 0;
            let pinned = !flag(c::mlsched_feature_FEAT_dst_allowed)
                || flag(c::mlsched_feature_FEAT_migration_disabled);
            let hot = flag(c::mlsched_feature_FEAT_delta_hot);
            for (p, wakeup) in [(WAKEUP, true), (REQUEUE, false)] {
                let stays = pinned || (wakeup && hot);
                assert_eq!(decide_at(&v, p).allows(), !stays, "point {p} on {v:?}");
            }
            for p in [
                c::mig_point_POINT_STEAL_CPU_DSQ,
                c::mig_point_POINT_STEAL_LLC_DSQ,
            ] {
                assert_eq!(decide_at(&v, p), decide(&v));
            }
        }
        // a hot preempted task leaves; a hot wakeup stays, and says why
        let hot = with(cold_movable(), c::mlsched_feature_FEAT_delta_hot, 1);
        assert_eq!(decide_at(&hot, REQUEUE), Verdict::Allowed);
        let local = Rules {
            requeue_local: true,
        };
        assert_eq!(local.decide_at(&hot, REQUEUE), Verdict::DenyHot);
        assert_eq!(local.decide_at(&cold_movable(), REQUEUE), Verdict::Allowed);
        let meta = std::collections::BTreeMap::from([(local.meta().0.to_string(), local.meta().1)]);
        assert_eq!(Rules::from_meta(&meta), local);
        assert_eq!(Rules::from_meta(&Default::default()), Rules::default());
        assert_eq!(decide_at(&hot, WAKEUP), Verdict::DenyHot);
        // failed balances do not let a hot wakeup go (they are a steal's)
        let fails = with(hot, c::mlsched_feature_FEAT_extra_fails, 1);
        assert_eq!(decide_at(&fails, WAKEUP), Verdict::DenyHot);
        assert_eq!(
            decide_at(&fails, c::mig_point_POINT_STEAL_CPU_DSQ),
            Verdict::AllowedFails
        );
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

    /// can_migrate()'s fast path (heuristic policy, not recording) fills
    /// only RULE_INPUTS, and nothing at A and C, leaving the rest 0: at
    /// every point the verdict on such a vector is the verdict on the whole.
    #[test]
    fn the_heuristic_reads_only_the_rule_inputs() {
        let all_points = 0..c::mig_point_NR_MIG_POINTS;
        for v in crate::sched::selftest::vectors(1000, 11) {
            for point in all_points.clone() {
                let mut w = [0i64; crate::learn::features::NR_FEATURES];
                if point != c::mig_point_POINT_WAKE_IDLE
                    && point != c::mig_point_POINT_PREEMPT_WAKEE
                {
                    for i in RULE_INPUTS {
                        w[i as usize] = v[i as usize];
                    }
                }
                assert_eq!(
                    decide_at(&v, point),
                    decide_at(&w, point),
                    "point {point}, {v:?}"
                );
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
