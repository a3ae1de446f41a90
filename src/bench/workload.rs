//! The benchmark's workloads and how their figures are read: the kernel
//! compile's scope (what `make` builds, and where its tree comes from), fio's
//! command line and JSON, cyclictest's JSON histogram, `perf stat` CSV and
//! /proc/stat.  Everything here is pure parsing or command building, so it
//! is unit-tested on recorded outputs; `run.rs` starts the processes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// How much of the kernel one run compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `defconfig` on a kernel with sched_ext, `vm` inside the VM test bed.
    Auto,
    /// Two objects: checks the pipeline, not the numbers.
    Quick,
    /// A fixed subset (kernel/irq/, 17 objects): about 100 s alone and
    /// 100-155 s beside fio under emulation (4 vCPUs on 2 host cores).
    Vm,
    /// The whole defconfig vmlinux (native runs).
    Defconfig,
}

impl Scope {
    /// Auto resolved for where the benchmark runs.
    pub fn resolve(self, emulated: bool) -> Scope {
        match self {
            Scope::Auto if emulated => Scope::Vm,
            Scope::Auto => Scope::Defconfig,
            s => s,
        }
    }

    /// `make` targets of one run.
    pub fn targets(self) -> &'static [&'static str] {
        match self {
            Scope::Quick => &["kernel/locking/mutex.o", "kernel/locking/rwsem.o"],
            Scope::Vm => &["kernel/irq/"],
            Scope::Defconfig | Scope::Auto => &["vmlinux"],
        }
    }

    /// Whether the scope builds from the packed subset (`ksubset.tar`)
    /// rather than the whole prepared tree.
    pub fn uses_subset(self) -> bool {
        matches!(self, Scope::Quick | Scope::Vm)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Auto => "auto",
            Scope::Quick => "quick",
            Scope::Vm => "vm",
            Scope::Defconfig => "defconfig",
        }
    }
}

/// The compile's shape: what one run builds, at the scope's size.
///
/// `make` is the benchmark's original mix: a kernel subtree with many
/// small translation units, so much process churn (make, the shell, cc1,
/// as, all short).  `units` is the CPU-bound shape: a fixed list of large
/// translation units of one subsystem (kernel/, with kernel/sched/ first),
/// N = CPUs + 1 of them compiled at once, so that one CPU always has two
/// long-running compiler processes and the scheduler's slices, preemption
/// and migrations decide how fast they finish.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The shape's number seeds its own round order (make's is the order
    /// of the benchmarks made before there were shapes).
    #[default]
    Make = 0,
    Units = 1,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Make => "make",
            Shape::Units => "units",
        }
    }
}

/// The CPU-bound shape's translation units, largest first (by source size
/// in Debian's 6.1 linux-source; the build_* files include several
/// scheduler classes each).  Every one is built by x86_64 defconfig
/// whatever the options, so that `make` never lacks a rule for it.
pub const LARGE_UNITS: &[&str] = &[
    "kernel/sched/fair.o",
    "kernel/sched/core.o",
    "kernel/sched/build_policy.o",
    "kernel/sched/build_utility.o",
    "kernel/workqueue.o",
    "kernel/signal.o",
    "kernel/fork.o",
    "kernel/cpu.o",
    "kernel/sys.o",
    "kernel/sysctl.o",
    "kernel/resource.o",
    "kernel/exit.o",
    "kernel/kthread.o",
];

/// The `make` targets of one run of `shape` at `scope` on `cpus` CPUs.
/// The units shape takes the first CPUs + 1 of LARGE_UNITS (all of them,
/// at most), and in quick mode the quick scope's two small objects.
pub fn targets(shape: Shape, scope: Scope, cpus: usize) -> Vec<&'static str> {
    match (shape, scope) {
        (Shape::Make, _) | (Shape::Units, Scope::Quick) => scope.targets().to_vec(),
        (Shape::Units, _) => LARGE_UNITS[..(cpus + 1).min(LARGE_UNITS.len())].to_vec(),
    }
}

/// make's -j of `shape`: CPUs + 2 for the make shape (as a kernel build is
/// usually run), one job per unit for the units shape (all at once).
pub fn jobs(shape: Shape, scope: Scope, cpus: usize) -> usize {
    match shape {
        Shape::Make => cpus + 2,
        Shape::Units => targets(shape, scope, cpus).len(),
    }
}

/// `make` of one run.  The tree was configured and prepared natively by
/// bench/setup.sh, so kbuild's per-invocation prepare stage (checksyscalls,
/// objtool's sub-make, version headers: a few hundred short processes, over
/// a minute under emulation) is marked up to date with `-o`, and the run
/// times the compile itself.
pub fn make_args(shape: Shape, scope: Scope, cpus: usize) -> Vec<String> {
    let mut a = vec!["-s".to_string(), format!("-j{}", jobs(shape, scope, cpus))];
    for t in ["prepare", "scripts_basic", "outputmakefile", "scripts"] {
        a.push("-o".into());
        a.push(t.into());
    }
    a.extend(targets(shape, scope, cpus).iter().map(|t| t.to_string()));
    a
}

/// fio: 4 KiB random reads and writes (70/30) with O_DIRECT, two jobs doing
/// synchronous I/O, so that every completion is a wakeup the scheduler places.
/// It runs until SIGINT (sent when the compile ends; fio then writes its
/// JSON), at most an hour.
pub fn fio_args(target: &Path, json_out: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "--name=randrw",
        "--rw=randrw",
        "--rwmixread=70",
        "--bs=4k",
        "--direct=1",
        "--ioengine=psync",
        "--numjobs=2",
        "--group_reporting",
        "--size=512m",
        "--time_based",
        "--output-format=json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(format!("--filename={}", target.display()));
    a.push("--runtime=3600".into());
    a.push(format!("--output={}", json_out.display()));
    a
}

/// What one fio run gave: read+write IOPS, mean and p99 completion latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FioFigures {
    pub iops: f64,
    pub clat_mean_us: f64,
    pub clat_p99_us: f64,
}

/// Read fio's JSON (`--group_reporting`: one job entry).  The mean is
/// weighted by each direction's I/O count; p99 is the larger of the two
/// directions' p99 (fio reports percentiles per direction only).
pub fn parse_fio(json: &serde_json::Value) -> Result<FioFigures> {
    let job = json
        .get("jobs")
        .and_then(|j| j.get(0))
        .context("fio JSON has no jobs")?;
    let mut iops = 0.0;
    let mut weighted = 0.0;
    let mut ios = 0.0;
    let mut p99: f64 = 0.0;
    for dir in ["read", "write"] {
        let d = job
            .get(dir)
            .with_context(|| format!("fio JSON has no {dir}"))?;
        let f = |k: &str| d.get(k).and_then(|v| v.as_f64());
        iops += f("iops").context("fio JSON: no iops")?;
        let clat = d.get("clat_ns").context("fio JSON: no clat_ns")?;
        let n = clat.get("N").and_then(|v| v.as_f64()).unwrap_or(0.0);
        if n > 0.0 {
            let mean = clat.get("mean").and_then(|v| v.as_f64()).unwrap_or(0.0);
            weighted += mean * n;
            ios += n;
            let p = clat
                .get("percentile")
                .and_then(|p| p.get("99.000000"))
                .and_then(|v| v.as_f64())
                .context("fio JSON: no 99th percentile")?;
            p99 = p99.max(p);
        }
    }
    if ios == 0.0 {
        bail!("fio completed no I/O");
    }
    Ok(FioFigures {
        iops,
        clat_mean_us: weighted / ios / 1000.0,
        clat_p99_us: p99 / 1000.0,
    })
}

/// Size of cyclictest's histogram, in 1 µs buckets (200 ms).
pub const HIST_US: u64 = 200_000;

/// cyclictest with one SCHED_OTHER thread (priority 0) waking every 1 ms,
/// with a histogram up to HIST_US, until SIGINT; JSON at the end.
pub fn cyclictest_args(json_out: &Path) -> Vec<String> {
    vec![
        "-q".into(),
        "-t".into(),
        "1".into(),
        "-p".into(),
        "0".into(),
        "-i".into(),
        "1000".into(),
        "-h".into(),
        HIST_US.to_string(),
        format!("--json={}", json_out.display()),
    ]
}

/// Wakeup latency of the cyclictest thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigures {
    pub avg_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub cycles: u64,
}

/// Read cyclictest's JSON.  p99 comes from the histogram (1 µs buckets).
/// Wakeups beyond the histogram are left out of it but counted in
/// `cycles`; a p99 among them is reported as HIST_US, a lower bound (and
/// `max_us` says by how much).
pub fn parse_cyclictest(json: &serde_json::Value) -> Result<LatencyFigures> {
    let t = json
        .get("thread")
        .and_then(|t| t.get("0"))
        .context("cyclictest JSON has no thread 0")?;
    let num = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_f64())
            .with_context(|| format!("cyclictest JSON: no {k}"))
    };
    let cycles = num("cycles")? as u64;
    if cycles == 0 {
        bail!("cyclictest measured no wakeup");
    }
    let mut hist: Vec<(u64, u64)> = t
        .get("histogram")
        .and_then(|h| h.as_object())
        .context("cyclictest JSON: no histogram")?
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_u64()?)))
        .collect();
    hist.sort_unstable();
    let need = (cycles as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    let mut p99 = None;
    for (us, n) in &hist {
        seen += n;
        if seen >= need {
            p99 = Some(*us as f64);
            break;
        }
    }
    let max_us = num("max")?;
    Ok(LatencyFigures {
        avg_us: num("avg")?,
        p99_us: p99.unwrap_or(HIST_US as f64),
        max_us,
        cycles,
    })
}

/// `perf stat -x,` output: the count of `event`, if perf could count it.
pub fn parse_perf_count(text: &str, event: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.len() > 2 && f[2] == event).then(|| f[0].parse().ok())?
    })
}

/// The totals of /proc/stat this benchmark uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcStat {
    /// Busy jiffies of all CPUs (user, nice, system, irq, softirq, steal).
    pub busy: u64,
    /// All jiffies of all CPUs.
    pub total: u64,
    /// Context switches since boot.
    pub ctxt: u64,
}

pub fn parse_proc_stat(text: &str) -> Result<ProcStat> {
    let mut st = ProcStat::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("cpu") => {
                let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
                if v.len() < 8 {
                    bail!("/proc/stat: short cpu line: {l}");
                }
                // user nice system idle iowait irq softirq steal [guest guest_nice]
                st.total = v[..8].iter().sum();
                st.busy = st.total - v[3] - v[4];
            }
            Some("ctxt") => st.ctxt = it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    if st.total == 0 {
        bail!("/proc/stat has no cpu line");
    }
    Ok(st)
}

/// The interprocessor interrupts of /proc/interrupts that scheduling
/// causes: rescheduling (RES), function calls (CAL), TLB shootdowns (TLB)
/// and IRQ work (IWI: sched_ext's kicks of the local CPU).  Under
/// emulation each one costs the host: QEMU's TCG delivers interrupts under
/// its global lock, which its I/O emulation needs too.
pub const IPI_ROWS: [&str; 4] = ["RES", "CAL", "TLB", "IWI"];

/// The per-CPU counts of /proc/interrupts, summed over CPUs, by row name
/// (`LOC`, `RES`, numbered device lines by number).
pub fn parse_interrupts(text: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |h| {
        h.split_whitespace()
            .filter(|w| w.starts_with("CPU"))
            .count()
    });
    if cpus == 0 {
        bail!("/proc/interrupts has no CPU header");
    }
    let mut rows = std::collections::BTreeMap::new();
    for l in lines {
        let mut it = l.split_whitespace();
        let Some(name) = it.next().and_then(|w| w.strip_suffix(':')) else {
            continue;
        };
        let sum: u64 = it.take(cpus).map_while(|x| x.parse::<u64>().ok()).sum();
        rows.insert(name.to_string(), sum);
    }
    Ok(rows)
}

/// Runqueue wait as the kernel's sched_info counts it (CONFIG_SCHED_INFO,
/// on in every Debian kernel): the time tasks spent runnable but not
/// running, and how many times they started running.  The core scheduler
/// counts it for every class, so it compares the sched_ext schedulers with
/// the default one on the same footing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunDelay {
    pub delay_ns: u64,
    pub runs: u64,
}

impl RunDelay {
    pub fn add(self, o: RunDelay) -> RunDelay {
        RunDelay {
            delay_ns: self.delay_ns + o.delay_ns,
            runs: self.runs + o.runs,
        }
    }

    /// What was counted after `earlier` (a reading of the same counters).
    pub fn since(self, earlier: RunDelay) -> RunDelay {
        RunDelay {
            delay_ns: self.delay_ns.saturating_sub(earlier.delay_ns),
            runs: self.runs.saturating_sub(earlier.runs),
        }
    }

    /// Mean wait before each run, in us (None without runs).
    pub fn mean_us(self) -> Option<f64> {
        (self.runs > 0).then(|| self.delay_ns as f64 / self.runs as f64 / 1e3)
    }
}

/// /proc/schedstat: the sum over its `cpuN` lines of run_delay and pcount
/// (the 8th and 9th figures: rq_cpu_time, run_delay, pcount close the line
/// in every format version since 15).
pub fn parse_schedstat(text: &str) -> Result<RunDelay> {
    let mut sum = RunDelay::default();
    let mut cpus = 0;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        if !it
            .next()
            .is_some_and(|w| w.len() > 3 && w.starts_with("cpu"))
        {
            continue;
        }
        let v: Vec<u64> = it
            .map(|x| x.parse())
            .collect::<Result<_, _>>()
            .with_context(|| format!("/proc/schedstat: bad cpu line: {l}"))?;
        if v.len() < 9 {
            bail!("/proc/schedstat: short cpu line: {l}");
        }
        sum = sum.add(RunDelay {
            delay_ns: v[7],
            runs: v[8],
        });
        cpus += 1;
    }
    if cpus == 0 {
        bail!("/proc/schedstat has no cpu line");
    }
    Ok(sum)
}

/// /proc/PID/task/TID/schedstat: "run_ns run_delay_ns pcount".
pub fn parse_task_schedstat(text: &str) -> Result<RunDelay> {
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad schedstat: {text}"))?;
    match v[..] {
        [_, delay_ns, runs] => Ok(RunDelay { delay_ns, runs }),
        _ => bail!("schedstat has {} figures, not 3: {text}", v.len()),
    }
}

/// The parent pid of a /proc/PID/stat line (after the command name, which
/// may hold spaces and parentheses).
pub fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_build_what_they_say() {
        let args = |sh, sc, cpus| make_args(sh, sc, cpus).join(" ");
        // The make shape is the benchmark's original command.
        assert!(args(Shape::Make, Scope::Vm, 4).starts_with("-s -j6 -o prepare"));
        assert!(args(Shape::Make, Scope::Vm, 4).ends_with(" scripts kernel/irq/"));
        // Units: CPUs + 1 large units, all at once.
        let u = args(Shape::Units, Scope::Vm, 2);
        assert!(u.starts_with("-s -j3 "), "{u}");
        assert!(
            u.ends_with(" kernel/sched/fair.o kernel/sched/core.o kernel/sched/build_policy.o"),
            "{u}"
        );
        assert_eq!(targets(Shape::Units, Scope::Vm, 4).len(), 5);
        // Never more units than the list holds, however many CPUs.
        assert_eq!(targets(Shape::Units, Scope::Defconfig, 64), LARGE_UNITS);
        assert_eq!(jobs(Shape::Units, Scope::Defconfig, 64), LARGE_UNITS.len());
        // Quick mode compiles its two small objects in both shapes.
        assert_eq!(
            targets(Shape::Units, Scope::Quick, 4),
            Scope::Quick.targets()
        );
        assert_eq!(jobs(Shape::Units, Scope::Quick, 4), 2);
        // The VM scopes unpack kernel/ only (bench/setup.sh's subset), and
        // each unit is named once.
        let mut seen = std::collections::HashSet::new();
        for t in LARGE_UNITS {
            assert!(t.starts_with("kernel/") && t.ends_with(".o"), "{t}");
            assert!(seen.insert(t), "{t} twice");
        }
    }
    use serde_json::json;

    fn fio_dir(iops: f64, n: u64, mean_ns: f64, p99_ns: f64) -> serde_json::Value {
        json!({"iops": iops, "clat_ns": {"N": n, "mean": mean_ns,
            "percentile": {"50.000000": mean_ns, "99.000000": p99_ns}}})
    }

    #[test]
    fn fio_sums_iops_and_weights_the_mean() {
        let j = json!({"jobs": [{"read": fio_dir(700.0, 7000, 1000.0, 5000.0),
                                 "write": fio_dir(300.0, 3000, 2000.0, 9000.0)}]});
        let f = parse_fio(&j).unwrap();
        assert_eq!(f.iops, 1000.0);
        assert!((f.clat_mean_us - 1.3).abs() < 1e-9, "{}", f.clat_mean_us);
        assert_eq!(f.clat_p99_us, 9.0);
    }

    #[test]
    fn fio_without_io_or_jobs_is_an_error() {
        let j = json!({"jobs": [{"read": fio_dir(0.0, 0, 0.0, 0.0),
                                 "write": fio_dir(0.0, 0, 0.0, 0.0)}]});
        assert!(parse_fio(&j).is_err());
        assert!(parse_fio(&json!({"jobs": []})).is_err());
    }

    #[test]
    fn cyclictest_p99_from_the_histogram() {
        // 100 wakeups: 90 at 10 us, 9 at 50 us, 1 at 900 us -> p99 is 50.
        let j = json!({"thread": {"0": {"histogram": {"10": 90, "50": 9, "900": 1},
            "cycles": 100, "min": 10, "max": 900, "avg": 22.5}}});
        let l = parse_cyclictest(&j).unwrap();
        assert_eq!((l.p99_us, l.max_us, l.cycles), (50.0, 900.0, 100));
        // The histogram sorts numerically, not as strings ("900" < "50").
        let j = json!({"thread": {"0": {"histogram": {"900": 2, "50": 98},
            "cycles": 100, "min": 10, "max": 900, "avg": 60.0}}});
        assert_eq!(parse_cyclictest(&j).unwrap().p99_us, 900.0);
    }

    #[test]
    fn cyclictest_overflow_is_a_lower_bound() {
        // 2 of 100 wakeups beyond the histogram; the rest below 50 us.
        let j = json!({"thread": {"0": {"histogram": {"5": 80, "49": 18},
            "cycles": 100, "min": 5, "max": 400000, "avg": 8000.0}}});
        assert_eq!(parse_cyclictest(&j).unwrap().p99_us, HIST_US as f64);
        let j = json!({"thread": {"0": {"histogram": {}, "cycles": 0,
            "min": 0, "max": 0, "avg": 0.0}}});
        assert!(parse_cyclictest(&j).is_err());
    }

    #[test]
    fn perf_csv_counts() {
        let out = "# started on x\n\n12345,,cpu-migrations,40000000,100.00,,\n\
                   <not supported>,,sched:sched_migrate_task,0,100.00,,\n";
        assert_eq!(parse_perf_count(out, "cpu-migrations"), Some(12345));
        assert_eq!(parse_perf_count(out, "sched:sched_migrate_task"), None);
        assert_eq!(parse_perf_count(out, "context-switches"), None);
    }

    #[test]
    fn proc_stat_busy_excludes_idle_and_iowait() {
        let s = "cpu  100 10 50 800 40 5 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8\nctxt 4242\n";
        let st = parse_proc_stat(s).unwrap();
        assert_eq!((st.busy, st.total, st.ctxt), (170, 1010, 4242));
        assert!(parse_proc_stat("ctxt 1\n").is_err());
    }

    #[test]
    fn scopes_resolve_by_place() {
        assert_eq!(Scope::Auto.resolve(true), Scope::Vm);
        assert_eq!(Scope::Auto.resolve(false), Scope::Defconfig);
        assert_eq!(Scope::Quick.resolve(false), Scope::Quick);
        assert!(Scope::Vm.uses_subset() && !Scope::Defconfig.uses_subset());
        let a = fio_args(Path::new("/dev/vda"), Path::new("/o.json"));
        assert!(
            a.contains(&"--direct=1".to_string()) && a.contains(&"--filename=/dev/vda".to_string())
        );
    }

    #[test]
    fn schedstat_sums_cpu_lines_and_takes_differences() {
        let s = "version 17\ntimestamp 4295\n\
                 cpu0 0 0 0 0 0 0 111 2000 10\ndomain0 MC 3 0 0 0\n\
                 cpu1 0 0 0 0 0 0 222 6000 30\n";
        let a = parse_schedstat(s).unwrap();
        assert_eq!(
            a,
            RunDelay {
                delay_ns: 8000,
                runs: 40
            }
        );
        let b = RunDelay {
            delay_ns: 20000,
            runs: 50,
        };
        assert_eq!(b.since(a).mean_us(), Some(1.2));
        assert_eq!(a.since(b).mean_us(), None);
        assert!(parse_schedstat("version 17\n").is_err());
        assert!(parse_schedstat("cpu0 1 2 3\n").is_err());
    }

    #[test]
    fn task_schedstat_and_ppid() {
        assert_eq!(
            parse_task_schedstat("5000 3000 7\n").unwrap(),
            RunDelay {
                delay_ns: 3000,
                runs: 7
            }
        );
        assert!(parse_task_schedstat("5000 3000\n").is_err());
        assert!(parse_task_schedstat("a b c").is_err());
        assert_eq!(stat_ppid("42 (fio) S 41 42 7 0"), Some(41));
        assert_eq!(stat_ppid("43 (a) b) (c) R 9 43"), Some(9));
        assert_eq!(stat_ppid("garbage"), None);
    }

    #[test]
    fn interrupts_sum_over_cpus_by_row() {
        let s = "           CPU0       CPU1\n\
                   0:         40          2  IO-APIC    2-edge      timer\n\
                 LOC:       1000       3000   Local timer interrupts\n\
                 RES:         10         20   Rescheduling interrupts\n\
                 ERR:          0\n";
        let r = parse_interrupts(s).unwrap();
        assert_eq!((r["0"], r["LOC"], r["RES"], r["ERR"]), (42, 4000, 30, 0));
        assert!(!r.contains_key("CAL"));
        assert!(parse_interrupts("LOC: 1 2\n").is_err());
    }
}
