//! The loader of the BPF scheduler, scx style: `Scheduler::init` opens,
//! configures, loads and attaches bpf/main.bpf.c; `run` serves stats until
//! a signal or a BPF-side exit; `Drop` detaches.  main.rs restarts it when
//! the exit asks for it (UserExitInfo::should_restart, e.g. CPU hotplug).

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam::channel::RecvTimeoutError;
use libbpf_rs::{OpenObject, ProgramInput};
use log::{info, warn};
use scx_stats::prelude::*;
use scx_utils::{
    compat, scx_ops_attach, scx_ops_load, scx_ops_open, try_set_rlimit_infinity, uei_exited,
    uei_report, Topology, UserExitInfo, NR_CPU_IDS,
};

use crate::cli::RunOpts;
use crate::learn::features::FeatureVec;
use crate::sched::bpf_intf as c;
use crate::sched::bpf_skel::*;
use crate::sched::heuristic::Verdict;
use crate::sched::stats::{self, Metrics};

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
            nr_llcs: dense.len().max(1),
        };
        for (cpu, llc, node) in cpus {
            map.llc[*cpu] = dense[llc] as i32;
            map.node[*cpu] = *node as i32;
        }
        map
    }
}

pub struct Scheduler<'a> {
    skel: BpfSkel<'a>,
    struct_ops: Option<libbpf_rs::Link>,
    stats_server: Option<StatsServer<(), Metrics>>,
}

impl<'a> Scheduler<'a> {
    /// Open and load the BPF object without attaching it (also used by selftest).
    fn open_load(
        opts: &RunOpts,
        open_object: &'a mut MaybeUninit<OpenObject>,
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
        builder.obj_builder.debug(opts.verbose > 1);
        let open_opts = opts.libbpf.clone().into_bpf_open_opts();
        let mut skel = scx_ops_open!(builder, open_object, mlsched_ops, open_opts)?;

        skel.struct_ops.mlsched_ops_mut().exit_dump_len = opts.exit_dump_len;
        skel.struct_ops.mlsched_ops_mut().flags = *compat::SCX_OPS_ENQ_EXITING
            | *compat::SCX_OPS_ENQ_MIGRATION_DISABLED
            | if opts.partial {
                *compat::SCX_OPS_SWITCH_PARTIAL
            } else {
                0
            };

        let rodata = skel.maps.rodata_data.as_mut().unwrap();
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.migration_cost_ns = opts.migration_cost_us * 1000;
        rodata.cache_nice_tries = opts.cache_nice_tries;
        rodata.debug_error_after_ns = opts.debug_error_after_ms * 1_000_000;
        rodata.nr_cpus = *NR_CPU_IDS as u32;
        rodata.nr_llcs = map.nr_llcs as u32;
        for (cpu, (llc, node)) in map.llc.iter().zip(&map.node).enumerate() {
            rodata.cpu_llc[cpu] = *llc;
            rodata.cpu_node[cpu] = *node;
        }
        Ok(scx_ops_load!(skel, mlsched_ops, uei)?)
    }

    pub fn init(opts: &RunOpts, open_object: &'a mut MaybeUninit<OpenObject>) -> Result<Self> {
        let mut skel = Self::open_load(opts, open_object)?;
        let struct_ops = Some(scx_ops_attach!(skel, mlsched_ops)?);
        let stats_server = Some(StatsServer::new(stats::server_data()).launch()?);
        info!(
            "{} attached (slice {} us, migration cost {} us{})",
            SCHEDULER_NAME,
            opts.slice_us,
            opts.migration_cost_us,
            if opts.partial { ", partial" } else { "" }
        );
        Ok(Self {
            skel,
            struct_ops,
            stats_server,
        })
    }

    fn metrics(&self) -> Result<Metrics> {
        Ok(Metrics::from_counters(&stats::read_counters(
            &self.skel.maps.stats,
        )?))
    }

    pub fn run(&mut self, shutdown: Arc<AtomicBool>) -> Result<UserExitInfo> {
        let (res_ch, req_ch) = self.stats_server.as_ref().unwrap().channels();
        let mut stats_ok = true;
        while !shutdown.load(Ordering::Relaxed) && !uei_exited!(&self.skel, uei) {
            if !stats_ok {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            // A failed stats read or reply must not skip uei_report! below,
            // which carries the kernel's exit reason.
            match req_ch.recv_timeout(Duration::from_secs(1)) {
                Ok(()) => match self.metrics() {
                    Ok(m) => {
                        if res_ch.send(m).is_err() {
                            warn!("stats client went away");
                        }
                    }
                    Err(e) => warn!("reading stats: {e:#}"),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(e) => {
                    warn!("stats server stopped ({e}); scheduling goes on without stats");
                    stats_ok = false;
                }
            }
        }
        let _ = self.struct_ops.take();
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

/// Run the BPF can_migrate_decide() on `v` through its SEC("syscall") program.
fn bpf_decide(skel: &BpfSkel<'_>, v: &FeatureVec) -> Result<i64> {
    let mut arg: c::decide_arg = unsafe { std::mem::zeroed() };
    arg.in_.f.copy_from_slice(v);
    let input = ProgramInput {
        context_in: Some(unsafe {
            std::slice::from_raw_parts_mut(
                &mut arg as *mut _ as *mut u8,
                std::mem::size_of_val(&arg),
            )
        }),
        context_out: None,
        ..Default::default()
    };
    let out = skel
        .progs
        .test_can_migrate_decide
        .test_run(input)
        .context("test_run")?;
    if out.return_value != 0 {
        bail!("test_can_migrate_decide returned {}", out.return_value);
    }
    Ok(arg.verdict as i64)
}

/// Load (without attaching) and check the BPF decision against its Rust twin
/// on `vectors`.  Returns the number of vectors checked.
pub fn selftest(opts: &RunOpts, vectors: &[FeatureVec]) -> Result<usize> {
    let mut open_object = MaybeUninit::uninit();
    let skel = Scheduler::open_load(opts, &mut open_object)?;
    for v in vectors {
        let bpf = bpf_decide(&skel, v)?;
        let rust = crate::sched::heuristic::decide(v);
        if Verdict::from_raw(bpf) != Some(rust) {
            bail!(
                "BPF and Rust disagree on {v:?}: BPF verdict {bpf}, Rust {} ({})",
                rust.label(),
                if rust.allows() { "migrate" } else { "stay" }
            );
        }
    }
    Ok(vectors.len())
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
    }
}
