//! The loader of the BPF scheduler, scx style: `Scheduler::init` opens,
//! configures, loads and attaches bpf/main.bpf.c, with the model in its
//! banks for `--policy ml|shadow`; `run` serves stats until a signal or a
//! BPF-side exit; `Drop` detaches.  main.rs restarts it when the exit asks
//! for it (UserExitInfo::should_restart, e.g. CPU hotplug).
//!
//! While running, the loop also beats the heartbeat that BPF checks before
//! trusting the tree (`--feed-timeout-ms`), feeds the tree's sampled
//! decisions to the linfa twin (src/sched/twin.rs), writes `--record`'s
//! decisions (src/sched/record.rs), and swaps the model on SIGHUP or, with
//! `--watch`, when its file changes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{MapCore, OpenObject, RingBufferBuilder};
use log::{info, warn};
use scx_stats::prelude::*;
use scx_utils::{
    compat, scx_ops_attach, scx_ops_load, scx_ops_open, try_set_rlimit_infinity, uei_exited,
    uei_report, Topology, UserExitInfo, NR_CPU_IDS,
};

use crate::cli::{Policy, RunOpts};
use crate::learn::features::FeatureVec;
use crate::learn::model::Model;
use crate::sched::bpf_intf as c;
use crate::sched::bpf_skel::*;
use crate::sched::heuristic::{Rules, Verdict};
use crate::sched::model_map::{ModelBanks, ModelSource};
use crate::sched::numa;
use crate::sched::record::Recorder;
use crate::sched::stats::{self, GateByPoint, Metrics, MovedBy};
use crate::sched::twin::Twin;
use crate::sched::verifier::{self, ProgStats};

pub const SCHEDULER_NAME: &str = "scx_mlsched";

/// Exit status of `run` when the kernel ejected the scheduler; a systemd unit
/// lists it in RestartPreventExitStatus= (see dist/scx_mlsched.service).
pub const EXIT_EJECTED: u8 = 86;

/// The kernel ejected the scheduler (an error exit); carries its reason.
#[derive(Debug)]
pub struct Ejected(pub String);

impl std::fmt::Display for Ejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the kernel ejected the scheduler: {}", self.0)
    }
}

impl std::error::Error for Ejected {}

/// Dense LLC and node ids per CPU, from the kernel's topology.
pub struct CpuMap {
    pub llc: Vec<i32>,
    pub node: Vec<i32>,
    /// The node of each dense LLC id (steal's locality order).
    pub llc_node: Vec<i32>,
    pub nr_llcs: usize,
}

impl CpuMap {
    pub fn from_topology(topo: &Topology) -> Self {
        let cpus: Vec<(usize, usize, usize)> = topo
            .all_cpus
            .values()
            .map(|cpu| (cpu.id, cpu.llc_id, cpu.node_id))
            .collect();
        Self::from_ids(&cpus)
    }

    /// (cpu, llc id, node id) with possibly sparse ids -> dense per-CPU arrays.
    pub fn from_ids(cpus: &[(usize, usize, usize)]) -> Self {
        let mut dense = BTreeMap::new();
        for (_, llc, _) in cpus {
            let n = dense.len();
            dense.entry(*llc).or_insert(n);
        }
        let len = cpus.iter().map(|c| c.0 + 1).max().unwrap_or(0);
        let mut map = CpuMap {
            llc: vec![0; len],
            node: vec![0; len],
            llc_node: vec![0; dense.len().max(1)],
            nr_llcs: dense.len().max(1),
        };
        for (cpu, llc, node) in cpus {
            map.llc[*cpu] = dense[llc] as i32;
            map.node[*cpu] = *node as i32;
            map.llc_node[dense[llc]] = *node as i32;
        }
        map
    }
}

/// CLOCK_MONOTONIC in ns, the clock of BPF's bpf_ktime_get_ns().
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Tell BPF that userspace is alive (the freshness check of ml_verdict()).
fn heartbeat(bss: &mut Option<&mut types::bss>) {
    if let Some(bss) = bss.as_mut() {
        unsafe { std::ptr::write_volatile(&mut bss.feed_stamp_ns, monotonic_ns()) };
    }
}

/// The model side of a running scheduler.
struct ModelState {
    source: ModelSource,
    banks: ModelBanks,
    /// (mtime, size) of the file when last read, for --watch.
    stamp: Option<(std::time::SystemTime, u64)>,
    /// The decision points the model in force declares.
    points: Vec<String>,
    /// The same, as model_bank.points: bit 1 << point (the stats' gauge).
    points_mask: u32,
}

/// The start-up line's account of who decides: the policy, and the model
/// (its source, its generation and the points it declares).
fn who_decides(policy: Policy, model: Option<&ModelState>) -> String {
    let m = model.map(|m| {
        format!(
            "{} (generation {}, declares {})",
            m.source,
            m.banks.generation(),
            m.points.join(", ")
        )
    });
    match (policy, m) {
        (Policy::Heuristic, None) => "policy heuristic (each point's own rule; no model)".into(),
        (Policy::Heuristic, Some(m)) => {
            format!("policy heuristic (each point's own rule); model {m} loaded, not deciding")
        }
        (Policy::Ml, Some(m)) => {
            format!("policy ml: model {m} decides at its points, the heuristic elsewhere")
        }
        (Policy::Shadow, Some(m)) => {
            format!("policy shadow: the heuristic decides, model {m} walked beside it")
        }
        (p, None) => format!("policy {p:?}, no model"),
    }
}

impl ModelState {
    /// Validate and install `model` (already loaded from `self.source`).
    fn install(
        &mut self,
        model: &Model,
        banks_map: &impl MapCore,
        bss: &mut Option<&mut types::bss>,
        twin: &RefCell<Twin>,
    ) -> Result<u64> {
        twin.borrow_mut()
            .set_model(self.banks.generation() + 1, model)?;
        let generation = self.banks.install(banks_map, model, |bank| {
            if let Some(bss) = bss.as_mut() {
                unsafe { std::ptr::write_volatile(&mut bss.model_active, bank) };
            }
        })?;
        self.points = model.points.clone();
        self.points_mask = model.points_mask()?;
        info!(
            "model generation {generation} in force: {} (depth {}, {} nodes)",
            self.source,
            model.depth,
            model.nodes.len()
        );
        Ok(generation)
    }

    /// Load the source again and swap; a bad model is refused and the one
    /// in force stays.
    fn reload(
        &mut self,
        why: &str,
        banks_map: &impl MapCore,
        bss: &mut Option<&mut types::bss>,
        twin: &RefCell<Twin>,
    ) {
        self.stamp = self.source.stamp();
        let res = self
            .source
            .load()
            .and_then(|m| self.install(&m, banks_map, bss, twin));
        if let Err(e) = res {
            warn!(
                "{why}: refused the new model: {e:#}; generation {} stays in force",
                self.banks.generation()
            );
        }
    }
}

pub struct Scheduler<'a> {
    skel: BpfSkel<'a>,
    struct_ops: Option<libbpf_rs::Link>,
    stats_server: Option<StatsServer<(), Metrics>>,
    model: Option<ModelState>,
    twin: RefCell<Twin>,
    recorder: RefCell<Option<Recorder>>,
    watch: bool,
    attached_at: Instant,
}

impl<'a> Scheduler<'a> {
    /// Open and load the BPF object without attaching it (also used by
    /// selftest); `log_stats`: load every program with the verifier's
    /// statistics in its log (src/sched/verifier.rs).
    fn open_load(
        opts: &RunOpts,
        open_object: &'a mut MaybeUninit<OpenObject>,
        log_stats: bool,
    ) -> Result<BpfSkel<'a>> {
        try_set_rlimit_infinity();
        let topo = Topology::new().context("reading the CPU topology")?;
        let map = CpuMap::from_topology(&topo);
        if *NR_CPU_IDS > c::mlsched_consts_MAX_CPUS as usize
            || map.nr_llcs > c::mlsched_consts_MAX_LLCS as usize
        {
            bail!(
                "{} CPUs / {} LLCs: more than this build supports ({} / {})",
                *NR_CPU_IDS,
                map.nr_llcs,
                c::mlsched_consts_MAX_CPUS,
                c::mlsched_consts_MAX_LLCS
            );
        }
        info!(
            "{} {}: {} CPUs, {} LLCs, {} NUMA nodes",
            SCHEDULER_NAME,
            env!("CARGO_PKG_VERSION"),
            *NR_CPU_IDS,
            map.nr_llcs,
            topo.nodes.len()
        );

        let mut builder = BpfSkelBuilder::default();
        // debug() replaces libbpf's print callback, which capture_load() set.
        if !log_stats {
            builder.obj_builder.debug(opts.verbose > 1);
        }
        let open_opts = opts.libbpf.clone().into_bpf_open_opts();
        let mut skel = scx_ops_open!(builder, open_object, mlsched_ops, open_opts)?;

        skel.struct_ops.mlsched_ops_mut().exit_dump_len = opts.exit_dump_len;
        // No SCX_OPS_ENQ_EXITING: steal looks tasks up with
        // bpf_task_from_pid(), which cannot find an exiting task (the
        // kernel's documentation of the flag warns of this); without the
        // flag the kernel runs exiting tasks on their CPU itself.
        skel.struct_ops.mlsched_ops_mut().flags = *compat::SCX_OPS_ENQ_MIGRATION_DISABLED
            | if opts.partial {
                *compat::SCX_OPS_SWITCH_PARTIAL
            } else {
                0
            };

        let rodata = skel.maps.rodata_data.as_mut().unwrap();
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.migration_cost_ns = opts.migration_cost_us * 1000;
        rodata.cache_nice_tries = opts.cache_nice_tries;
        rodata.preempt_scan = opts.preempt_scan;
        rodata.preempt_min_ns = opts.preempt_min_ns();
        rodata.wake_local = !opts.no_wake_local as u32;
        rodata.preempt_direct = !opts.no_direct_preempt as u32;
        rodata.requeue_local = opts.requeue_local as u32;
        rodata.debug_error_after_ns = opts.debug_error_after_ms * 1_000_000;
        rodata.policy = opts.policy.raw();
        rodata.sample_every = opts.sample_every;
        rodata.record_every = if opts.record.is_some() {
            opts.record_every
        } else {
            0
        };
        rodata.explore_thresh = opts.explore_thresh();
        rodata.explore_ppm = opts.explore_ppm();
        rodata.feed_timeout_ns = opts.feed_timeout_ms * 1_000_000;
        rodata.nr_cpus = *NR_CPU_IDS as u32;
        rodata.nr_llcs = map.nr_llcs as u32;
        for (cpu, (llc, node)) in map.llc.iter().zip(&map.node).enumerate() {
            rodata.cpu_llc[cpu] = *llc;
            rodata.cpu_node[cpu] = *node;
        }
        for (llc, node) in map.llc_node.iter().enumerate() {
            rodata.llc_node[llc] = *node;
        }
        // The heuristic reads no NUMA feature: the tracker (about 125 ns
        // per page allocation natively, `bench inference`) runs only for a
        // policy that walks the tree, or to record the vectors.
        let tree_or_record = opts.policy != Policy::Heuristic || opts.record.is_some();
        let ranges = numa::tracker_ranges(numa::track_pages(topo.nodes.len()) && tree_or_record)
            .unwrap_or_else(|e| {
                warn!("NUMA page tracker off: {e:#}; every NUMA feature is 0");
                None
            });
        crate::setup_numa_tracker!(&mut skel, ranges.as_deref())?;
        if log_stats {
            for mut prog in skel.open_object_mut().progs_mut() {
                prog.set_log_level(verifier::BPF_LOG_STATS);
            }
        }
        Ok(scx_ops_load!(skel, mlsched_ops, uei)?)
    }

    /// `recorder`: `run --record`'s file, kept across restarts.  It is taken
    /// only once the scheduler is attached: when `init` fails, it stays with
    /// the caller, which closes it (header and trailer, no rows).
    pub fn init(
        opts: &RunOpts,
        open_object: &'a mut MaybeUninit<OpenObject>,
        recorder: &mut Option<Recorder>,
    ) -> Result<Self> {
        // The model is read and validated before anything is loaded: a bad
        // file fails `run` with its reason, and the system stays as it was.
        // With --policy heuristic a --model is still validated and loaded
        // (so that a service's flags need not change with the policy), but
        // BPF does not walk it.
        let model = match (opts.policy, &opts.model) {
            (Policy::Heuristic, None) => None,
            // The heuristic does not need the model: a missing or bad file
            // (a service's default path, say) is said, not fatal.
            (Policy::Heuristic, Some(p)) => {
                let source = ModelSource::File(p.clone());
                match source.load() {
                    Ok(m) => {
                        info!("policy heuristic: {source} is loaded but does not decide");
                        Some((source, m))
                    }
                    Err(e) => {
                        warn!("policy heuristic: no model loaded: {e:#}");
                        None
                    }
                }
            }
            (Policy::Ml | Policy::Shadow, _) => {
                let source = ModelSource::from_opt(opts.model.as_deref());
                let m = source.load()?;
                Some((source, m))
            }
        };
        let mut skel = Self::open_load(opts, open_object, false)?;
        heartbeat(&mut skel.maps.bss_data);
        let twin = RefCell::new(Twin::new(Rules::of(opts)));
        let model = match model {
            None => None,
            Some((source, m)) => {
                let mut state = ModelState {
                    stamp: source.stamp(),
                    source,
                    banks: ModelBanks::new(),
                    points: Vec::new(),
                    points_mask: 0,
                };
                state.install(&m, &skel.maps.model_banks, &mut skel.maps.bss_data, &twin)?;
                Some(state)
            }
        };
        let struct_ops = Some(scx_ops_attach!(skel, mlsched_ops)?);
        let stats_server = Some(StatsServer::new(stats::server_data()).launch()?);
        stats::SERVER_UP.store(true, std::sync::atomic::Ordering::Relaxed);
        info!(
            "{} attached: {}; slice {} us, migration cost {} us{}",
            SCHEDULER_NAME,
            who_decides(opts.policy, model.as_ref()),
            opts.slice_us,
            opts.migration_cost_us,
            if opts.partial { ", partial" } else { "" }
        );
        Ok(Self {
            skel,
            struct_ops,
            stats_server,
            model,
            twin,
            recorder: RefCell::new(recorder.take()),
            watch: opts.watch,
            attached_at: Instant::now(),
        })
    }

    /// `run --record`'s file, to go on in the next instance after a restart.
    pub fn take_recorder(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    fn metrics(&self) -> Result<Metrics> {
        let twin = self.twin.borrow().counts;
        Ok(Metrics {
            uptime_ms: self.attached_at.elapsed().as_millis() as u64,
            twin_checked: twin.checked,
            twin_agree: twin.agree,
            twin_disagree: twin.disagree,
            twin_heuristic_disagree: twin.heuristic_disagree,
            model_generation: self.model.as_ref().map_or(0, |m| m.banks.generation()),
            model_points: self.model.as_ref().map_or(0, |m| u64::from(m.points_mask)),
            ..Metrics::from_counters(&stats::read_counters(&self.skel.maps.stats)?)
                .with_moves(MovedBy::from_counters(&stats::read_sum(
                    &self.skel.maps.mlsched_moves,
                    c::move_idx_NR_MOVE_COUNTERS as usize,
                )?))
                .with_gate(GateByPoint::from_counters(&stats::read_sum(
                    &self.skel.maps.mlsched_gate,
                    c::point_stat_NR_GATE_COUNTERS as usize,
                )?))
        })
    }

    /// Serve until `shutdown` or a BPF-side exit.  `reload` is SIGHUP's flag.
    pub fn run(
        &mut self,
        shutdown: Arc<AtomicBool>,
        reload: Arc<AtomicBool>,
    ) -> Result<UserExitInfo> {
        let (res_ch, req_ch) = self.stats_server.as_ref().unwrap().channels();
        let mut stats_ok = true;
        let mut last_watch = Instant::now();
        let twin = &self.twin;
        let mut rb = RingBufferBuilder::new();
        rb.add(&self.skel.maps.samples, |data: &[u8]| {
            if let Err(e) = twin.borrow_mut().check_bytes(data) {
                warn!("twin: {e:#}");
            }
            0
        })?;
        let recorder = &self.recorder;
        if recorder.borrow().is_some() {
            rb.add(&self.skel.maps.records, |data: &[u8]| {
                if let Some(r) = recorder.borrow_mut().as_mut() {
                    if let Err(e) = r.push_bytes(data) {
                        warn!("--record: {e:#}");
                    }
                }
                0
            })?;
        }
        let rb = rb.build().context("opening the ring buffers")?;
        while !shutdown.load(Ordering::Relaxed) && !uei_exited!(&self.skel, uei) {
            heartbeat(&mut self.skel.maps.bss_data);
            // Also paces the loop: returns after 100 ms without samples.
            if let Err(e) = rb.poll(Duration::from_millis(100)) {
                // A signal (SIGINT, SIGHUP) interrupts the wait: not an error.
                if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                    warn!("polling the ring buffers: {e}");
                }
            }
            if let Some(state) = self.model.as_mut() {
                if reload.swap(false, Ordering::Relaxed) {
                    info!("SIGHUP: reloading {}", state.source);
                    state.reload(
                        "SIGHUP",
                        &self.skel.maps.model_banks,
                        &mut self.skel.maps.bss_data,
                        twin,
                    );
                } else if self.watch && last_watch.elapsed() >= Duration::from_secs(1) {
                    last_watch = Instant::now();
                    let now = state.source.stamp();
                    if now.is_some() && now != state.stamp {
                        info!("{} changed: reloading", state.source);
                        state.reload(
                            "--watch",
                            &self.skel.maps.model_banks,
                            &mut self.skel.maps.bss_data,
                            twin,
                        );
                    }
                }
            } else if reload.swap(false, Ordering::Relaxed) {
                info!("SIGHUP: the heuristic policy has no model to reload");
            }
            if !stats_ok {
                continue;
            }
            // A failed stats read or reply must not skip uei_report! below,
            // which carries the kernel's exit reason.
            match req_ch.try_recv() {
                Ok(()) => match self.metrics() {
                    Ok(m) => {
                        if res_ch.send(m).is_err() {
                            warn!("stats client went away");
                        }
                    }
                    Err(e) => warn!("reading stats: {e:#}"),
                },
                Err(crossbeam::channel::TryRecvError::Empty) => {}
                Err(e) => {
                    warn!("stats server stopped ({e}); scheduling goes on without stats");
                    stats_ok = false;
                }
            }
        }
        // Detached first (the kernel has disabled the scheduler when this
        // returns), so that the last drain reads every sample and record BPF
        // queued: samples are checked before the twin's last word, and the
        // --record file's counts add up to what BPF sent.
        let _ = self.struct_ops.take();
        let _ = rb.consume();
        drop(rb);
        if let Some(r) = self.recorder.get_mut() {
            match stats::read_counters(&self.skel.maps.stats) {
                Ok(c) => {
                    let m = Metrics::from_counters(&c);
                    r.add_bpf_counts(&m);
                }
                Err(e) => warn!("--record: reading the record counts: {e:#}"),
            }
        }
        let t = self.twin.borrow().counts;
        if t.checked + t.unknown_generation > 0 {
            info!(
                "twin: linfa checked {} sampled decisions ({} of an unknown model generation skipped), agreed on {}, disagreed on {}; \
                 per point (agreed/checked): {}; the Rust heuristic disagreed with BPF's on {}",
                t.checked,
                t.unknown_generation,
                t.agree,
                t.disagree,
                t.per_point(),
                t.heuristic_disagree
            );
        }
        uei_report!(&self.skel, uei).map_err(|e| Ejected(format!("{e:#}")).into())
    }
}

impl Drop for Scheduler<'_> {
    fn drop(&mut self) {
        if self.struct_ops.take().is_some() {
            info!("Unregister {SCHEDULER_NAME} scheduler");
        }
    }
}

/// Run the BPF can_migrate_decide() on `v` at decision point `point`
/// through its SEC("syscall") program.
fn bpf_decide(skel: &BpfSkel<'_>, v: &FeatureVec, point: u32) -> Result<i64> {
    let mut arg: c::decide_arg = unsafe { std::mem::zeroed() };
    arg.in_.f.copy_from_slice(v);
    arg.point = point;
    super::run_syscall(&skel.progs.test_can_migrate_decide, &mut arg)?;
    Ok(arg.verdict as i64)
}

/// Run the BPF balance_failed_next() on one case through its SEC("syscall") program.
fn bpf_balance_failed(skel: &BpfSkel<'_>, failed: u64, seen: u32, idle_type: i64) -> Result<u64> {
    let mut arg = c::balance_arg {
        failed,
        seen: seen as i32,
        idle_type: idle_type as i32,
    };
    super::run_syscall(&skel.progs.test_balance_failed, &mut arg)?;
    Ok(arg.failed)
}

/// Load (without attaching) and check the BPF decision against its Rust twin
/// on `vectors` at every decision point (the kernel's and the scheduler's),
/// and the BPF failed-balance count against its twin on every
/// combination of what a steal can see.  Returns the number of cases
/// checked, and with `verifier_stats` what the verifier said about each
/// program.
pub fn selftest(
    opts: &RunOpts,
    vectors: &[FeatureVec],
    verifier_stats: bool,
) -> Result<(usize, Vec<ProgStats>)> {
    let mut open_object = MaybeUninit::uninit();
    let (skel, stats) = if verifier_stats {
        verifier::capture_load(|| Scheduler::open_load(opts, &mut open_object, true))?
    } else {
        (Scheduler::open_load(opts, &mut open_object, false)?, vec![])
    };
    let mut cases = 0;
    let flags = [
        c::scan_seen_SCAN_MOVED,
        c::scan_seen_SCAN_REFUSED,
        c::scan_seen_SCAN_PINNED,
    ];
    for failed in [0, 1, 2, 7] {
        for mask in 0..(1u32 << flags.len()) {
            let seen = (0..flags.len())
                .filter(|b| mask >> b & 1 == 1)
                .fold(0, |s, b| s | flags[b]);
            for idle_type in 0..=2 {
                let bpf = bpf_balance_failed(&skel, failed, seen, idle_type)?;
                let rust = crate::sched::heuristic::balance_failed_next(failed, seen, idle_type);
                if bpf != rust {
                    bail!(
                        "BPF and Rust disagree on the failed-balance count after {failed} failures, \
                         seen {seen:#x}, idle_type {idle_type}: BPF {bpf}, Rust {rust}"
                    );
                }
                cases += 1;
            }
        }
    }
    let rules = Rules::of(opts);
    for point in 0..c::mig_point_NR_MIG_POINTS {
        for v in vectors {
            let bpf = bpf_decide(&skel, v, point)?;
            let rust = rules.decide_at(v, point);
            if Verdict::from_raw(bpf) != Some(rust) {
                bail!(
                    "BPF and Rust disagree at point {} on {v:?}: BPF verdict {bpf}, Rust {} ({})",
                    crate::learn::dataset::point_name(point as i64),
                    rust.label(),
                    if rust.allows() { "migrate" } else { "stay" }
                );
            }
            cases += 1;
        }
    }
    Ok((cases, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_llc_ids_become_dense() {
        let m = CpuMap::from_ids(&[(0, 8, 0), (1, 8, 0), (2, 3, 1), (3, 3, 1)]);
        assert_eq!(m.llc, vec![0, 0, 1, 1]);
        assert_eq!(m.node, vec![0, 0, 1, 1]);
        assert_eq!(m.nr_llcs, 2);
        assert_eq!(m.llc_node, vec![0, 1]);
    }

    #[test]
    fn llc_node_follows_dense_ids() {
        // LLC 5 (dense 0) on node 1, LLC 2 (dense 1) on node 0.
        let m = CpuMap::from_ids(&[(0, 5, 1), (1, 2, 0), (2, 5, 1)]);
        assert_eq!(m.llc, vec![0, 1, 0]);
        assert_eq!(m.llc_node, vec![1, 0]);
    }
}
