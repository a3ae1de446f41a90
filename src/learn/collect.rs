//! `scx_mlsched collect`: attach bpf/collect.bpf.c to can_migrate_task()
//! while the fair class balances, and write each decision as a dataset row
//! (src/dataset.rs).  Stops after --duration or --max-rows or on SIGINT;
//! rows lost in the ring buffer are counted and reported, never silent.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use log::{info, warn};
use scx_utils::Topology;

use crate::learn::dataset::{self, RowCtx};
use crate::learn::features::{FeatureVec, NR_FEATURES};
use crate::sched::numa;
use crate::sched::preflight::{self, ExtState};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/collect_skel.rs"));
}
use skel::*;

pub const TRACED_FN: &str = "can_migrate_task";

#[derive(Debug, Clone, Args)]
pub struct CollectOpts {
    /// How long to record, in seconds.
    #[arg(short, long, default_value_t = 30)]
    pub duration: u64,
    /// Dataset file to write.
    #[arg(short, long, default_value = "datasets/collected.csv")]
    pub out: PathBuf,
    /// Name of the workload running meanwhile (stored in the dataset).
    #[arg(short, long, default_value = "unnamed")]
    pub workload: String,
    /// Stop after this many rows (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_rows: u64,
    /// Hide the progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Leave NUMA balancing as it is.  By default it is off while
    /// collecting (and restored after): it never runs under sched_ext (its
    /// scanning is driven by the fair class's tick), so the scheduler never
    /// knows a task's preferred node, and the kernel's NUMA-locality
    /// refusals would be labels no scheduler feature explains.
    #[arg(long)]
    pub keep_numa_balancing: bool,
}

const NUMA_BALANCING: &str = "/proc/sys/kernel/numa_balancing";

/// kernel.numa_balancing switched off for the collection, restored on drop
/// (on every return and on a panic; not if the process is killed with
/// SIGKILL, which leaves it off).
struct NumaBalancing {
    /// The setting before, if this changed it.
    restore: Option<String>,
    during: String,
}

impl NumaBalancing {
    fn switch_off(keep: bool) -> Result<Self> {
        let before = match std::fs::read_to_string(NUMA_BALANCING) {
            Ok(s) => s,
            // A kernel without CONFIG_NUMA_BALANCING: nothing to switch.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    restore: None,
                    during: "absent".into(),
                })
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading {NUMA_BALANCING} (or pass --keep-numa-balancing)")
                })
            }
        };
        let before = before.trim().to_string();
        if keep || before == "0" {
            return Ok(Self {
                restore: None,
                during: before,
            });
        }
        std::fs::write(NUMA_BALANCING, "0").with_context(|| {
            format!(
                "switching NUMA balancing off ({NUMA_BALANCING}); \
                     --keep-numa-balancing collects with it on"
            )
        })?;
        info!("NUMA balancing off while collecting (was {before}; --keep-numa-balancing keeps it)");
        Ok(Self {
            restore: Some(before),
            during: "0".into(),
        })
    }

    fn during(&self) -> String {
        self.during.clone()
    }
}

impl Drop for NumaBalancing {
    fn drop(&mut self) {
        if let Some(before) = self.restore.take() {
            if let Err(e) = std::fs::write(NUMA_BALANCING, &before) {
                warn!("could not restore {NUMA_BALANCING} to {before}: {e}");
            }
        }
    }
}

/// A decoded `struct row` of collect.bpf.c.
pub type Row = (FeatureVec, bool, RowCtx);

/// Decode a `struct row`: features, label, the CPU pair (two s32), then
/// its decision point (s32, enum mig_point: load_balance() to a CPU with
/// no task or to one that has tasks, or active balancing).
pub fn decode(data: &[u8]) -> Option<Row> {
    let need = (NR_FEATURES + 2) * 8 + 4;
    if data.len() < need {
        return None;
    }
    let word = |i: usize| i64::from_ne_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let half = |off: usize| i32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as i64;
    let mut v = [0i64; NR_FEATURES];
    for (i, x) in v.iter_mut().enumerate() {
        *x = word(i);
    }
    let ctx = RowCtx {
        point: half((NR_FEATURES + 2) * 8),
        src: half((NR_FEATURES + 1) * 8),
        dst: half((NR_FEATURES + 1) * 8 + 4),
    };
    Some((v, word(NR_FEATURES) != 0, ctx))
}

fn check_traceable() -> Result<()> {
    let syms = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    if !syms
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(TRACED_FN))
    {
        bail!("{TRACED_FN} cannot be traced on this kernel: it is not in /proc/kallsyms (inlined, or a kernel without it)");
    }
    if !Path::new("/sys/kernel/tracing/kprobe_events").exists()
        && !Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
    {
        warn!("no kprobe_events in tracefs: the kernel may lack CONFIG_KPROBES");
    }
    Ok(())
}

fn migration_cost_ns() -> i64 {
    std::fs::read_to_string("/sys/kernel/debug/sched/migration_cost_ns")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(500_000)
}

fn sum_counter(map: &impl MapCore, idx: u32) -> u64 {
    map.lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        .ok()
        .flatten()
        .map(|v| {
            v.iter()
                .map(|b| u64::from_ne_bytes(b[..8].try_into().unwrap()))
                .sum()
        })
        .unwrap_or(0)
}

pub fn run(o: &CollectOpts, shutdown: Arc<AtomicBool>) -> Result<()> {
    if preflight::euid() != 0 {
        bail!("collect must run as root (it attaches kprobes)");
    }
    if let ExtState::Busy { ops, .. } = preflight::read_state(Path::new(preflight::SYSFS_SCHED_EXT))
    {
        bail!("a sched_ext scheduler is attached ({ops}): the fair-class balancer does not run, so there is nothing to record; stop it first");
    }
    check_traceable()?;

    let topo = Topology::new().context("reading the CPU topology")?;
    let numa = NumaBalancing::switch_off(o.keep_numa_balancing)?;
    let mut open_object = MaybeUninit::uninit();
    let builder = CollectSkelBuilder::default();
    let mut open = builder
        .open(&mut open_object)
        .context("opening the collector BPF object")?;
    let rodata = open.maps.rodata_data.as_mut().unwrap();
    rodata.migration_cost_ns = migration_cost_ns();
    rodata.nr_nodes = topo.nodes.len().max(1) as u32;
    for cpu in topo.all_cpus.values() {
        if cpu.id < rodata.cpu_node.len() {
            rodata.cpu_node[cpu.id] = cpu.node_id as i32;
            rodata.cpu_llc[cpu.id] = cpu.llc_id as i32;
        }
    }
    // Rows whose NUMA features are all 0 on a NUMA machine would teach the
    // model a machine without placement: no tracker, no collection.
    let ranges = numa::tracker_ranges(numa::track_pages(topo.nodes.len()))
        .context("the NUMA page tracker cannot run")?;
    crate::setup_numa_tracker!(&mut open, ranges.as_deref())?;
    let mut skel = open.load().context("loading the collector BPF programs")?;
    skel.attach()
        .with_context(|| format!("attaching kprobes to {TRACED_FN} (is CONFIG_KPROBES set?)"))?;

    let [kernel, host] = dataset::host_meta();
    let mut writer = dataset::Writer::create_with_context(
        &o.out,
        &[
            ("workload", o.workload.clone()),
            kernel,
            host,
            ("cpus", topo.all_cpus.len().to_string()),
            ("nodes", topo.nodes.len().to_string()),
            ("migration_cost_ns", migration_cost_ns().to_string()),
            ("duration_s", o.duration.to_string()),
            ("numa_balancing", numa.during()),
        ],
    )?;

    let pb = if o.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(o.duration)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
            .unwrap(),
    );
    let mut rows = Vec::<Row>::new();
    let rows_ptr: *mut Vec<Row> = &mut rows;
    let mut rb = RingBufferBuilder::new();
    rb.add(&skel.maps.rows, move |data: &[u8]| {
        if let Some(r) = decode(data) {
            // SAFETY: the callback runs inside poll() below, on this thread, while `rows` lives.
            unsafe { (*rows_ptr).push(r) };
        }
        0
    })?;
    let rb = rb.build()?;

    let start = Instant::now();
    let end = start + Duration::from_secs(o.duration);
    let mut written = 0u64;
    let mut limit_hit = false;
    while Instant::now() < end && !shutdown.load(Ordering::Relaxed) && !limit_hit {
        rb.poll(Duration::from_millis(100))?;
        for (v, l, ctx) in rows.drain(..) {
            if o.max_rows > 0 && written >= o.max_rows {
                limit_hit = true;
                break;
            }
            writer.write_ctx(&v, l, ctx)?;
            written += 1;
        }
        let secs = start.elapsed().as_secs_f64().max(0.001);
        pb.set_position(start.elapsed().as_secs().min(o.duration));
        pb.set_message(format!(
            "{written} rows, {:.0} rows/s",
            written as f64 / secs
        ));
    }
    pb.finish_and_clear();
    drop(rb);
    let dropped = sum_counter(&skel.maps.counters, 0);
    let unpaired = sum_counter(&skel.maps.counters, 1);
    let delayed = sum_counter(&skel.maps.counters, 2);
    drop(numa);
    let path = writer.finish(&[
        ("dropped", dropped.to_string()),
        ("unpaired_returns", unpaired.to_string()),
        ("delayed_left_out", delayed.to_string()),
    ])?;
    info!(
        "{written} rows written to {} in {:.1}s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    if dropped > 0 {
        warn!("{dropped} rows were dropped (ring buffer full); they are counted in the dataset trailer");
    }
    println!(
        "collect: {written} rows, {dropped} dropped, {unpaired} unpaired returns, \
         {delayed} calls about delayed-dequeue tasks left out -> {}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::bpf_intf as c;

    #[test]
    fn decode_reads_features_then_label() {
        let mut raw: Vec<u8> = (0..NR_FEATURES as i64)
            .flat_map(|i| (i - 3).to_ne_bytes())
            .collect();
        raw.extend_from_slice(&1i64.to_ne_bytes());
        raw.extend_from_slice(&3i32.to_ne_bytes()); // src cpu
        raw.extend_from_slice(&1i32.to_ne_bytes()); // dst cpu
        raw.extend_from_slice(&(c::mig_point_POINT_KERNEL_ACTIVE as i32).to_ne_bytes());
        raw.extend_from_slice(&0i32.to_ne_bytes()); // pad
        let (v, l, ctx) = decode(&raw).unwrap();
        assert_eq!(v[0], -3);
        assert_eq!(v[NR_FEATURES - 1], NR_FEATURES as i64 - 4);
        assert!(l);
        assert_eq!((ctx.src, ctx.dst), (3, 1));
        assert_eq!(ctx.point, c::mig_point_POINT_KERNEL_ACTIVE as i64);
        let at = (NR_FEATURES + 2) * 8;
        raw[at..at + 4].copy_from_slice(&(c::mig_point_POINT_KERNEL_BALANCE as i32).to_ne_bytes());
        assert_eq!(
            decode(&raw).unwrap().2.point,
            c::mig_point_POINT_KERNEL_BALANCE as i64
        );
        assert!(decode(&raw[..at + 3]).is_none());
    }
}
