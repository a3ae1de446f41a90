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
use crate::sched::bpf_intf as c;
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
}

/// A decoded `struct row` of collect.bpf.c.
pub type Row = (FeatureVec, bool, RowCtx);

/// Decode a `struct row`: features, label, then the CPU pair (two s32).
/// Its decision point is active balancing when the active_lb feature says
/// so, else load_balance().
pub fn decode(data: &[u8]) -> Option<Row> {
    let need = (NR_FEATURES + 2) * 8;
    if data.len() < need {
        return None;
    }
    let word = |i: usize| i64::from_ne_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let half = |off: usize| i32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as i64;
    let mut v = [0i64; NR_FEATURES];
    for (i, x) in v.iter_mut().enumerate() {
        *x = word(i);
    }
    let point = if v[c::mlsched_feature_FEAT_active_lb as usize] != 0 {
        c::mig_point_POINT_KERNEL_ACTIVE
    } else {
        c::mig_point_POINT_KERNEL_BALANCE
    };
    let ctx = RowCtx {
        point: point as i64,
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
        }
    }
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
    let path = writer.finish(&[
        ("dropped", dropped.to_string()),
        ("unpaired_returns", unpaired.to_string()),
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
        "collect: {written} rows, {dropped} dropped, {unpaired} unpaired returns -> {}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reads_features_then_label() {
        let mut raw: Vec<u8> = (0..NR_FEATURES as i64)
            .flat_map(|i| (i - 3).to_ne_bytes())
            .collect();
        raw.extend_from_slice(&1i64.to_ne_bytes());
        raw.extend_from_slice(&3i32.to_ne_bytes()); // src cpu
        raw.extend_from_slice(&1i32.to_ne_bytes()); // dst cpu
        let (v, l, ctx) = decode(&raw).unwrap();
        assert_eq!(v[0], -3);
        assert_eq!(v[NR_FEATURES - 1], NR_FEATURES as i64 - 4);
        assert!(l);
        assert_eq!((ctx.src, ctx.dst), (3, 1));
        let active = c::mlsched_feature_FEAT_active_lb as usize;
        let point = |raw: &[u8]| decode(raw).unwrap().2.point as u32;
        let at = active * 8;
        raw[at..at + 8].copy_from_slice(&1i64.to_ne_bytes());
        assert_eq!(point(&raw), c::mig_point_POINT_KERNEL_ACTIVE);
        raw[at..at + 8].copy_from_slice(&0i64.to_ne_bytes());
        assert_eq!(point(&raw), c::mig_point_POINT_KERNEL_BALANCE);
        assert!(decode(&raw[..raw.len() - 1]).is_none());
    }
}
