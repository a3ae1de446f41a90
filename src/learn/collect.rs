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

use crate::learn::dataset;
use crate::learn::features::{FeatureVec, NR_FEATURES};
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

/// The decoded `struct row` of collect.bpf.c.
pub fn decode(data: &[u8]) -> Option<(FeatureVec, bool)> {
    let need = (NR_FEATURES + 1) * 8;
    if data.len() < need {
        return None;
    }
    let word = |i: usize| i64::from_ne_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let mut v = [0i64; NR_FEATURES];
    for (i, x) in v.iter_mut().enumerate() {
        *x = word(i);
    }
    Some((v, word(NR_FEATURES) != 0))
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
    let mut writer = dataset::Writer::create(
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
    let mut rows = Vec::<(FeatureVec, bool)>::new();
    let rows_ptr: *mut Vec<(FeatureVec, bool)> = &mut rows;
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
        for (v, l) in rows.drain(..) {
            if o.max_rows > 0 && written >= o.max_rows {
                limit_hit = true;
                break;
            }
            writer.write(&v, l)?;
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
        raw.extend_from_slice(&[0u8; 8]); // src/dst cpu
        let (v, l) = decode(&raw).unwrap();
        assert_eq!(v[0], -3);
        assert_eq!(v[NR_FEATURES - 1], NR_FEATURES as i64 - 4);
        assert!(l);
        assert!(decode(&raw[..10]).is_none());
    }
}
