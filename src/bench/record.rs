//! What one benchmark run records (one arm in one round), and the metrics
//! the report derives from it.  The per-run JSON files hold these records
//! verbatim (with fio's and cyclictest's own JSON), so a report can be
//! remade from them without running anything again.

use serde::{Deserialize, Serialize};

use super::trace::{ByWorkload, TaskCounts};
use super::workload::{FioFigures, LatencyFigures, Shape};
use crate::sched::stats::{GateByPoint, GateCounts, MovedBy};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub arm: String,
    /// What the run compiled (records made before the units shape: make).
    #[serde(default)]
    pub shape: Shape,
    /// 0 is the warm-up round, discarded from every statistic.
    pub round: u32,
    /// Position of this arm in the round's shuffled order (0-based).
    pub position: u32,
    /// The run completed and every figure below is valid.
    pub ok: bool,
    /// Why it did not (scheduler failed to attach or was ejected, a
    /// workload failed).
    pub error: Option<String>,
    /// The ops name the kernel showed while the run went on (empty for the
    /// default scheduler).
    pub ops: String,
    pub compile_wall_s: f64,
    /// CPU time of the compile (user + sys of make and its children).
    pub compile_cpu_s: f64,
    /// compile_cpu_s / (CPUs x compile_wall_s): 1.0 keeps every CPU busy.
    pub efficiency: f64,
    /// Share of all CPU time that was busy (any task) during the compile.
    pub cpu_busy: f64,
    pub fio: FioFigures,
    pub latency: LatencyFigures,
    pub ctx_switches: u64,
    /// Task migrations counted by perf's cpu-migrations event (set_task_cpu(),
    /// where the sched_migrate_task tracepoint fires too).
    pub migrations: u64,
    pub migrations_per_60s: f64,
    /// Mean cost of the sched_ext scheduler's ops.dispatch program in ns per
    /// call during the compile (BPF program statistics, run_time_ns /
    /// run_cnt with kernel.bpf_stats_enabled); None for the default.
    #[serde(default)]
    pub dispatch_ns: Option<f64>,
    #[serde(default)]
    pub dispatch_calls: u64,
    /// The same for ops.select_cpu and ops.enqueue (None for the default,
    /// and in records made before they were measured).
    #[serde(default)]
    pub select_cpu_cost: Option<OpCost>,
    #[serde(default)]
    pub enqueue_cost: Option<OpCost>,
    /// fio's jobs' mean wait on the runqueue before each run, in us: after
    /// an I/O completion woke them, mostly (their sched_info counters, see
    /// workload::RunDelay).  None where the kernel does not count it.
    #[serde(default)]
    pub fio_wait_us: Option<f64>,
    /// The same over every task of the system during the compile
    /// (/proc/schedstat).
    #[serde(default)]
    pub run_wait_us: Option<f64>,
    /// Interrupts during the compile, summed over CPUs, by /proc/interrupts
    /// row (LOC and the IPI_ROWS), and the IPIs of those rows per 60 s.
    #[serde(default)]
    pub irqs: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub ipis_per_60s: Option<f64>,
    /// scx_mlsched's task migrations during the compile, by the path that
    /// placed the task (its `mlsched_moves` map); None for other arms.
    #[serde(default)]
    pub moved: Option<MovedBy>,
    /// scx_mlsched's gate decisions during the compile, per decision point
    /// (its `mlsched_gate` map); None for other arms and older builds.
    #[serde(default)]
    pub gate: Option<GateByPoint>,
    /// The compile's and fio's tasks' switches, run lengths, migrations
    /// and runqueue waits during the compile, each workload in its own
    /// cgroup (trace.rs); None in records made before they were counted.
    #[serde(default)]
    pub workloads: Option<ByWorkload>,
    /// The scheduler's exit status after SIGINT (None for the default).
    pub sched_exit: Option<i32>,
    /// fio's and cyclictest's own JSON outputs.
    pub fio_json: serde_json::Value,
    pub cyclictest_json: serde_json::Value,
}

/// Mean cost of one struct_ops callback over a run (BPF program statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpCost {
    pub ns_per_call: f64,
    pub calls: u64,
}

impl RunRecord {
    /// The file stem of the run's files under runs/: r<round>-<arm> for
    /// the make shape (as before there were shapes), r<round>-<shape>-<arm>
    /// for the others.
    pub fn stem(&self) -> String {
        match self.shape {
            Shape::Make => format!("r{}-{}", self.round, self.arm),
            s => format!("r{}-{}-{}", self.round, s.name(), self.arm),
        }
    }

    /// The callbacks whose cost is measured, by name, as recorded.
    pub fn op_costs(&self) -> [(&'static str, Option<OpCost>); 3] {
        [
            ("select_cpu", self.select_cpu_cost),
            ("enqueue", self.enqueue_cost),
            (
                "dispatch",
                self.dispatch_ns.map(|ns| OpCost {
                    ns_per_call: ns,
                    calls: self.dispatch_calls,
                }),
            ),
        ]
    }
}

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Neither (a count that describes behaviour, such as migrations).
    Neither,
}

pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
    pub get: fn(&RunRecord) -> f64,
}

/// Every metric the report gives, in its order; the first four are the
/// headline ones (the table of ratios and the chart).
pub const METRICS: &[Metric] = &[
    Metric {
        key: "compile_wall_s",
        label: "compile time (s)",
        better: Better::Lower,
        get: |r| r.compile_wall_s,
    },
    Metric {
        key: "fio_iops",
        label: "fio IOPS (read+write)",
        better: Better::Higher,
        get: |r| r.fio.iops,
    },
    Metric {
        key: "fio_clat_p99_us",
        label: "fio p99 completion latency (us)",
        better: Better::Lower,
        get: |r| r.fio.clat_p99_us,
    },
    Metric {
        key: "wakeup_p99_us",
        label: "cyclictest p99 wakeup latency (us)",
        better: Better::Lower,
        get: |r| r.latency.p99_us,
    },
    Metric {
        key: "efficiency",
        label: "scheduling efficiency (compile CPU / CPUs x wall)",
        better: Better::Higher,
        get: |r| r.efficiency,
    },
    Metric {
        key: "fio_clat_mean_us",
        label: "fio mean completion latency (us)",
        better: Better::Lower,
        get: |r| r.fio.clat_mean_us,
    },
    Metric {
        key: "wakeup_avg_us",
        label: "cyclictest mean wakeup latency (us)",
        better: Better::Lower,
        get: |r| r.latency.avg_us,
    },
    Metric {
        key: "fio_wait_us",
        label: "fio mean runqueue wait per run (us)",
        better: Better::Lower,
        get: |r| r.fio_wait_us.unwrap_or(f64::NAN),
    },
    Metric {
        key: "run_wait_us",
        label: "mean runqueue wait per run, all tasks (us)",
        better: Better::Lower,
        get: |r| r.run_wait_us.unwrap_or(f64::NAN),
    },
    Metric {
        key: "ipis_per_60s",
        label: "scheduling IPIs per 60 s (RES+CAL+TLB+IWI)",
        better: Better::Neither,
        get: |r| r.ipis_per_60s.unwrap_or(f64::NAN),
    },
    Metric {
        key: "ctx_switches",
        label: "context switches",
        better: Better::Neither,
        get: |r| r.ctx_switches as f64,
    },
    Metric {
        key: "migrations_per_60s",
        label: "task migrations per 60 s",
        better: Better::Neither,
        get: |r| r.migrations_per_60s,
    },
    Metric {
        key: "loc_per_s",
        label: "local timer interrupts per s, all CPUs (ticks and hrtimers: the slice's end)",
        better: Better::Neither,
        get: |r| match r.irqs.get("LOC") {
            Some(&n) if r.compile_wall_s > 0.0 => n as f64 / r.compile_wall_s,
            _ => f64::NAN,
        },
    },
    Metric {
        key: "compile_switches",
        label: "the compile's tasks (own cgroup): switches off a CPU",
        better: Better::Neither,
        get: |r| compile(r, |t| Some(t.switches as f64)),
    },
    Metric {
        key: "compile_involuntary",
        label: "... involuntary (still runnable: preempted, or the slice ended)",
        better: Better::Lower,
        get: |r| compile(r, |t| Some(t.involuntary as f64)),
    },
    Metric {
        key: "compile_by_fio",
        label: "... ... with a fio task next (fio's wakeups preempting)",
        better: Better::Lower,
        get: |r| compile(r, |t| Some(t.by_fio as f64)),
    },
    Metric {
        key: "compile_by_compile",
        label: "... ... with another compile task next",
        better: Better::Neither,
        get: |r| compile(r, |t| Some(t.by_compile as f64)),
    },
    Metric {
        key: "compile_by_other",
        label: "... ... with any other task next",
        better: Better::Neither,
        get: |r| compile(r, |t| Some(t.by_other as f64)),
    },
    Metric {
        key: "compile_mean_run_us",
        label: "... mean run length (us), switch-in to switch-out",
        better: Better::Neither,
        get: |r| compile(r, TaskCounts::mean_run_us),
    },
    Metric {
        key: "compile_runs_1ms_pct",
        label: "... runs of 1024 us or more (%)",
        better: Better::Neither,
        get: |r| compile(r, |t| t.runs_at_least_pct(1024)),
    },
    Metric {
        key: "compile_migrations",
        label: "... migrations",
        better: Better::Neither,
        get: |r| compile(r, |t| Some(t.migrations as f64)),
    },
    Metric {
        key: "compile_wait_us",
        label: "... mean runqueue wait (us), woken or preempted until it ran",
        better: Better::Lower,
        get: |r| compile(r, TaskCounts::mean_wait_us),
    },
    Metric {
        key: "fio_involuntary",
        label: "fio's tasks (own cgroup): involuntary switches",
        better: Better::Neither,
        get: |r| fio(r, |t| Some(t.involuntary as f64)),
    },
    Metric {
        key: "fio_migrations",
        label: "... migrations",
        better: Better::Neither,
        get: |r| fio(r, |t| Some(t.migrations as f64)),
    },
    Metric {
        key: "fio_trace_wait_us",
        label: "... mean runqueue wait (us), woken or preempted until it ran",
        better: Better::Lower,
        get: |r| fio(r, TaskCounts::mean_wait_us),
    },
    Metric {
        key: "moved_all_per_60s",
        label: "scx_mlsched: its tasks' migrations per 60 s (tracepoint)",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.all),
    },
    Metric {
        key: "moved_wake_idle_per_60s",
        label: "... by A, select_cpu's idle CPU",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.wake_idle),
    },
    Metric {
        key: "moved_llc_pool_per_60s",
        label: "... by B, the LLC's shared queue",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.llc_pool),
    },
    Metric {
        key: "moved_preempt_wakee_per_60s",
        label: "... by C, a preempting wakee",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.preempt_wakee),
    },
    Metric {
        key: "moved_steal_per_60s",
        label: "... by a steal (the gate decides)",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.steal),
    },
    Metric {
        key: "moved_own_queue_per_60s",
        label: "... on its own CPU's queue",
        better: Better::Neither,
        get: |r| moved_per_60s(r, |m| m.own_queue),
    },
    Metric {
        key: "moved_other_per_60s",
        label: "... other (no path accounts for it)",
        better: Better::Neither,
        get: |r| moved_per_60s(r, MovedBy::other),
    },
    Metric {
        key: "gate_wake_idle_per_60s",
        label: "scx_mlsched: gate decisions per 60 s at A, select_cpu's idle CPU",
        better: Better::Neither,
        get: |r| gate_per_60s(r, |g| g.wake_idle),
    },
    Metric {
        key: "gate_enq_wakeup_per_60s",
        label: "... at B, a wakeup's enqueue",
        better: Better::Neither,
        get: |r| gate_per_60s(r, |g| g.enq_wakeup),
    },
    Metric {
        key: "gate_enq_requeue_per_60s",
        label: "... at B, another enqueue",
        better: Better::Neither,
        get: |r| gate_per_60s(r, |g| g.enq_requeue),
    },
    Metric {
        key: "gate_preempt_wakee_per_60s",
        label: "... at C, a preempting wakee",
        better: Better::Neither,
        get: |r| gate_per_60s(r, |g| g.preempt_wakee),
    },
    Metric {
        key: "gate_steal_per_60s",
        label: "... at a steal",
        better: Better::Neither,
        get: |r| gate_per_60s(r, |g| g.steal),
    },
    Metric {
        key: "tree_agree_wake_idle_pct",
        label: "scx_mlsched: the tree's agreement with the heuristic at A, select_cpu's idle CPU (%; shadow, ml)",
        better: Better::Neither,
        get: |r| gate_agree_pct(r, |g| g.wake_idle),
    },
    Metric {
        key: "tree_agree_enq_wakeup_pct",
        label: "... at B, a wakeup's enqueue (%)",
        better: Better::Neither,
        get: |r| gate_agree_pct(r, |g| g.enq_wakeup),
    },
    Metric {
        key: "tree_agree_enq_requeue_pct",
        label: "... at B, another enqueue (%)",
        better: Better::Neither,
        get: |r| gate_agree_pct(r, |g| g.enq_requeue),
    },
    Metric {
        key: "tree_agree_preempt_wakee_pct",
        label: "... at C, a preempting wakee (%)",
        better: Better::Neither,
        get: |r| gate_agree_pct(r, |g| g.preempt_wakee),
    },
    Metric {
        key: "tree_agree_steal_pct",
        label: "... at a steal (%)",
        better: Better::Neither,
        get: |r| gate_agree_pct(r, |g| g.steal),
    },
];

/// A figure of the compile's tasks (NaN where the run did not count them).
fn compile(r: &RunRecord, f: fn(&TaskCounts) -> Option<f64>) -> f64 {
    r.workloads
        .as_ref()
        .and_then(|w| f(&w.compile))
        .unwrap_or(f64::NAN)
}

/// The same for fio's tasks.
fn fio(r: &RunRecord, f: fn(&TaskCounts) -> Option<f64>) -> f64 {
    r.workloads
        .as_ref()
        .and_then(|w| f(&w.fio))
        .unwrap_or(f64::NAN)
}

/// One bucket of scx_mlsched's migrations per 60 s of compile (NaN for
/// arms that do not count them).
fn moved_per_60s(r: &RunRecord, bucket: fn(&MovedBy) -> u64) -> f64 {
    match &r.moved {
        Some(m) if r.compile_wall_s > 0.0 => bucket(m) as f64 * 60.0 / r.compile_wall_s,
        _ => f64::NAN,
    }
}

/// The gate's decisions at one point per 60 s of compile (NaN for arms
/// that do not count them).
fn gate_per_60s(r: &RunRecord, point: fn(&GateByPoint) -> GateCounts) -> f64 {
    match &r.gate {
        Some(g) if r.compile_wall_s > 0.0 => point(g).decided as f64 * 60.0 / r.compile_wall_s,
        _ => f64::NAN,
    }
}

/// The tree's agreement with the heuristic at one point, in percent (NaN
/// where the tree did not walk).
fn gate_agree_pct(r: &RunRecord, point: fn(&GateByPoint) -> GateCounts) -> f64 {
    r.gate
        .and_then(|g| point(&g).agree_pct())
        .unwrap_or(f64::NAN)
}

/// The headline metrics: the ratio table and the chart.
pub fn headline() -> &'static [Metric] {
    &METRICS[..4]
}
