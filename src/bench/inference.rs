//! `scx_mlsched bench inference`: what one tree decision costs in BPF.
//!
//! It loads only the tree walk (bpf/tree.bpf.c, no scheduler), so it runs on
//! any kernel with BPF; on the hosts here, whose kernels lack sched_ext, its
//! figures are native.  The walk is looped inside one program run over
//! recorded feature vectors (dataset rows) and timed with bpf_ktime_get_ns;
//! the same loop without the walk is timed too, and the difference is the
//! walk's own cost.  Models: the shipped one, a tree of the maximum depth
//! the loader accepts (every vector walks all of it), and `--model`.
//! It also measures what the NUMA page tracker (bpf/numa.bpf.h), which the
//! scheduler and the collector attach on machines with several nodes, adds
//! to each page allocation, and what filling one feature vector costs
//! before the walk: the scheduler's fill.bpf.h, with stand-ins of the same
//! kind for its reads of sched_ext state (bpf/tree.bpf.c, fill_bench), for
//! a move across nodes and LLCs, timed after the tracker's measurement so
//! that this thread has pages counted (the NUMA lookup finds them).

use std::mem::MaybeUninit;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::learn::dataset;
use crate::learn::features::{FeatureVec, NR_FEATURES};
use crate::learn::model::{Model, Node, MAX_DEPTH};
use crate::sched::model_map::ModelSource;
use crate::sched::tree::{TreeProg, MAX_VECTORS};

/// The goal of the model-in-the-loop work, natively.
const GOAL_NS: f64 = 50.0;
/// The in-kernel MLP of the APSys 2020 ML load balancer, per decision.
const APSYS_NS: f64 = 1900.0;

#[derive(Debug, Clone, Args)]
pub struct InferenceOpts {
    /// Datasets whose rows are the feature vectors walked (the first
    /// 65,536 rows in all).
    #[arg(long, num_args = 1.., default_values = ["datasets/kcompile-fio.csv", "datasets/hackbench-mix.csv"])]
    pub datasets: Vec<PathBuf>,

    /// Also time this model file.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Timed runs per model (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeats: u32,

    /// Length of one timed run, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub run_ms: u64,

    /// Also write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub model: String,
    pub depth: usize,
    pub nodes: usize,
    /// Compares per decision, averaged over the vectors.
    pub mean_walk_depth: f64,
    pub decisions_per_run: u64,
    /// Median over the runs, ns per decision: walk loop, empty loop, walk alone.
    pub loop_ns: f64,
    pub empty_ns: f64,
    pub walk_ns: f64,
    /// Min and max of walk_ns over the runs.
    pub walk_ns_min: f64,
    pub walk_ns_max: f64,
    pub migrate_share: f64,
}

/// What filling one feature vector costs (bpf/tree.bpf.c, fill_bench).
#[derive(Debug, Clone, Serialize)]
pub struct FillTiming {
    pub fills_per_run: u64,
    /// Median over the runs, ns per fill: fill loop, empty loop, fill alone.
    pub loop_ns: f64,
    pub empty_ns: f64,
    pub fill_ns: f64,
    pub fill_ns_min: f64,
    pub fill_ns_max: f64,
    /// The NUMA page tracker was loaded, so the NUMA features were looked up.
    pub numa_lookup: bool,
}

fn time_fill(prog: &TreeProg<'_>, opts: &InferenceOpts, numa_lookup: bool) -> Result<FillTiming> {
    let (one, _) = prog.time_fill(1000, false)?;
    let loops =
        ((opts.run_ms as f64 * 1e6) / (one.max(1) as f64 / 1000.0)).clamp(1000.0, 1e7) as u32;
    let (mut fill, mut full, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.repeats {
        let (w, check) = prog.time_fill(loops, false)?;
        let (e, _) = prog.time_fill(loops, true)?;
        if check == 0 {
            bail!("fill_bench filled nothing (every feature 0)");
        }
        let (w, e) = (w as f64 / loops as f64, e as f64 / loops as f64);
        full.push(w);
        empty.push(e);
        fill.push(w - e);
    }
    let (lo, hi) = fill
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    Ok(FillTiming {
        fills_per_run: loops as u64,
        loop_ns: median(&mut full),
        empty_ns: median(&mut empty),
        fill_ns: median(&mut fill),
        fill_ns_min: lo,
        fill_ns_max: hi,
        numa_lookup,
    })
}

/// What the NUMA page tracker (bpf/numa.bpf.h) adds to a page allocation:
/// fresh anonymous pages faulted in with it attached and without, runs
/// interleaved, and the program's own run time (BPF program statistics).
#[derive(Debug, Clone, Serialize)]
pub struct NumaCost {
    /// Pages faulted in per run.
    pub pages: usize,
    /// Median ns per page faulted in (a write to a fresh anonymous page,
    /// the unmap included): without the tracker, and with it.
    pub fault_ns_off: f64,
    pub fault_ns_on: f64,
    /// The tracker's own ns per call, and its calls per page faulted in
    /// (every allocation of the system runs it while attached); None when
    /// kernel.bpf_stats_enabled could not be set.
    pub prog_ns_per_call: Option<f64>,
    pub calls_per_page: Option<f64>,
}

/// Bytes faulted in per run of the NUMA tracker's measurement.
const NUMA_BENCH_BYTES: usize = 64 << 20;

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize
}

/// ns per page to fault in NUMA_BENCH_BYTES of fresh anonymous memory, one
/// write per page, and unmap it; no huge pages, so one allocation a page.
fn fault_in_ns_per_page() -> Result<f64> {
    // SAFETY: a private anonymous mapping of our own, written within its
    // bounds and unmapped before returning.
    unsafe {
        let page = page_size();
        let len = NUMA_BENCH_BYTES;
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            bail!("mmap of {len} bytes: {}", std::io::Error::last_os_error());
        }
        libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
        let t = std::time::Instant::now();
        for off in (0..len).step_by(page) {
            std::ptr::write_volatile((p as *mut u8).add(off), 1);
        }
        libc::munmap(p, len);
        Ok(t.elapsed().as_nanos() as f64 / (len / page) as f64)
    }
}

/// (run_time_ns, run_cnt) of the loaded NUMA tracker programs (names cut
/// to 15 characters by the kernel).
fn tracker_stats() -> (u64, u64) {
    libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| p.name.to_string_lossy().starts_with("mls_numa_page"))
        .fold((0, 0), |a, p| (a.0 + p.run_time_ns, a.1 + p.run_cnt))
}

fn numa_cost(prog: &mut TreeProg<'_>, repeats: u32) -> Result<NumaCost> {
    let stats = crate::bench::run::enable_bpf_stats();
    let (t0, n0) = tracker_stats();
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        off.push(fault_in_ns_per_page()?);
        let link = prog.attach_numa_tracker()?;
        on.push(fault_in_ns_per_page()?);
        drop(link);
    }
    let (t1, n1) = tracker_stats();
    let pages = NUMA_BENCH_BYTES / page_size();
    let counted = stats.enabled() && n1 > n0;
    Ok(NumaCost {
        pages,
        fault_ns_off: median(&mut off),
        fault_ns_on: median(&mut on),
        prog_ns_per_call: counted.then(|| (t1 - t0) as f64 / (n1 - n0) as f64),
        calls_per_page: counted.then(|| (n1 - n0) as f64 / (pages as f64 * repeats as f64)),
    })
}

/// A tree of the maximum depth the loader accepts, which every vector walks
/// to the bottom: node i compares feature i mod NR_FEATURES with i64::MAX
/// (always less), goes left to node i+1 and right to a leaf.
pub fn deepest_model() -> Result<Model> {
    let mut m = ModelSource::Embedded.load()?;
    let mut nodes = Vec::new();
    for i in 0..MAX_DEPTH {
        let base = nodes.len() as u32;
        nodes.push(Node {
            feature: (i % NR_FEATURES) as i32,
            threshold: i64::MAX,
            left: base + 2,
            right: base + 1,
            verdict: 0,
        });
        nodes.push(Node::leaf(0));
    }
    nodes.push(Node::leaf(1));
    m.nodes = nodes;
    m.linfa = None;
    m.depth = m.validate()?;
    Ok(m)
}

/// Compares the flat walk makes on `x`.
fn walk_depth(m: &Model, x: &FeatureVec) -> usize {
    let mut i = 0usize;
    let mut d = 0;
    while !m.nodes[i].is_leaf() && d <= MAX_DEPTH {
        let n = &m.nodes[i];
        i = if x[n.feature as usize] < n.threshold {
            n.left
        } else {
            n.right
        } as usize;
        d += 1;
    }
    d
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn time_model(
    prog: &mut TreeProg<'_>,
    name: &str,
    m: &Model,
    vectors: &[FeatureVec],
    opts: &InferenceOpts,
) -> Result<Timing> {
    prog.set_model(m)?;
    // Calibrate: loops so that one run lasts about run_ms.
    let one = prog.time(1, false)?;
    let loops = ((opts.run_ms as f64 * 1e6) / one.elapsed_ns.max(1) as f64).clamp(1.0, 1e6) as u32;
    let (mut walk, mut full, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    let mut migrate = 0;
    let mut decisions = 0;
    for _ in 0..opts.repeats {
        let w = prog.time(loops, false)?;
        let e = prog.time(loops, true)?;
        if w.bad > 0 {
            bail!("{name}: {} walks without a verdict", w.bad);
        }
        let per = |r: &crate::sched::tree::RunOut| r.elapsed_ns as f64 / r.decisions.max(1) as f64;
        full.push(per(&w));
        empty.push(per(&e));
        walk.push(per(&w) - per(&e));
        migrate = w.migrate;
        decisions = w.decisions;
    }
    let depth_sum: usize = vectors.iter().map(|x| walk_depth(m, x)).sum();
    let (lo, hi) = walk
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    Ok(Timing {
        model: name.to_string(),
        depth: m.depth,
        nodes: m.nodes.len(),
        mean_walk_depth: depth_sum as f64 / vectors.len() as f64,
        decisions_per_run: decisions,
        loop_ns: median(&mut full),
        empty_ns: median(&mut empty),
        walk_ns: median(&mut walk),
        walk_ns_min: lo,
        walk_ns_max: hi,
        migrate_share: migrate as f64 / decisions.max(1) as f64,
    })
}

/// Where this runs, for the report: emulated or not.
fn place() -> String {
    let env = crate::bench::report::Environment::probe();
    let virt = std::process::Command::new("systemd-detect-virt")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "kernel {}, {} CPUs ({}), virtualization: {virt}",
        env.kernel, env.cpus, env.cpu_model
    )
}

pub fn run(opts: &InferenceOpts) -> Result<()> {
    let mut vectors: Vec<FeatureVec> = Vec::new();
    for p in &opts.datasets {
        let ds = dataset::read(p).with_context(|| {
            format!(
                "{} (run from the repository, or pass --datasets)",
                p.display()
            )
        })?;
        vectors.extend(ds.x);
    }
    vectors.truncate(MAX_VECTORS);
    if vectors.is_empty() {
        bail!("no feature vectors in {:?}", opts.datasets);
    }
    let mut models = vec![
        ("shipped".to_string(), ModelSource::Embedded.load()?),
        (format!("deepest (depth {MAX_DEPTH})"), deepest_model()?),
    ];
    if let Some(p) = &opts.model {
        models.push((p.display().to_string(), Model::load(p)?));
    }
    let mut obj = MaybeUninit::uninit();
    // The tracker's cost, where it can attach (what it would count does
    // not matter here: one node or several, every allocation runs it).
    let tracker = crate::sched::numa::tracker_ranges(true);
    let ranges = tracker.as_ref().ok().and_then(|r| r.as_deref());
    // The fill reads task fields as this build knows them: a kernel that
    // lays them out otherwise still gets the walk timed.
    let mut obj2 = MaybeUninit::uninit();
    let (mut prog, fill_error) = match TreeProg::load(&mut obj, ranges, true) {
        Ok(p) => (p, None),
        Err(e) => (
            TreeProg::load(&mut obj2, ranges, false)?,
            Some(format!("{e:#}")),
        ),
    };
    prog.set_vectors(&vectors)?;
    let mut out = Vec::new();
    for (name, m) in &models {
        out.push(time_model(&mut prog, name, m, &vectors, opts)?);
    }
    let numa = match &tracker {
        Ok(_) => Ok(numa_cost(&mut prog, opts.repeats)?),
        Err(e) => Err(format!("{e:#}")),
    };
    // A kernel whose BTF has no per-CPU variables loads the walk, not the fill.
    let fill = match fill_error {
        Some(e) => Err(format!("fill_bench did not load: {e}")),
        None => time_fill(&prog, opts, numa.is_ok()).map_err(|e| format!("{e:#}")),
    };
    let place = place();
    println!(
        "bench inference: BPF tree walk over {} recorded vectors, {} timed runs of about {} ms per model",
        vectors.len(),
        opts.repeats,
        opts.run_ms
    );
    println!("where: {place}");
    println!(
        "{:<22} {:>5} {:>5} {:>10} {:>10} {:>10} {:>18} {:>8}",
        "model",
        "depth",
        "nodes",
        "mean walk",
        "loop ns",
        "empty ns",
        "walk ns (min-max)",
        "migrate"
    );
    for t in &out {
        println!(
            "{:<22} {:>5} {:>5} {:>10.1} {:>10.1} {:>10.1} {:>6.1} ({:.1}-{:.1}) {:>7.1}%",
            t.model,
            t.depth,
            t.nodes,
            t.mean_walk_depth,
            t.loop_ns,
            t.empty_ns,
            t.walk_ns,
            t.walk_ns_min,
            t.walk_ns_max,
            t.migrate_share * 100.0
        );
    }
    match &fill {
        Ok(fill) => println!(
            "feature fill (bpf/fill.bpf.h and stand-ins for the sched_ext reads; a move across \
             nodes and LLCs{}): {:.1} ns per fill ({:.1}-{:.1}), loop {:.1} ns, empty loop {:.1} ns, \
             {} fills per run",
            if fill.numa_lookup {
                ", NUMA counts looked up"
            } else {
                ", no NUMA tracker loaded"
            },
            fill.fill_ns,
            fill.fill_ns_min,
            fill.fill_ns_max,
            fill.loop_ns,
            fill.empty_ns,
            fill.fills_per_run
        ),
        Err(why) => println!("feature fill: not measured: {why}"),
    }
    println!(
        "goal: at most {GOAL_NS} ns per decision natively for the walk; the APSys 2020 in-kernel MLP took {APSYS_NS} ns. \
         Under the emulated VM every BPF instruction costs about 14 times more."
    );
    match &numa {
        Ok(numa) => {
            println!(
                "NUMA page tracker (bpf/numa.bpf.h), {} runs of {} fresh pages each, interleaved: \
                 {:.0} ns per page faulted in without it, {:.0} ns with it (medians)",
                opts.repeats, numa.pages, numa.fault_ns_off, numa.fault_ns_on
            );
            match (numa.prog_ns_per_call, numa.calls_per_page) {
                (Some(ns), Some(calls)) => println!(
                    "  the tracker itself: {ns:.1} ns per call, {calls:.2} calls per page faulted in \
                     (BPF program statistics; it runs on every page allocation of the system while attached)"
                ),
                _ => println!(
                    "  the tracker itself: no BPF program statistics (kernel.bpf_stats_enabled)"
                ),
            }
        }
        Err(why) => println!("NUMA page tracker (bpf/numa.bpf.h): not measured: {why}"),
    }
    if let Some(p) = &opts.out {
        let json = serde_json::json!({ "place": place, "vectors": vectors.len(), "models": out, "fill": fill.as_ref().ok(), "numa_tracker": numa.as_ref().ok() });
        std::fs::write(p, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepest_model_is_walked_to_the_bottom_by_every_vector() {
        let m = deepest_model().unwrap();
        assert_eq!(m.depth, MAX_DEPTH);
        for x in [
            [0i64; NR_FEATURES],
            [i64::MAX - 1; NR_FEATURES],
            [-5; NR_FEATURES],
        ] {
            assert_eq!(walk_depth(&m, &x), MAX_DEPTH);
            assert!(m.predict(&x));
        }
        // and linfa agrees with the walk on it (the twin can check it)
        let t = m.linfa_tree().unwrap();
        assert!(crate::learn::model::linfa_predict(&t, &[3; NR_FEATURES]));
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
