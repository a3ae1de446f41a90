//! Scheduler statistics: per-CPU counters from the BPF `stats` map, summed
//! here, served over scx_stats so that `--stats` (in process) and
//! `--monitor` (another process) print the same lines, scx style.  Task
//! migrations by path come from the `mlsched_moves` map (enum mig_path),
//! which the benchmark reads too (MovedBy), and the gate's decisions per
//! decision point from the `mlsched_gate` map (GateByPoint), likewise.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use scx_stats::prelude::*;
use scx_stats_derive::{stat_doc, Stats};
use serde::{Deserialize, Serialize};

use crate::sched::bpf_intf as c;

#[stat_doc]
#[derive(Clone, Debug, Default, Serialize, Deserialize, Stats)]
#[stat(top)]
pub struct Metrics {
    #[stat(desc = "Milliseconds covered by these counters")]
    pub uptime_ms: u64,
    #[stat(desc = "Tasks dispatched straight to an idle CPU")]
    pub dispatch_local: u64,
    #[stat(desc = "Tasks taken from the CPU's own DSQ")]
    pub dispatch_cpu_dsq: u64,
    #[stat(desc = "Tasks taken from the LLC's shared DSQ")]
    pub dispatch_llc_dsq: u64,
    #[stat(desc = "Tasks stolen from another CPU or LLC")]
    pub dispatch_stolen: u64,
    #[stat(desc = "Steal scans that found only tasks they may not take")]
    pub steal_failed: u64,
    #[stat(desc = "Idle CPUs kicked to pull work")]
    pub kicks: u64,
    #[stat(desc = "Slices renewed for prev: its vtime was not ahead of the queue heads")]
    pub keep_prev: u64,
    #[stat(
        desc = "can_migrate, at every point: allowed by the heuristic (at steals: task cold; elsewhere: the point's rule)"
    )]
    pub mig_allowed: u64,
    #[stat(desc = "can_migrate: allowed although hot, balancing failed too often")]
    pub mig_allowed_fails: u64,
    #[stat(desc = "can_migrate: refused, destination not in the task's affinity")]
    pub mig_deny_affinity: u64,
    #[stat(desc = "can_migrate: refused, task running")]
    pub mig_deny_running: u64,
    #[stat(desc = "can_migrate: refused, migration disabled")]
    pub mig_deny_pinned: u64,
    #[stat(
        desc = "can_migrate: refused, task cache-hot (a steal's, or a hot wakeup kept at enqueue)"
    )]
    pub mig_deny_hot: u64,
    #[stat(desc = "can_migrate: refused by the ML policy's guard, per-CPU kthread")]
    pub mig_deny_kthread: u64,
    #[stat(desc = "can_migrate: allowed by the model (--policy ml)")]
    pub mig_ml_allowed: u64,
    #[stat(desc = "can_migrate: refused by the model (--policy ml)")]
    pub mig_ml_denied: u64,
    #[stat(desc = "can_migrate: allowed by --explore's coin where the policy refused")]
    pub mig_explore_allowed: u64,
    #[stat(desc = "can_migrate: refused by --explore's coin where the policy allowed")]
    pub mig_explore_denied: u64,
    #[stat(desc = "Decisions --explore's coin chose (either action; see mig_explore_*)")]
    pub explored: u64,
    #[stat(desc = "... where it chose otherwise than the policy")]
    pub explore_flipped: u64,
    #[stat(desc = "--record: decisions made while the task's recorded one awaited its outcome")]
    pub out_superseded: u64,
    #[stat(desc = "--record: recorded decisions whose task left sched_ext before it ran")]
    pub out_censored: u64,
    #[stat(desc = "--record: outcomes lost to a full ring buffer")]
    pub out_dropped: u64,
    #[stat(desc = "Tree walks that said migrate (ml and shadow policies)")]
    pub ml_migrate: u64,
    #[stat(desc = "Tree walks that said stay")]
    pub ml_stay: u64,
    #[stat(
        desc = "Tree walks whose verdict equals the heuristic's, at every point (gate_*_agree: per point)"
    )]
    pub ml_agree_heuristic: u64,
    #[stat(desc = "Heuristic used: the walk passed the depth bound or met a bad node")]
    pub ml_fallback_walk: u64,
    #[stat(desc = "Heuristic used: userspace's heartbeat was stale (--feed-timeout-ms)")]
    pub ml_fallback_stale: u64,
    #[stat(desc = "Heuristic used: no model loaded")]
    pub ml_fallback_nomodel: u64,
    #[stat(desc = "Tree decisions sampled to the userspace twin")]
    pub samples: u64,
    #[stat(desc = "Samples the ring buffer could not take")]
    pub samples_dropped: u64,
    #[stat(desc = "Decisions sent to `run --record`")]
    pub records: u64,
    #[stat(desc = "Decisions `run --record` lost: its ring buffer was full")]
    pub records_dropped: u64,
    #[stat(desc = "Dispatches where the 100 ms starvation guard chose the task")]
    pub starvation_guard: u64,
    #[stat(desc = "Preempted RCU readers queued first, or kept on their CPU at slice end")]
    pub rcu_boost: u64,
    #[stat(desc = "CPUs that went idle while a task they were refused (not pinned) waited")]
    pub idle_refused: u64,
    #[stat(desc = "Idle CPUs woken that found nothing to run")]
    pub kick_wasted: u64,
    #[stat(desc = "Tick kicks skipped: backing off after wasted kicks")]
    pub kick_backoff: u64,
    #[stat(desc = "Queued wakeups that preempted their CPU's running task")]
    pub preempt: u64,
    #[stat(desc = "... of them, the CPU that ran the wakeup, looked at first")]
    pub preempt_local: u64,
    #[stat(
        desc = "Wakeups that armed a CPU's preemption timer: its task had not run --preempt-min-us yet"
    )]
    pub preempt_deferred: u64,
    #[stat(desc = "... timers that fired and preempted (the rule held for the queue head)")]
    pub preempt_timer: u64,
    #[stat(desc = "Steal candidates that bpf_task_from_pid() did not find")]
    pub steal_nopid: u64,
    #[stat(desc = "Total wait of queued wakeups until they ran (ns)")]
    pub wake_wait_ns: u64,
    #[stat(desc = "Queued wakeups that ran (for the mean wait)")]
    pub wake_waits: u64,
    #[stat(desc = "... of them, those that preempted another CPU's running task")]
    pub wake_preempted: u64,
    #[stat(desc = "... their total wait (ns)")]
    pub wake_preempted_ns: u64,
    #[stat(desc = "... those that preempted the task of the CPU that ran the wakeup")]
    pub wake_preempted_here: u64,
    #[stat(desc = "... their total wait (ns)")]
    pub wake_preempted_here_ns: u64,
    #[stat(desc = "... those for which an idle CPU was kicked")]
    pub wake_kicked: u64,
    #[stat(desc = "... their total wait (ns)")]
    pub wake_kicked_ns: u64,
    #[stat(
        desc = "... those that would have preempted a task that had not run --preempt-min-us yet"
    )]
    pub wake_too_soon: u64,
    #[stat(desc = "... their total wait (ns)")]
    pub wake_too_soon_ns: u64,
    #[stat(desc = "... those with nothing to preempt (not far enough ahead, shielded, not ours)")]
    pub wake_not_behind: u64,
    #[stat(desc = "... their total wait (ns)")]
    pub wake_not_behind_ns: u64,
    #[stat(desc = "Samples linfa's DecisionTree checked")]
    pub twin_checked: u64,
    #[stat(desc = "... on which linfa agreed with the BPF walk (must be all)")]
    pub twin_agree: u64,
    #[stat(desc = "... on which linfa disagreed (each is logged)")]
    pub twin_disagree: u64,
    #[stat(
        desc = "Task migrations of tasks in sched_ext (sched_migrate_task tracepoint); the moved_* add up to it"
    )]
    pub migrations: u64,
    #[stat(
        desc = "Migrations by path A: select_cpu's idle CPU (ran on another CPU than last time)"
    )]
    pub moved_wake_idle: u64,
    #[stat(desc = "Migrations by path B: the LLC's shared queue, taken by another CPU of the LLC")]
    pub moved_llc_pool: u64,
    #[stat(desc = "Migrations by path C: a preempting wakee put on the waking CPU")]
    pub moved_preempt_wakee: u64,
    #[stat(desc = "Migrations by a steal (the only path the migration gate answers)")]
    pub moved_steal: u64,
    #[stat(desc = "Migrations from its own CPU's queue (the kernel moved it at wakeup)")]
    pub moved_own_queue: u64,
    #[stat(
        desc = "Migrations no path accounts for: the tracepoint's count less the moved_* of the paths"
    )]
    pub moved_other: u64,
    #[stat(desc = "Gate decisions at A, select_cpu's idle CPU (not prev)")]
    pub gate_wake_idle: u64,
    #[stat(desc = "... that let the task move")]
    pub gate_wake_idle_allowed: u64,
    #[stat(desc = "... tree walks there (ml where the model decides, shadow everywhere)")]
    pub gate_wake_idle_walks: u64,
    #[stat(desc = "... walks whose verdict equals the point's heuristic")]
    pub gate_wake_idle_agree: u64,
    #[stat(desc = "Gate decisions at B, a wakeup's enqueue: its CPU or the LLC's pool")]
    pub gate_enq_wakeup: u64,
    #[stat(desc = "... that let the task move")]
    pub gate_enq_wakeup_allowed: u64,
    #[stat(desc = "... tree walks there (ml where the model decides, shadow everywhere)")]
    pub gate_enq_wakeup_walks: u64,
    #[stat(desc = "... walks whose verdict equals the point's heuristic")]
    pub gate_enq_wakeup_agree: u64,
    #[stat(desc = "Gate decisions at B, any other enqueue (preempted, slice ended)")]
    pub gate_enq_requeue: u64,
    #[stat(desc = "... that let the task move")]
    pub gate_enq_requeue_allowed: u64,
    #[stat(desc = "... tree walks there (ml where the model decides, shadow everywhere)")]
    pub gate_enq_requeue_walks: u64,
    #[stat(desc = "... walks whose verdict equals the point's heuristic")]
    pub gate_enq_requeue_agree: u64,
    #[stat(desc = "Gate decisions at C, a preempting wakee onto the waking CPU")]
    pub gate_preempt_wakee: u64,
    #[stat(desc = "... that let the task move")]
    pub gate_preempt_wakee_allowed: u64,
    #[stat(desc = "... tree walks there (ml where the model decides, shadow everywhere)")]
    pub gate_preempt_wakee_walks: u64,
    #[stat(desc = "... walks whose verdict equals the point's heuristic")]
    pub gate_preempt_wakee_agree: u64,
    #[stat(desc = "Gate decisions at steals from another CPU's or LLC's DSQ")]
    pub gate_steal: u64,
    #[stat(desc = "... that let the task move")]
    pub gate_steal_allowed: u64,
    #[stat(desc = "... tree walks there (ml where the model decides, shadow everywhere)")]
    pub gate_steal_walks: u64,
    #[stat(desc = "... walks whose verdict equals the point's heuristic")]
    pub gate_steal_agree: u64,
    #[stat(
        desc = "Twin samples whose BPF heuristic verdict differs from the Rust heuristic's (must be 0)"
    )]
    pub twin_heuristic_disagree: u64,
    #[stat(desc = "Generation of the model in force (0: none); not a counter")]
    pub model_generation: u64,
    #[stat(
        desc = "Decision points the model in force declares, bit 1 << enum mig_point (0: none); not a counter"
    )]
    pub model_points: u64,
}

/// Task migrations by path over a window: the `mlsched_moves` counters
/// (enum move_idx), summed over CPUs.  `--stats` and the benchmark read
/// them alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedBy {
    /// Every migration of a task in sched_ext (the tracepoint).
    pub all: u64,
    pub wake_idle: u64,
    pub llc_pool: u64,
    pub preempt_wakee: u64,
    pub steal: u64,
    pub own_queue: u64,
}

impl MovedBy {
    pub fn from_counters(cnt: &[u64]) -> Self {
        let at = |i: u32| cnt.get(i as usize).copied().unwrap_or(0);
        let path = |p: u32| at(c::move_idx_MOVES_PATH + p);
        Self {
            all: at(c::move_idx_MOVES_TRACEPOINT),
            wake_idle: path(c::mig_path_PATH_WAKE_IDLE),
            llc_pool: path(c::mig_path_PATH_LLC_POOL),
            preempt_wakee: path(c::mig_path_PATH_PREEMPT_WAKEE),
            steal: path(c::mig_path_PATH_STEAL),
            own_queue: path(c::mig_path_PATH_OWN_QUEUE),
        }
    }

    /// The moves the named paths account for.
    pub fn attributed(&self) -> u64 {
        self.wake_idle + self.llc_pool + self.preempt_wakee + self.steal + self.own_queue
    }

    /// What the tracepoint counted and no path accounts for: moves of
    /// tasks placed by none of ours (PATH_OTHER), and a task moved twice
    /// before it ran (ops.running sees one move).
    pub fn other(&self) -> u64 {
        self.all.saturating_sub(self.attributed())
    }

    /// Counters of `self` minus those of `rhs` (an earlier reading).
    pub fn since(&self, rhs: &Self) -> Self {
        Self {
            all: self.all.saturating_sub(rhs.all),
            wake_idle: self.wake_idle.saturating_sub(rhs.wake_idle),
            llc_pool: self.llc_pool.saturating_sub(rhs.llc_pool),
            preempt_wakee: self.preempt_wakee.saturating_sub(rhs.preempt_wakee),
            steal: self.steal.saturating_sub(rhs.steal),
            own_queue: self.own_queue.saturating_sub(rhs.own_queue),
        }
    }

    /// Read the map of a running scx_mlsched by its name, from any
    /// process (the benchmark): None when none is loaded.
    pub fn read_loaded() -> Option<Self> {
        read_loaded(MOVES_MAP, c::move_idx_NR_MOVE_COUNTERS as usize)
            .map(|cnt| Self::from_counters(&cnt))
    }
}

/// The name of the BPF map of task migrations by path.
pub const MOVES_MAP: &str = "mlsched_moves";
/// The name of the BPF map of the gate's decisions per point.
pub const GATE_MAP: &str = "mlsched_gate";

/// Sum the `n` per-CPU counters of the map named `name` of a loaded
/// scx_mlsched, from any process: None when none is loaded.
fn read_loaded(name: &str, n: usize) -> Option<Vec<u64>> {
    let info = libbpf_rs::query::MapInfoIter::default().find(|m| m.name.to_str() == Some(name))?;
    let map = libbpf_rs::MapHandle::from_map_id(info.id).ok()?;
    read_sum(&map, n).ok()
}

/// The gate's counters at one decision point (or the steals' two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCounts {
    /// Decisions can_migrate() made there.
    pub decided: u64,
    /// ... that let the task move.
    pub allowed: u64,
    /// Tree walks there (ml where its model decides, shadow everywhere).
    pub walks: u64,
    /// ... whose verdict equals the point's heuristic.
    pub agree: u64,
}

impl GateCounts {
    fn since(&self, rhs: &Self) -> Self {
        Self {
            decided: self.decided.saturating_sub(rhs.decided),
            allowed: self.allowed.saturating_sub(rhs.allowed),
            walks: self.walks.saturating_sub(rhs.walks),
            agree: self.agree.saturating_sub(rhs.agree),
        }
    }

    /// The tree's agreement with the heuristic in percent (None: no walk).
    pub fn agree_pct(&self) -> Option<f64> {
        (self.walks > 0).then(|| self.agree as f64 * 100.0 / self.walks as f64)
    }
}

/// The gate's decisions per decision point over a window: the
/// `mlsched_gate` counters (enum point_stat per enum mig_point), summed over
/// CPUs, the two steal points as one.  `--stats` and the benchmark read
/// them alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateByPoint {
    pub wake_idle: GateCounts,
    pub enq_wakeup: GateCounts,
    pub enq_requeue: GateCounts,
    pub preempt_wakee: GateCounts,
    pub steal: GateCounts,
}

impl GateByPoint {
    pub fn from_counters(cnt: &[u64]) -> Self {
        let at = |p: u32, what: u32| {
            cnt.get((p * c::point_stat_NR_POINT_STATS + what) as usize)
                .copied()
                .unwrap_or(0)
        };
        let point = |points: &[u32]| {
            let sum = |what| points.iter().map(|p| at(*p, what)).sum();
            GateCounts {
                decided: sum(c::point_stat_POINT_DECIDED),
                allowed: sum(c::point_stat_POINT_ALLOWED),
                walks: sum(c::point_stat_POINT_WALKS),
                agree: sum(c::point_stat_POINT_AGREE),
            }
        };
        Self {
            wake_idle: point(&[c::mig_point_POINT_WAKE_IDLE]),
            enq_wakeup: point(&[c::mig_point_POINT_ENQ_WAKEUP]),
            enq_requeue: point(&[c::mig_point_POINT_ENQ_REQUEUE]),
            preempt_wakee: point(&[c::mig_point_POINT_PREEMPT_WAKEE]),
            steal: point(&[
                c::mig_point_POINT_STEAL_CPU_DSQ,
                c::mig_point_POINT_STEAL_LLC_DSQ,
            ]),
        }
    }

    /// Counters of `self` minus those of `rhs` (an earlier reading).
    pub fn since(&self, rhs: &Self) -> Self {
        Self {
            wake_idle: self.wake_idle.since(&rhs.wake_idle),
            enq_wakeup: self.enq_wakeup.since(&rhs.enq_wakeup),
            enq_requeue: self.enq_requeue.since(&rhs.enq_requeue),
            preempt_wakee: self.preempt_wakee.since(&rhs.preempt_wakee),
            steal: self.steal.since(&rhs.steal),
        }
    }

    /// Read the map of a running scx_mlsched by its name: None when none is
    /// loaded (or a build without it is).
    pub fn read_loaded() -> Option<Self> {
        read_loaded(GATE_MAP, c::point_stat_NR_GATE_COUNTERS as usize)
            .map(|cnt| Self::from_counters(&cnt))
    }
}

/// Fields that are levels, not counters: `delta` keeps them as they are.
const GAUGES: &[&str] = &["model_generation", "model_points"];

impl Metrics {
    /// Build from the summed BPF counters, indexed by enum stat_idx (the
    /// userspace fields stay 0; the scheduler fills them).
    pub fn from_counters(cnt: &[u64]) -> Self {
        let at = |i: u32| cnt.get(i as usize).copied().unwrap_or(0);
        let mig = |v: u32| at(c::stat_idx_STAT_MIG_BASE + v);
        // (queued wakeups of this outcome that ran, their total wait in ns)
        let out = |o: u32| {
            (
                at(c::stat_idx_STAT_WAKE_OUT_WAITS + o),
                at(c::stat_idx_STAT_WAKE_OUT_NS + o),
            )
        };
        Self {
            dispatch_local: at(c::stat_idx_STAT_DISPATCH_LOCAL),
            dispatch_cpu_dsq: at(c::stat_idx_STAT_DISPATCH_CPU_DSQ),
            dispatch_llc_dsq: at(c::stat_idx_STAT_DISPATCH_LLC_DSQ),
            dispatch_stolen: at(c::stat_idx_STAT_DISPATCH_STOLEN),
            steal_failed: at(c::stat_idx_STAT_STEAL_FAILED),
            kicks: at(c::stat_idx_STAT_KICKS),
            keep_prev: at(c::stat_idx_STAT_KEEP_PREV),
            mig_allowed: mig(c::mig_verdict_MIG_ALLOWED),
            mig_allowed_fails: mig(c::mig_verdict_MIG_ALLOWED_FAILS),
            mig_deny_affinity: mig(c::mig_verdict_MIG_DENY_AFFINITY),
            mig_deny_running: mig(c::mig_verdict_MIG_DENY_RUNNING),
            mig_deny_pinned: mig(c::mig_verdict_MIG_DENY_PINNED),
            mig_deny_hot: mig(c::mig_verdict_MIG_DENY_HOT),
            mig_deny_kthread: mig(c::mig_verdict_MIG_DENY_KTHREAD),
            mig_ml_allowed: mig(c::mig_verdict_MIG_ML_ALLOWED),
            mig_ml_denied: mig(c::mig_verdict_MIG_ML_DENIED),
            mig_explore_allowed: mig(c::mig_verdict_MIG_EXPLORE_ALLOWED),
            mig_explore_denied: mig(c::mig_verdict_MIG_EXPLORE_DENIED),
            explored: at(c::stat_idx_STAT_EXPLORED),
            explore_flipped: at(c::stat_idx_STAT_EXPLORE_FLIPPED),
            out_superseded: at(c::stat_idx_STAT_OUT_SUPERSEDED),
            out_censored: at(c::stat_idx_STAT_OUT_CENSORED),
            out_dropped: at(c::stat_idx_STAT_OUT_DROPPED),
            ml_migrate: at(c::stat_idx_STAT_ML_MIGRATE),
            ml_stay: at(c::stat_idx_STAT_ML_STAY),
            ml_agree_heuristic: at(c::stat_idx_STAT_ML_AGREE),
            ml_fallback_walk: at(c::stat_idx_STAT_ML_FALLBACK_WALK),
            ml_fallback_stale: at(c::stat_idx_STAT_ML_FALLBACK_STALE),
            ml_fallback_nomodel: at(c::stat_idx_STAT_ML_FALLBACK_NOMODEL),
            samples: at(c::stat_idx_STAT_SAMPLES),
            samples_dropped: at(c::stat_idx_STAT_SAMPLES_DROPPED),
            records: at(c::stat_idx_STAT_RECORDS),
            records_dropped: at(c::stat_idx_STAT_RECORDS_DROPPED),
            starvation_guard: at(c::stat_idx_STAT_STARVATION_GUARD),
            rcu_boost: at(c::stat_idx_STAT_RCU_BOOST),
            idle_refused: at(c::stat_idx_STAT_IDLE_REFUSED),
            kick_wasted: at(c::stat_idx_STAT_KICK_WASTED),
            kick_backoff: at(c::stat_idx_STAT_KICK_BACKOFF),
            preempt: at(c::stat_idx_STAT_PREEMPT),
            preempt_local: at(c::stat_idx_STAT_PREEMPT_LOCAL),
            steal_nopid: at(c::stat_idx_STAT_STEAL_NOPID),
            preempt_deferred: at(c::stat_idx_STAT_PREEMPT_DEFERRED),
            preempt_timer: at(c::stat_idx_STAT_PREEMPT_TIMER),
            // The totals are the sums over the outcomes.
            wake_wait_ns: (0..c::wake_outcome_NR_WAKE_OUTCOMES)
                .map(|o| out(o).1)
                .sum(),
            wake_waits: (0..c::wake_outcome_NR_WAKE_OUTCOMES)
                .map(|o| out(o).0)
                .sum(),
            wake_preempted: out(c::wake_outcome_WAKE_PREEMPTED).0,
            wake_preempted_ns: out(c::wake_outcome_WAKE_PREEMPTED).1,
            wake_preempted_here: out(c::wake_outcome_WAKE_PREEMPTED_HERE).0,
            wake_preempted_here_ns: out(c::wake_outcome_WAKE_PREEMPTED_HERE).1,
            wake_kicked: out(c::wake_outcome_WAKE_KICKED).0,
            wake_kicked_ns: out(c::wake_outcome_WAKE_KICKED).1,
            wake_too_soon: out(c::wake_outcome_WAKE_TOO_SOON).0,
            wake_too_soon_ns: out(c::wake_outcome_WAKE_TOO_SOON).1,
            wake_not_behind: out(c::wake_outcome_WAKE_NOT_BEHIND).0,
            wake_not_behind_ns: out(c::wake_outcome_WAKE_NOT_BEHIND).1,
            ..Default::default()
        }
    }

    /// Counters of `self` minus those of `rhs` (an earlier reading); gauges
    /// keep `self`'s value.  Through serde, so that a new field cannot be
    /// forgotten here.
    pub fn delta(&self, rhs: &Self) -> Self {
        let (serde_json::Value::Object(mut a), serde_json::Value::Object(b)) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(rhs).unwrap_or_default(),
        ) else {
            return self.clone();
        };
        for (k, v) in a.iter_mut() {
            if GAUGES.contains(&k.as_str()) {
                continue;
            }
            let old = b.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            if let Some(new) = v.as_u64() {
                *v = new.saturating_sub(old).into();
            }
        }
        serde_json::from_value(serde_json::Value::Object(a)).unwrap_or_else(|_| self.clone())
    }

    /// Fill the migration fields from the `mlsched_moves` counters.
    pub fn with_moves(self, m: MovedBy) -> Self {
        Self {
            migrations: m.all,
            moved_wake_idle: m.wake_idle,
            moved_llc_pool: m.llc_pool,
            moved_preempt_wakee: m.preempt_wakee,
            moved_steal: m.steal,
            moved_own_queue: m.own_queue,
            moved_other: m.other(),
            ..self
        }
    }

    /// Fill the gate's per-point fields from the `mlsched_gate` counters.
    pub fn with_gate(self, g: GateByPoint) -> Self {
        Self {
            gate_wake_idle: g.wake_idle.decided,
            gate_wake_idle_allowed: g.wake_idle.allowed,
            gate_wake_idle_walks: g.wake_idle.walks,
            gate_wake_idle_agree: g.wake_idle.agree,
            gate_enq_wakeup: g.enq_wakeup.decided,
            gate_enq_wakeup_allowed: g.enq_wakeup.allowed,
            gate_enq_wakeup_walks: g.enq_wakeup.walks,
            gate_enq_wakeup_agree: g.enq_wakeup.agree,
            gate_enq_requeue: g.enq_requeue.decided,
            gate_enq_requeue_allowed: g.enq_requeue.allowed,
            gate_enq_requeue_walks: g.enq_requeue.walks,
            gate_enq_requeue_agree: g.enq_requeue.agree,
            gate_preempt_wakee: g.preempt_wakee.decided,
            gate_preempt_wakee_allowed: g.preempt_wakee.allowed,
            gate_preempt_wakee_walks: g.preempt_wakee.walks,
            gate_preempt_wakee_agree: g.preempt_wakee.agree,
            gate_steal: g.steal.decided,
            gate_steal_allowed: g.steal.allowed,
            gate_steal_walks: g.steal.walks,
            gate_steal_agree: g.steal.agree,
            ..self
        }
    }

    pub fn decisions_allowed(&self) -> u64 {
        self.mig_allowed + self.mig_allowed_fails + self.mig_ml_allowed + self.mig_explore_allowed
    }

    pub fn decisions_refused(&self) -> u64 {
        self.mig_deny_affinity
            + self.mig_deny_running
            + self.mig_deny_pinned
            + self.mig_deny_hot
            + self.mig_deny_kthread
            + self.mig_ml_denied
            + self.mig_explore_denied
    }

    fn per_sec(&self, n: u64) -> f64 {
        if self.uptime_ms == 0 {
            0.0
        } else {
            n as f64 * 1000.0 / self.uptime_ms as f64
        }
    }

    /// The readable line of `--stats`, one per interval: how many tasks
    /// moved and by which path, who decided (the model, the heuristic)
    /// and how, the queued wakeups and their mean wait, and anything
    /// abnormal (or "ok").  `--stats-verbose` prints every counter.
    pub fn format<W: Write>(&self, w: &mut W) -> Result<()> {
        let model = self.mig_ml_allowed + self.mig_ml_denied;
        let coin = self.mig_explore_allowed + self.mig_explore_denied;
        let all = self.decisions_allowed() + self.decisions_refused();
        let heuristic = all - model - coin;
        let h_allowed = self.decisions_allowed() - self.mig_ml_allowed - self.mig_explore_allowed;
        let walks = self.ml_migrate + self.ml_stay;
        let mut decided = format!(
            "heuristic {} ({} allowed, {} refused)",
            heuristic,
            h_allowed,
            heuristic - h_allowed
        );
        // The model is named where it decided (under `ml`, at its points).
        if model > 0 {
            decided = format!(
                "model {} ({} allowed, {} refused), {decided}",
                model, self.mig_ml_allowed, self.mig_ml_denied
            );
        }
        // --explore: the coin's turns, and where it overruled the policy.
        if self.explored > 0 {
            decided.push_str(&format!(
                ", explored {} ({} against the policy: {} moved, {} kept)",
                self.explored, coin, self.mig_explore_allowed, self.mig_explore_denied
            ));
        }
        if walks > 0 {
            decided.push_str(&format!(
                ", tree agrees with the heuristic {}",
                pct(self.ml_agree_heuristic, walks)
            ));
            // Under shadow the tree walks at every point, also where the
            // model declares nothing: say how it does where it would decide.
            if self.model_points != 0 {
                let (w, a) = self.walks_at_model_points();
                decided.push_str(&if w > 0 {
                    format!(" ({} at the model's points)", pct(a, w))
                } else {
                    " (no walk at the model's points)".to_string()
                });
            }
        }
        writeln!(
            w,
            "[scx_mlsched] {:.1} s: moved {} tasks (wake idle {}, llc queue {}, preempting wakee {}, steal {}, \
             own queue {}, other {}) | decided {}: {} | wakeups queued {}, mean wait {} | {}",
            self.uptime_ms as f64 / 1000.0,
            self.migrations,
            self.moved_wake_idle,
            self.moved_llc_pool,
            self.moved_preempt_wakee,
            self.moved_steal,
            self.moved_own_queue,
            self.moved_other,
            all,
            decided,
            self.wake_waits,
            self.mean_wake_wait(),
            self.abnormal(),
        )?;
        Ok(())
    }

    /// Tree walks, and those agreeing with the heuristic, at the points
    /// the model declares (`model_points`).
    fn walks_at_model_points(&self) -> (u64, u64) {
        let has = |p: u32| self.model_points & (1 << p) != 0;
        [
            (
                has(c::mig_point_POINT_WAKE_IDLE),
                self.gate_wake_idle_walks,
                self.gate_wake_idle_agree,
            ),
            (
                has(c::mig_point_POINT_ENQ_WAKEUP),
                self.gate_enq_wakeup_walks,
                self.gate_enq_wakeup_agree,
            ),
            (
                has(c::mig_point_POINT_ENQ_REQUEUE),
                self.gate_enq_requeue_walks,
                self.gate_enq_requeue_agree,
            ),
            (
                has(c::mig_point_POINT_PREEMPT_WAKEE),
                self.gate_preempt_wakee_walks,
                self.gate_preempt_wakee_agree,
            ),
            (
                has(c::mig_point_POINT_STEAL_CPU_DSQ) || has(c::mig_point_POINT_STEAL_LLC_DSQ),
                self.gate_steal_walks,
                self.gate_steal_agree,
            ),
        ]
        .iter()
        .filter(|(declared, _, _)| *declared)
        .fold((0, 0), |(w, a), (_, pw, pa)| (w + pw, a + pa))
    }

    /// What went wrong in the interval, "ok" when nothing did: the model's
    /// fallbacks to the heuristic, drops of samples and records, the
    /// twins' disagreements, and the starvation guard.
    pub fn abnormal(&self) -> String {
        let v: Vec<String> = [
            ("model fallbacks: walk", self.ml_fallback_walk),
            ("model fallbacks: stale heartbeat", self.ml_fallback_stale),
            ("samples dropped", self.samples_dropped),
            ("records dropped", self.records_dropped),
            ("outcomes dropped", self.out_dropped),
            ("twin disagreed (linfa)", self.twin_disagree),
            ("twin disagreed (heuristic)", self.twin_heuristic_disagree),
            ("starvation guard", self.starvation_guard),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
        if v.is_empty() {
            "ok".into()
        } else {
            format!("ABNORMAL: {}", v.join(", "))
        }
    }

    /// Every counter, as `--stats-verbose` (or `-v`) prints them.
    pub fn format_verbose<W: Write>(&self, w: &mut W) -> Result<()> {
        writeln!(
            w,
            "[scx_mlsched] moved -> {} (wake idle: {} llc pool: {} preempt wakee: {} steal: {} own queue: {} other: {})",
            self.migrations,
            self.moved_wake_idle,
            self.moved_llc_pool,
            self.moved_preempt_wakee,
            self.moved_steal,
            self.moved_own_queue,
            self.moved_other,
        )?;
        writeln!(
            w,
            "[scx_mlsched] dispatch -> local: {} cpu: {} llc: {} stolen: {} keep_prev: {} | steal_failed: {} kicks: {} | \
             can_migrate -> allow: {} allow_fails: {} hot: {} affinity: {} running: {} pinned: {} kthread: {} ml_allow: {} ml_deny: {}",
            self.dispatch_local,
            self.dispatch_cpu_dsq,
            self.dispatch_llc_dsq,
            self.dispatch_stolen,
            self.keep_prev,
            self.steal_failed,
            self.kicks,
            self.mig_allowed,
            self.mig_allowed_fails,
            self.mig_deny_hot,
            self.mig_deny_affinity,
            self.mig_deny_running,
            self.mig_deny_pinned,
            self.mig_deny_kthread,
            self.mig_ml_allowed,
            self.mig_ml_denied,
        )?;
        let walks = self.ml_migrate + self.ml_stay;
        writeln!(
            w,
            "[scx_mlsched] decisions/s: {:.0} (allowed {:.0}, refused {:.0}) | model gen {} -> migrate: {} stay: {} \
             agree_heuristic: {} fallback walk: {} stale: {} nomodel: {} | twin -> checked: {} agree: {} disagree: {} \
             samples: {} dropped: {} | records: {} dropped: {} superseded: {} censored: {} outcomes dropped: {} \
             | explored: {} flipped: {}",
            self.per_sec(self.decisions_allowed() + self.decisions_refused()),
            self.per_sec(self.decisions_allowed()),
            self.per_sec(self.decisions_refused()),
            self.model_generation,
            self.ml_migrate,
            self.ml_stay,
            pct(self.ml_agree_heuristic, walks),
            self.ml_fallback_walk,
            self.ml_fallback_stale,
            self.ml_fallback_nomodel,
            self.twin_checked,
            pct(self.twin_agree, self.twin_checked),
            self.twin_disagree,
            self.samples,
            self.samples_dropped,
            self.records,
            self.records_dropped,
            self.out_superseded,
            self.out_censored,
            self.out_dropped,
            self.explored,
            self.explore_flipped,
        )?;
        // allowed/decided per point, and the tree's agreement where it walked
        let gate = |decided: u64, allowed: u64, walks: u64, agree: u64| {
            if walks == 0 {
                format!("{allowed}/{decided}")
            } else {
                format!("{allowed}/{decided} (tree agrees {})", pct(agree, walks))
            }
        };
        writeln!(
            w,
            "[scx_mlsched] gate allowed/asked -> wake idle: {} enq wakeup: {} enq requeue: {} preempt wakee: {} steal: {} \
             | twin heuristic disagree: {}",
            gate(self.gate_wake_idle, self.gate_wake_idle_allowed, self.gate_wake_idle_walks, self.gate_wake_idle_agree),
            gate(self.gate_enq_wakeup, self.gate_enq_wakeup_allowed, self.gate_enq_wakeup_walks, self.gate_enq_wakeup_agree),
            gate(self.gate_enq_requeue, self.gate_enq_requeue_allowed, self.gate_enq_requeue_walks, self.gate_enq_requeue_agree),
            gate(
                self.gate_preempt_wakee,
                self.gate_preempt_wakee_allowed,
                self.gate_preempt_wakee_walks,
                self.gate_preempt_wakee_agree
            ),
            gate(self.gate_steal, self.gate_steal_allowed, self.gate_steal_walks, self.gate_steal_agree),
            self.twin_heuristic_disagree,
        )?;
        writeln!(
            w,
            "[scx_mlsched] wakeups -> queued: {} mean wait: {} preempt: {} ({} local) | idle while refused: {} | \
             kicks wasted: {} backoff: {} | starvation guard: {} rcu boost: {} steal nopid: {}",
            self.wake_waits,
            self.mean_wake_wait(),
            self.preempt,
            self.preempt_local,
            self.idle_refused,
            self.kick_wasted,
            self.kick_backoff,
            self.starvation_guard,
            self.rcu_boost,
            self.steal_nopid,
        )?;
        writeln!(
            w,
            "[scx_mlsched] wake waits -> preempted: {} ({}) here: {} ({}) kicked idle: {} ({}) too soon: {} ({}, \
             timers armed: {} fired: {}) not behind: {} ({})",
            self.wake_preempted,
            mean_us(self.wake_preempted_ns, self.wake_preempted),
            self.wake_preempted_here,
            mean_us(self.wake_preempted_here_ns, self.wake_preempted_here),
            self.wake_kicked,
            mean_us(self.wake_kicked_ns, self.wake_kicked),
            self.wake_too_soon,
            mean_us(self.wake_too_soon_ns, self.wake_too_soon),
            self.preempt_deferred,
            self.preempt_timer,
            self.wake_not_behind,
            mean_us(self.wake_not_behind_ns, self.wake_not_behind),
        )?;
        Ok(())
    }

    /// Mean wait of queued wakeups until they ran, "-" without any.
    pub fn mean_wake_wait(&self) -> String {
        mean_us(self.wake_wait_ns, self.wake_waits)
    }
}

/// `n` of `of` in percent, "-" when `of` is 0.
fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "-".to_string()
    } else {
        format!("{:.2}%", n as f64 * 100.0 / of as f64)
    }
}

/// `ns / n` in microseconds, "-" when `n` is 0.
fn mean_us(ns: u64, n: u64) -> String {
    match ns.checked_div(n) {
        Some(ns) => format!("{} us", ns / 1000),
        None => "-".to_string(),
    }
}

/// Sum the per-CPU `struct stats_val` of a PERCPU_ARRAY with one entry.
pub fn read_counters(map: &impl MapCore) -> Result<Vec<u64>> {
    read_sum(map, c::stat_idx_NR_MLSCHED_STATS as usize)
}

/// Sum `n` u64 counters of entry 0 of a PERCPU_ARRAY over the CPUs.
pub fn read_sum(map: &impl MapCore, n: usize) -> Result<Vec<u64>> {
    let key = 0u32.to_ne_bytes();
    let per_cpu = map
        .lookup_percpu(&key, MapFlags::ANY)
        .with_context(|| format!("reading the {} map", map.name().to_string_lossy()))?
        .with_context(|| format!("the {} map has no entry 0", map.name().to_string_lossy()))?;
    Ok(sum_per_cpu(&per_cpu, n))
}

/// Sum `n` native-endian u64 counters over the per-CPU value blobs.
pub fn sum_per_cpu(per_cpu: &[Vec<u8>], n: usize) -> Vec<u64> {
    let mut sum = vec![0u64; n];
    for blob in per_cpu {
        for (i, chunk) in blob.chunks_exact(8).take(n).enumerate() {
            sum[i] = sum[i].wrapping_add(u64::from_ne_bytes(chunk.try_into().unwrap()));
        }
    }
    sum
}

pub fn server_data() -> StatsServerData<(), Metrics> {
    let open: Box<dyn StatsOpener<(), Metrics>> = Box::new(move |(req_ch, res_ch)| {
        req_ch.send(())?;
        let mut prev = res_ch.recv()?;
        let read: Box<dyn StatsReader<(), Metrics>> = Box::new(move |_args, (req_ch, res_ch)| {
            req_ch.send(())?;
            let cur = res_ch.recv()?;
            let delta = cur.delta(&prev);
            prev = cur;
            delta.to_json()
        });
        Ok(read)
    });
    StatsServerData::new()
        .add_meta(Metrics::meta())
        .add_ops("top", StatsOps { open, close: None })
}

/// Set once this process's stats server is up: `--stats` waits for it,
/// so that its first connection does not find it missing (scx_utils then
/// logs "Stats server not available, retrying...").
pub static SERVER_UP: AtomicBool = AtomicBool::new(false);

/// How `--stats` and `--monitor` print each interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The readable line (`Metrics::format`).
    Line,
    /// Every counter (`--stats-verbose`, `-v`).
    Verbose,
    /// The interval's counters as one JSON object per line, the shape of
    /// the scx_stats server's reply (`--stats-json`), for tools.
    Json,
}

impl Metrics {
    /// Print this interval in `fmt`.
    pub fn print<W: Write>(&self, fmt: Format, w: &mut W) -> Result<()> {
        match fmt {
            Format::Line => self.format(w),
            Format::Verbose => self.format_verbose(w),
            Format::Json => {
                serde_json::to_writer(&mut *w, self)?;
                writeln!(w)?;
                Ok(())
            }
        }
    }
}

/// Print the stats of a running instance every `intv` until `shutdown`,
/// in `fmt`.  `own`: the instance is this process (`--stats`), so wait
/// until its server is up.
pub fn monitor(intv: Duration, shutdown: Arc<AtomicBool>, fmt: Format, own: bool) -> Result<()> {
    while own && !SERVER_UP.load(Ordering::Relaxed) {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    scx_utils::monitor_stats::<Metrics>(
        &[],
        intv,
        || shutdown.load(Ordering::Relaxed),
        |m| m.print(fmt, &mut std::io::stdout()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_blobs_are_summed_per_counter() {
        let cpu = |vals: &[u64]| {
            vals.iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        let sum = sum_per_cpu(&[cpu(&[1, 2, 3]), cpu(&[10, 0, 30])], 3);
        assert_eq!(sum, vec![11, 2, 33]);
    }

    #[test]
    fn counters_land_in_their_fields_and_delta_subtracts() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        cnt[c::stat_idx_STAT_DISPATCH_STOLEN as usize] = 7;
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_DENY_HOT) as usize] = 5;
        let m = Metrics::from_counters(&cnt);
        assert_eq!(
            (m.dispatch_stolen, m.mig_deny_hot, m.mig_allowed),
            (7, 5, 0)
        );
        let d = m.delta(&Metrics {
            dispatch_stolen: 2,
            ..Default::default()
        });
        assert_eq!(d.dispatch_stolen, 5);
        let mut out = Vec::new();
        d.format_verbose(&mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("stolen: 5"));
    }

    #[test]
    fn json_lines_carry_every_counter_and_read_back() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        cnt[c::stat_idx_STAT_DISPATCH_STOLEN as usize] = 7;
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_DENY_HOT) as usize] = 5;
        let m = Metrics::from_counters(&cnt);
        let mut out = Vec::new();
        m.print(Format::Json, &mut out).unwrap();
        m.print(Format::Json, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "one object per line: {out}");
        let back: Metrics = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&m).unwrap()
        );
        assert_eq!(back.dispatch_stolen, 7);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["dispatch_stolen"], 7);
    }

    #[test]
    fn moves_by_path_add_up_to_the_tracepoint() {
        let mut cnt = vec![0u64; c::move_idx_NR_MOVE_COUNTERS as usize];
        let path = |p: u32| (c::move_idx_MOVES_PATH + p) as usize;
        cnt[path(c::mig_path_PATH_WAKE_IDLE)] = 40;
        cnt[path(c::mig_path_PATH_LLC_POOL)] = 30;
        cnt[path(c::mig_path_PATH_PREEMPT_WAKEE)] = 5;
        cnt[path(c::mig_path_PATH_STEAL)] = 2;
        cnt[path(c::mig_path_PATH_OWN_QUEUE)] = 1;
        cnt[path(c::mig_path_PATH_OTHER)] = 3; // part of "other"
        cnt[c::move_idx_MOVES_TRACEPOINT as usize] = 90;
        let m = MovedBy::from_counters(&cnt);
        assert_eq!((m.attributed(), m.other()), (78, 12));
        assert_eq!(m.attributed() + m.other(), m.all);
        let earlier = MovedBy {
            all: 10,
            wake_idle: 10,
            ..Default::default()
        };
        let d = m.since(&earlier);
        assert_eq!((d.all, d.wake_idle, d.other()), (80, 30, 12));
        let s = Metrics::default().with_moves(m);
        let mut out = Vec::new();
        s.format_verbose(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("moved -> 90 (wake idle: 40 llc pool: 30 preempt wakee: 5 steal: 2 own queue: 1 other: 12)"),
            "{out}"
        );
    }

    #[test]
    fn gate_counters_per_point() {
        let mut cnt = vec![0u64; c::point_stat_NR_GATE_COUNTERS as usize];
        let at = |p: u32, what: u32| (p * c::point_stat_NR_POINT_STATS + what) as usize;
        cnt[at(c::mig_point_POINT_WAKE_IDLE, c::point_stat_POINT_DECIDED)] = 10;
        cnt[at(c::mig_point_POINT_WAKE_IDLE, c::point_stat_POINT_ALLOWED)] = 9;
        cnt[at(c::mig_point_POINT_ENQ_WAKEUP, c::point_stat_POINT_DECIDED)] = 8;
        cnt[at(c::mig_point_POINT_ENQ_WAKEUP, c::point_stat_POINT_ALLOWED)] = 2;
        cnt[at(c::mig_point_POINT_ENQ_WAKEUP, c::point_stat_POINT_WALKS)] = 8;
        cnt[at(c::mig_point_POINT_ENQ_WAKEUP, c::point_stat_POINT_AGREE)] = 6;
        // both steal points count as one
        cnt[at(
            c::mig_point_POINT_STEAL_CPU_DSQ,
            c::point_stat_POINT_DECIDED,
        )] = 3;
        cnt[at(
            c::mig_point_POINT_STEAL_LLC_DSQ,
            c::point_stat_POINT_DECIDED,
        )] = 4;
        cnt[at(
            c::mig_point_POINT_STEAL_LLC_DSQ,
            c::point_stat_POINT_ALLOWED,
        )] = 1;
        // the last counter of the map is the preempting wakee's agreement
        cnt[c::point_stat_NR_GATE_COUNTERS as usize - 1] = 5;
        let g = GateByPoint::from_counters(&cnt);
        assert_eq!(g.enq_wakeup.agree_pct(), Some(75.0));
        assert_eq!(g.wake_idle.agree_pct(), None);
        let earlier = GateByPoint {
            steal: GateCounts {
                decided: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(g.since(&earlier).steal.decided, 5);
        let m = Metrics::default().with_gate(g);
        assert_eq!((m.gate_wake_idle, m.gate_wake_idle_allowed), (10, 9));
        assert_eq!((m.gate_steal, m.gate_steal_allowed), (7, 1));
        assert_eq!(m.gate_preempt_wakee_agree, 5);
        assert_eq!(m.gate_enq_requeue, 0);
        let mut out = Vec::new();
        m.format_verbose(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("wake idle: 9/10 enq wakeup: 2/8 (tree agrees 75.00%) enq requeue: 0/0"),
            "{out}"
        );
        assert!(out.contains("steal: 1/7 |"), "{out}");
    }

    #[test]
    fn wakeup_and_kick_counters_are_printed() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        let o = c::wake_outcome_WAKE_PREEMPTED;
        cnt[(c::stat_idx_STAT_WAKE_OUT_NS + o) as usize] = 9_000_000;
        cnt[(c::stat_idx_STAT_WAKE_OUT_WAITS + o) as usize] = 3;
        cnt[c::stat_idx_STAT_KICK_WASTED as usize] = 11;
        cnt[c::stat_idx_STAT_STARVATION_GUARD as usize] = 2;
        cnt[c::stat_idx_STAT_RCU_BOOST as usize] = 4;
        let m = Metrics::from_counters(&cnt);
        assert_eq!(m.mean_wake_wait(), "3000 us");
        assert_eq!(Metrics::default().mean_wake_wait(), "-");
        let mut out = Vec::new();
        m.format_verbose(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("queued: 3 mean wait: 3000 us"), "{out}");
        assert!(out.contains("kicks wasted: 11"), "{out}");
        assert!(out.contains("starvation guard: 2 rcu boost: 4"), "{out}");
    }

    #[test]
    fn wake_waits_are_split_by_outcome() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        let at = |base: u32, o: u32| (base + o) as usize;
        cnt[at(
            c::stat_idx_STAT_WAKE_OUT_WAITS,
            c::wake_outcome_WAKE_TOO_SOON,
        )] = 4;
        cnt[at(c::stat_idx_STAT_WAKE_OUT_NS, c::wake_outcome_WAKE_TOO_SOON)] = 8_000_000;
        cnt[at(
            c::stat_idx_STAT_WAKE_OUT_WAITS,
            c::wake_outcome_WAKE_PREEMPTED,
        )] = 2;
        cnt[at(c::stat_idx_STAT_WAKE_OUT_NS, c::wake_outcome_WAKE_PREEMPTED)] = 600_000;
        // The outcome counters sit between the RCU boosts and the verdicts.
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_ALLOWED) as usize] = 1;
        cnt[c::stat_idx_STAT_PREEMPT_DEFERRED as usize] = 5;
        cnt[c::stat_idx_STAT_PREEMPT_TIMER as usize] = 3;
        let m = Metrics::from_counters(&cnt);
        assert_eq!((m.wake_too_soon, m.wake_too_soon_ns), (4, 8_000_000));
        assert_eq!((m.wake_preempted, m.wake_kicked, m.mig_allowed), (2, 0, 1));
        let mut out = Vec::new();
        m.format_verbose(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("preempted: 2 (300 us) here: 0 (-) kicked idle: 0 (-) too soon: 4 (2000 us, timers armed: 5 fired: 3)"), "{out}");
    }

    /// --explore's counters come from their indices, its flips count as
    /// decisions of their own (neither the heuristic's nor the model's),
    /// and the line names them only when the coin was tossed.
    #[test]
    fn explored_decisions_are_counted_apart() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        let v = |verdict: u32| (c::stat_idx_STAT_MIG_BASE + verdict) as usize;
        cnt[v(c::mig_verdict_MIG_ALLOWED)] = 50;
        cnt[v(c::mig_verdict_MIG_DENY_HOT)] = 20;
        cnt[v(c::mig_verdict_MIG_EXPLORE_ALLOWED)] = 4;
        cnt[v(c::mig_verdict_MIG_EXPLORE_DENIED)] = 3;
        cnt[c::stat_idx_STAT_EXPLORED as usize] = 15;
        cnt[c::stat_idx_STAT_EXPLORE_FLIPPED as usize] = 7;
        cnt[c::stat_idx_STAT_OUT_SUPERSEDED as usize] = 9;
        cnt[c::stat_idx_STAT_OUT_CENSORED as usize] = 2;
        cnt[c::stat_idx_STAT_OUT_DROPPED as usize] = 1;
        let m = Metrics::from_counters(&cnt);
        assert_eq!((m.explored, m.explore_flipped), (15, 7));
        assert_eq!((m.out_superseded, m.out_censored, m.out_dropped), (9, 2, 1));
        assert_eq!((m.decisions_allowed(), m.decisions_refused()), (54, 23));
        let mut out = Vec::new();
        m.format(&mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains("decided 77: heuristic 70 (50 allowed, 20 refused), explored 15 (7 against the policy: 4 moved, 3 kept)"),
            "{line}"
        );
        assert!(line.contains("ABNORMAL: outcomes dropped 1"), "{line}");
        let quiet = Metrics {
            explored: 0,
            out_dropped: 0,
            ..m
        };
        let mut out = Vec::new();
        quiet.format(&mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(
            !line.contains("explored") && line.ends_with("| ok\n"),
            "{line}"
        );
    }

    #[test]
    fn ml_counters_rates_and_gauges() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        cnt[c::stat_idx_STAT_ML_MIGRATE as usize] = 30;
        cnt[c::stat_idx_STAT_ML_STAY as usize] = 70;
        cnt[c::stat_idx_STAT_ML_AGREE as usize] = 99;
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_ML_ALLOWED) as usize] = 30;
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_ML_DENIED) as usize] = 70;
        let now = Metrics {
            uptime_ms: 3000,
            model_generation: 4,
            twin_checked: 10,
            twin_agree: 10,
            ..Metrics::from_counters(&cnt)
        };
        let before = Metrics {
            uptime_ms: 1000,
            model_generation: 3,
            ..Default::default()
        };
        let d = now.delta(&before);
        assert_eq!(
            (d.uptime_ms, d.model_generation, d.ml_migrate),
            (2000, 4, 30)
        );
        assert_eq!((d.decisions_allowed(), d.decisions_refused()), (30, 70));
        let mut out = Vec::new();
        d.format_verbose(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("decisions/s: 50 (allowed 15, refused 35)"),
            "{out}"
        );
        assert!(out.contains("agree_heuristic: 99.00%"), "{out}");
        assert!(out.contains("model gen 4"), "{out}");
        assert!(out.contains("agree: 100.00% disagree: 0"), "{out}");
    }

    #[test]
    fn the_readable_line_says_what_moved_who_decided_and_what_went_wrong() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        let v = |x: u32| (c::stat_idx_STAT_MIG_BASE + x) as usize;
        cnt[v(c::mig_verdict_MIG_ALLOWED)] = 40;
        cnt[v(c::mig_verdict_MIG_DENY_HOT)] = 10;
        cnt[v(c::mig_verdict_MIG_ML_ALLOWED)] = 3;
        cnt[v(c::mig_verdict_MIG_ML_DENIED)] = 7;
        cnt[c::stat_idx_STAT_ML_MIGRATE as usize] = 3;
        cnt[c::stat_idx_STAT_ML_STAY as usize] = 7;
        cnt[c::stat_idx_STAT_ML_AGREE as usize] = 5;
        let o = c::wake_outcome_WAKE_KICKED;
        cnt[(c::stat_idx_STAT_WAKE_OUT_NS + o) as usize] = 4_000_000;
        cnt[(c::stat_idx_STAT_WAKE_OUT_WAITS + o) as usize] = 2;
        let moved = MovedBy {
            all: 12,
            wake_idle: 5,
            llc_pool: 4,
            steal: 1,
            ..Default::default()
        };
        let m = Metrics {
            uptime_ms: 2000,
            model_generation: 1,
            ..Metrics::from_counters(&cnt)
        }
        .with_moves(moved);
        let mut out = Vec::new();
        m.format(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        // The whole line, field by field (a snapshot: a change to the
        // line's fields changes this test).
        assert_eq!(
            out,
            "[scx_mlsched] 2.0 s: moved 12 tasks (wake idle 5, llc queue 4, preempting wakee 0, steal 1, \
             own queue 0, other 2) | decided 60: model 10 (3 allowed, 7 refused), heuristic 50 (40 allowed, \
             10 refused), tree agrees with the heuristic 50.00% | wakeups queued 2, mean wait 2000 us | ok\n"
        );
        // Under shadow with a model of the steals only: the agreement
        // where the model would decide is said apart.
        let shadow = |steal_walks, steal_agree| Metrics {
            ml_migrate: 10,
            ml_agree_heuristic: 6,
            gate_enq_wakeup_walks: 8,
            gate_enq_wakeup_agree: 4,
            gate_steal_walks: steal_walks,
            gate_steal_agree: steal_agree,
            model_points: (1 << c::mig_point_POINT_STEAL_CPU_DSQ)
                | (1 << c::mig_point_POINT_STEAL_LLC_DSQ),
            ..Default::default()
        };
        let line = |m: Metrics| {
            let mut out = Vec::new();
            m.format(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let out = line(shadow(2, 2));
        assert!(
            out.contains("tree agrees with the heuristic 60.00% (100.00% at the model's points) |"),
            "{out}"
        );
        let out = line(shadow(0, 0));
        assert!(
            out.contains("tree agrees with the heuristic 60.00% (no walk at the model's points) |"),
            "{out}"
        );
        // A gauge: an interval's delta keeps it.
        assert_eq!(
            shadow(2, 2).delta(&shadow(1, 1)).model_points,
            shadow(0, 0).model_points
        );
        // Without a model and without walks, only the heuristic is named.
        let h = Metrics {
            mig_allowed: 1,
            ..Default::default()
        };
        let mut out = Vec::new();
        h.format(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("| decided 1: heuristic 1 (1 allowed, 0 refused) |"),
            "{out}"
        );
        // What went wrong is named, with its count.
        let bad = Metrics {
            records_dropped: 3,
            twin_disagree: 1,
            ..Default::default()
        };
        assert_eq!(
            bad.abnormal(),
            "ABNORMAL: records dropped 3, twin disagreed (linfa) 1"
        );
        assert_eq!(Metrics::default().abnormal(), "ok");
    }
}
