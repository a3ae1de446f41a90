//! Where the compile's time goes, per workload (the issue "CPU-bound
//! throughput", item 2).  The compile and fio each run in a cgroup (v2) of
//! their own; bpf/benchtrace.bpf.c counts per workload, from tracepoints
//! that fire under any scheduler (the default one too): switches off a CPU,
//! the involuntary ones by the workload of the task that ran next, the
//! lengths of the runs, migrations, runqueue waits and wakeups.  It is
//! loaded once per benchmark, and each run reads the counters before and
//! after it, as it reads the scheduler's own maps.

use std::fs;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use serde::{Deserialize, Serialize};

use crate::sched::bpf_intf as c;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/benchtrace_skel.rs"));
}
use skel::*;

const NR_WL: usize = c::bench_workload_NR_WORKLOADS as usize;
const NR_C: usize = c::wl_counter_NR_WL_COUNTERS as usize;
/// Log2 buckets of run lengths in µs: [0,1), [1,2), [2,4), ..., the last open.
pub const NR_RUN_BUCKETS: usize = c::bench_consts_NR_RUN_BUCKETS as usize;

/// One workload's counts over a window (enum wl_counter of bpf/intf.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Its tasks' switches off a CPU.
    pub switches: u64,
    /// ... while still runnable: preempted, or their slice ended.
    pub involuntary: u64,
    /// The involuntary switches, by the workload of the task that ran next.
    pub by_compile: u64,
    pub by_fio: u64,
    pub by_other: u64,
    /// Summed length of its runs (switch-in to switch-out), and how many.
    pub run_ns: u64,
    pub runs: u64,
    /// Its runs per length bucket (NR_RUN_BUCKETS).
    pub run_hist: Vec<u64>,
    pub migrations: u64,
    /// Summed runqueue wait (runnable, by a wakeup or a preemption, until
    /// it ran), and how many waits.
    pub wait_ns: u64,
    pub waits: u64,
    pub wakeups: u64,
}

impl TaskCounts {
    /// From one workload's block of counters.
    fn from_block(b: &[u64]) -> Self {
        let at = |i: u32| b[i as usize];
        let by = |w: u32| at(c::wl_counter_WLC_BY_WL + w);
        let hist = c::wl_counter_WLC_RUN_HIST as usize;
        Self {
            switches: at(c::wl_counter_WLC_SWITCHES),
            involuntary: at(c::wl_counter_WLC_INVOLUNTARY),
            by_compile: by(c::bench_workload_WL_COMPILE),
            by_fio: by(c::bench_workload_WL_FIO),
            by_other: by(c::bench_workload_WL_OTHER),
            run_ns: at(c::wl_counter_WLC_RUN_NS),
            runs: at(c::wl_counter_WLC_RUNS),
            run_hist: b[hist..hist + NR_RUN_BUCKETS].to_vec(),
            migrations: at(c::wl_counter_WLC_MIGRATIONS),
            wait_ns: at(c::wl_counter_WLC_WAIT_NS),
            waits: at(c::wl_counter_WLC_WAITS),
            wakeups: at(c::wl_counter_WLC_WAKEUPS),
        }
    }

    fn since(&self, o: &Self) -> Self {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Self {
            switches: d(self.switches, o.switches),
            involuntary: d(self.involuntary, o.involuntary),
            by_compile: d(self.by_compile, o.by_compile),
            by_fio: d(self.by_fio, o.by_fio),
            by_other: d(self.by_other, o.by_other),
            run_ns: d(self.run_ns, o.run_ns),
            runs: d(self.runs, o.runs),
            run_hist: self
                .run_hist
                .iter()
                .zip(o.run_hist.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| d(*a, *b))
                .collect(),
            migrations: d(self.migrations, o.migrations),
            wait_ns: d(self.wait_ns, o.wait_ns),
            waits: d(self.waits, o.waits),
            wakeups: d(self.wakeups, o.wakeups),
        }
    }

    pub fn mean_run_us(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.run_ns as f64 / self.runs as f64 / 1000.0)
    }

    pub fn mean_wait_us(&self) -> Option<f64> {
        (self.waits > 0).then(|| self.wait_ns as f64 / self.waits as f64 / 1000.0)
    }

    /// The share of its runs, in percent, that lasted at least `us` µs (a
    /// power of 2: a bucket's lower bound).  None without runs.
    pub fn runs_at_least_pct(&self, us: u64) -> Option<f64> {
        let total: u64 = self.run_hist.iter().sum();
        // Bucket k >= 1 holds [2^(k-1), 2^k) µs.
        let first = if us == 0 { 0 } else { us.ilog2() as usize + 1 };
        let long: u64 = self.run_hist.iter().skip(first).sum();
        (total > 0).then(|| long as f64 * 100.0 / total as f64)
    }
}

/// The compile's and fio's counts over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByWorkload {
    pub compile: TaskCounts,
    pub fio: TaskCounts,
}

impl ByWorkload {
    /// From the `bench_wl` counters summed over CPUs.
    pub fn from_counters(cnt: &[u64]) -> Self {
        let block = |w: u32| &cnt[w as usize * NR_C..(w as usize + 1) * NR_C];
        Self {
            compile: TaskCounts::from_block(block(c::bench_workload_WL_COMPILE)),
            fio: TaskCounts::from_block(block(c::bench_workload_WL_FIO)),
        }
    }

    pub fn since(&self, o: &Self) -> Self {
        Self {
            compile: self.compile.since(&o.compile),
            fio: self.fio.since(&o.fio),
        }
    }
}

/// The benchmark's cgroups: <root>/scx_mlsched-bench/{compile,fio,latency}.
/// cyclictest goes in `latency`, so that the three workloads stay
/// siblings under one parent, as they were in one cgroup before: where
/// the root delegates the cpu controller, the parent is one group of the
/// fair class's, and the workloads share it as before.
pub struct Cgroups {
    pub compile: PathBuf,
    pub fio: PathBuf,
    pub latency: PathBuf,
}

impl Cgroups {
    /// Create them under the cgroup v2 hierarchy at `root`
    /// (/sys/fs/cgroup).  No controller is enabled: they only label tasks.
    pub fn create(root: &Path) -> Result<Cgroups> {
        if !root.join("cgroup.controllers").is_file() {
            bail!(
                "{} is not a cgroup v2 hierarchy: the benchmark cannot tell the compile's tasks from fio's",
                root.display()
            );
        }
        let base = root.join("scx_mlsched-bench");
        let cg = Cgroups {
            compile: base.join("compile"),
            fio: base.join("fio"),
            latency: base.join("latency"),
        };
        for d in [&cg.compile, &cg.fio, &cg.latency] {
            fs::create_dir_all(d).with_context(|| format!("creating cgroup {}", d.display()))?;
        }
        Ok(cg)
    }

    /// A cgroup's id, as BPF reads it (its kernfs node id, the directory's
    /// inode number).
    pub fn id(dir: &Path) -> Result<u64> {
        Ok(fs::metadata(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .ino())
    }
}

/// Start `cmd`'s process in the cgroup `dir`; its children follow it.
pub fn start_in(cmd: &mut Command, dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&procs)
        .with_context(|| format!("opening {}", procs.display()))?;
    // SAFETY: the closure runs between fork and exec and calls only
    // write(2), which is async-signal-safe; it owns the file, so the fd
    // stays open until then ("0" moves the writing process itself).
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// bpf/benchtrace.bpf.c, loaded and attached for the benchmark's life.
pub struct Tracer {
    skel: BenchtraceSkel<'static>,
}

impl Tracer {
    pub fn load(cg: &Cgroups) -> Result<Tracer> {
        // One tracer per benchmark process: its object lives as long.
        let object = Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = BenchtraceSkelBuilder::default()
            .open(object)
            .context("opening the benchmark's trace BPF object")?;
        let rodata = open.maps.rodata_data.as_mut().unwrap();
        rodata.cg_compile = Cgroups::id(&cg.compile)?;
        rodata.cg_fio = Cgroups::id(&cg.fio)?;
        let mut skel = open
            .load()
            .context("loading the benchmark's trace BPF programs")?;
        skel.attach()
            .context("attaching the benchmark's tracepoints")?;
        Ok(Tracer { skel })
    }

    /// The counters so far, summed over CPUs.
    pub fn read(&self) -> Result<ByWorkload> {
        let cnt = crate::sched::stats::read_sum(&self.skel.maps.bench_wl, NR_WL * NR_C)?;
        Ok(ByWorkload::from_counters(&cnt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters laid out as the BPF side writes them: workload w's block
    /// holds `base + w * 1000 + i` at index i.
    fn counters(base: u64) -> Vec<u64> {
        (0..NR_WL)
            .flat_map(|w| (0..NR_C).map(move |i| base + w as u64 * 1000 + i as u64))
            .collect()
    }

    #[test]
    fn counters_map_to_their_workload_and_field() {
        let b = ByWorkload::from_counters(&counters(0));
        let compile = c::bench_workload_WL_COMPILE as u64 * 1000;
        let fio = c::bench_workload_WL_FIO as u64 * 1000;
        assert_eq!(
            b.compile.switches,
            compile + c::wl_counter_WLC_SWITCHES as u64
        );
        assert_eq!(
            b.fio.involuntary,
            fio + c::wl_counter_WLC_INVOLUNTARY as u64
        );
        assert_eq!(
            b.compile.by_fio,
            compile + (c::wl_counter_WLC_BY_WL + c::bench_workload_WL_FIO) as u64
        );
        assert_eq!(b.fio.migrations, fio + c::wl_counter_WLC_MIGRATIONS as u64);
        assert_eq!(
            b.compile.wakeups,
            compile + c::wl_counter_WLC_WAKEUPS as u64
        );
        assert_eq!(b.compile.run_hist.len(), NR_RUN_BUCKETS);
        assert_eq!(
            b.compile.run_hist[0],
            compile + c::wl_counter_WLC_RUN_HIST as u64
        );
        // A window is the difference of two readings.
        let later = ByWorkload::from_counters(&counters(7));
        let d = later.since(&b);
        assert_eq!(d.compile.runs, 7);
        assert!(d.fio.run_hist.iter().all(|&x| x == 7));
    }

    #[test]
    fn means_and_shares_of_runs() {
        let mut t = TaskCounts {
            run_ns: 3_000_000,
            runs: 3,
            wait_ns: 500_000,
            waits: 2,
            run_hist: vec![0; NR_RUN_BUCKETS],
            ..Default::default()
        };
        assert_eq!(t.mean_run_us(), Some(1000.0));
        assert_eq!(t.mean_wait_us(), Some(250.0));
        assert_eq!(t.runs_at_least_pct(1024), None);
        // One run in [512, 1024) µs (bucket 10), three in [1024, 2048).
        t.run_hist[10] = 1;
        t.run_hist[11] = 3;
        assert_eq!(t.runs_at_least_pct(1024), Some(75.0));
        assert_eq!(t.runs_at_least_pct(512), Some(100.0));
        assert_eq!(t.runs_at_least_pct(0), Some(100.0));
        assert_eq!(TaskCounts::default().mean_run_us(), None);
    }

    #[test]
    fn a_missing_hierarchy_is_an_error_that_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = Cgroups::create(dir.path()).err().unwrap();
        assert!(
            format!("{err:#}").contains("not a cgroup v2 hierarchy"),
            "{err:#}"
        );
    }
}
