//! Runs the benchmark's plan on this machine (natively, or inside the VM
//! test bed's guest): for each run, attach the arm's scheduler and check the
//! kernel shows it, start the mix (perf counting migrations, cyclictest,
//! fio, then `make` on a fresh copy of the kernel tree), record the figures,
//! detach, and check the scheduler left cleanly.  A scheduler that fails to
//! attach or is ejected mid-run gives a failed run with its reason and log
//! tail; the benchmark goes on with the other runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use log::{info, warn};

use super::plan::{Arm, Launch};
use super::record::{OpCost, RunRecord};
use super::trace;
use super::workload::{self, Scope, Shape};
use crate::sched::preflight::{self, ExtState};
use crate::sched::stats::{GateByPoint, MovedBy};

/// Time a scheduler may take to attach (peers load slowly under emulation).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(120);
/// Time it may take to detach after SIGINT before it is killed.
const DETACH_TIMEOUT: Duration = Duration::from_secs(60);

fn ext_state() -> ExtState {
    preflight::read_state(Path::new(preflight::SYSFS_SCHED_EXT))
}

fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ok()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill() on our own child's pid; it has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Wait for `child` at most `timeout`; SIGKILL it past that.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// An attached sched_ext scheduler.
struct Attached {
    proc: Bg,
    ops: String,
    log: PathBuf,
}

/// Start the arm's scheduler and wait until the kernel shows it enabled.
/// On any failure the scheduler process is killed (Bg's drop).
fn attach(arm: &Arm, extra: &[String], log: &Path) -> Result<Option<Attached>> {
    if !wait_for(Duration::from_secs(30), || {
        ext_state() == ExtState::Disabled
    }) {
        bail!(
            "sched_ext is not disabled before the run: {:?}",
            ext_state()
        );
    }
    let (path, args) = match &arm.launch {
        Launch::Kernel => return Ok(None),
        Launch::Program { path, args } => (path, args),
        Launch::Unavailable(why) => bail!("not available: {why}"),
    };
    let mut proc = Bg::spawn(
        Command::new(path).args(args).args(extra),
        &path.display().to_string(),
        Some(log),
    )?;
    let mut exited = None;
    let up = wait_for(ATTACH_TIMEOUT, || {
        if let Ok(Some(st)) = proc.child().try_wait() {
            exited = Some(st);
            return true;
        }
        matches!(ext_state(), ExtState::Busy { state, .. } if state == "enabled")
    });
    let why = match (exited, up, ext_state()) {
        (Some(st), _, _) => format!("exited ({st}) before attaching"),
        (None, false, _) => format!("did not attach within {ATTACH_TIMEOUT:?}"),
        (None, true, ExtState::Busy { ops, .. }) => {
            return Ok(Some(Attached {
                proc,
                ops,
                log: log.to_path_buf(),
            }))
        }
        (None, true, _) => "detached right after attaching".into(),
    };
    bail!("{} {why}: {}", arm.name, tail(log, 5))
}

impl Attached {
    /// Still attached, as the same ops?
    fn check(&mut self) -> Result<()> {
        match ext_state() {
            ExtState::Busy { state, ops } if state == "enabled" && ops == self.ops => Ok(()),
            st => bail!(
                "the scheduler left during the run (now {st:?}; ejected?): {}",
                tail(&self.log, 5)
            ),
        }
    }

    /// SIGINT, as scx_loader stops a scheduler; the exit status.
    fn detach(self) -> Result<i32> {
        let st = self.proc.stop(DETACH_TIMEOUT)?;
        if !wait_for(Duration::from_secs(30), || {
            ext_state() == ExtState::Disabled
        }) {
            bail!("sched_ext did not return to disabled: {:?}", ext_state());
        }
        Ok(st.code().unwrap_or(128 + st.signal_or_zero()))
    }
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// kernel.bpf_stats_enabled as it was; set back when dropped.
pub struct BpfStats(Option<String>);

impl BpfStats {
    /// Whether the statistics were turned on.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = fs::write(BPF_STATS, old);
        }
    }
}

/// Turn on BPF program statistics (run time and count per program), for
/// the dispatch cost, until the guard is dropped; every BPF arm pays their
/// small cost alike.
pub fn enable_bpf_stats() -> BpfStats {
    let old = fs::read_to_string(BPF_STATS).ok();
    match fs::write(BPF_STATS, "1") {
        Ok(()) => BpfStats(old),
        Err(e) => {
            warn!("kernel.bpf_stats_enabled: {e}; no dispatch cost in the report");
            BpfStats(None)
        }
    }
}

/// Name fragments of the struct_ops programs whose cost is measured
/// (names are truncated by the kernel to 15 characters: "mlsched_select_",
/// "bpfland_dispatc"), in the order of [select_cpu, enqueue, dispatch].
const COSTED_OPS: [&str; 3] = ["_select_", "_enqueue", "_dispatc"];

/// (run_time_ns, run_cnt) summed over the attached sched_ext scheduler's
/// struct_ops programs whose name holds `fragment`; None without any.
fn prog_stats(fragment: &str) -> Option<(u64, u64)> {
    libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| {
            p.ty == libbpf_rs::ProgramType::StructOps && p.name.to_string_lossy().contains(fragment)
        })
        .map(|p| (p.run_time_ns, p.run_cnt))
        .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
}

/// The mean cost per call between two readings of prog_stats().
fn op_cost(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<OpCost> {
    let ((t0, n0), (t1, n1)) = (before?, after?);
    let calls = n1.saturating_sub(n0);
    (calls > 0).then(|| OpCost {
        ns_per_call: t1.saturating_sub(t0) as f64 / calls as f64,
        calls,
    })
}

trait SignalOrZero {
    fn signal_or_zero(&self) -> i32;
}
impl SignalOrZero for std::process::ExitStatus {
    fn signal_or_zero(&self) -> i32 {
        std::os::unix::process::ExitStatusExt::signal(self).unwrap_or(0)
    }
}

/// A process in the background (a workload tool, or an arm's scheduler).
/// If a run fails before `stop`, dropping it SIGKILLs and reaps it, so no
/// perf, fio or scheduler outlives its run and skews the next one.
struct Bg {
    child: Option<Child>,
}

impl Bg {
    /// Start `cmd` with its output (stdout and stderr) in `log`, if given.
    fn spawn(cmd: &mut Command, what: &str, log: Option<&Path>) -> Result<Bg> {
        let (out, err) = match log {
            Some(p) => {
                let f = fs::File::create(p)?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(Bg { child: Some(child) })
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running until stopped")
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running until stopped").id()
    }

    /// SIGINT, on which perf, cyclictest and fio write their results; wait
    /// at most `timeout`, then SIGKILL.
    fn stop(mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let mut c = self.child.take().expect("stopped once");
        signal(&c, libc::SIGINT);
        wait_or_kill(&mut c, timeout)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn proc_stat() -> Result<workload::ProcStat> {
    workload::parse_proc_stat(&fs::read_to_string("/proc/stat")?)
}

fn interrupts() -> Option<std::collections::BTreeMap<String, u64>> {
    workload::parse_interrupts(&fs::read_to_string("/proc/interrupts").ok()?).ok()
}

/// The system's runqueue wait counters (None where the kernel has no
/// /proc/schedstat).
fn system_run_delay() -> Option<workload::RunDelay> {
    workload::parse_schedstat(&fs::read_to_string("/proc/schedstat").ok()?).ok()
}

/// The runqueue wait counters of `parent`'s children, summed over their
/// threads: fio's job processes, which fio forks (None if it has none, or
/// the kernel does not count them).
fn children_run_delay(parent: u32) -> Option<workload::RunDelay> {
    let mut sum = None::<workload::RunDelay>;
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let dir = e.path();
        let is_child = fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| workload::stat_ppid(&s))
            == Some(parent);
        if !is_child {
            continue;
        }
        for t in fs::read_dir(dir.join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = fs::read_to_string(t.path().join("schedstat")) else {
                continue; // the thread ended
            };
            let d = workload::parse_task_schedstat(&text).ok()?;
            sum = Some(sum.unwrap_or_default().add(d));
        }
    }
    sum
}

fn children_cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The compile's tree: a pristine prepared copy and the run's fresh copy.
pub struct Tree {
    pristine: PathBuf,
    run: PathBuf,
}

impl Tree {
    /// The VM scopes unpack `ksubset.tar` (bench/setup.sh) into `scratch`
    /// (a tmpfs in the guest); defconfig uses the whole prepared tree.
    pub fn prepare(scope: Scope, workdir: &Path, scratch: &Path) -> Result<Tree> {
        let run = scratch.join("run");
        if !scope.uses_subset() {
            let pristine = workdir.join("linux");
            if !pristine.join(".config").is_file() {
                bail!(
                    "{} has no prepared kernel tree: run bench/setup.sh",
                    pristine.display()
                );
            }
            return Ok(Tree { pristine, run });
        }
        let tar = workdir.join("ksubset.tar");
        if !tar.is_file() {
            bail!("{} is missing: run bench/setup.sh", tar.display());
        }
        let pristine = scratch.join("pristine");
        let _ = fs::remove_dir_all(&pristine);
        fs::create_dir_all(&pristine)?;
        sh(Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&pristine))?;
        Ok(Tree { pristine, run })
    }

    fn fresh(&self) -> Result<()> {
        if self.run.exists() {
            fs::remove_dir_all(&self.run)?;
        }
        sh(Command::new("cp")
            .arg("-a")
            .arg(&self.pristine)
            .arg(&self.run))
    }
}

fn sh(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A run's file: `stem` + "." + `ext`.  Not with_extension, which would
/// cut an arm's name at its last dot (mlsched-explore0.2 -> ...explore0).
fn beside(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// `bench --record`: what each of this binary's runs records.
pub struct RecordRuns {
    pub max_rows: u64,
    /// The bench seed, logged in each file's header.
    pub seed: u64,
}

impl RecordRuns {
    /// `run` options recording into `file`, its header saying which run.
    pub fn args(&self, file: &Path, arm: &str, shape: Shape, round: u32) -> Vec<String> {
        let mut v = vec![
            "--record".to_string(),
            file.to_string_lossy().into_owned(),
            "--record-max".into(),
            self.max_rows.to_string(),
        ];
        for (k, val) in [
            ("bench_seed", self.seed.to_string()),
            ("shape", shape.name().to_string()),
            ("round", round.to_string()),
            ("arm", arm.to_string()),
        ] {
            v.push("--record-meta".into());
            v.push(format!("{k}={val}"));
        }
        v
    }
}

pub struct Runner {
    pub scope: Scope,
    pub cpus: usize,
    pub tree: Tree,
    pub fio_target: PathBuf,
    /// Where per-run files go (fio and cyclictest JSON, scheduler logs).
    pub runs_dir: PathBuf,
    /// The compile's and fio's cgroups, and the tracer that counts per
    /// workload (None where they could not be set up: the runs then
    /// record no per-workload counts).
    pub traced: Option<(trace::Cgroups, trace::Tracer)>,
    /// `bench --record`: this binary's arms record into
    /// runs/<stem>.records.csv.
    pub record: Option<RecordRuns>,
}

impl Runner {
    fn read_workloads(&self) -> Option<trace::ByWorkload> {
        let (_, t) = self.traced.as_ref()?;
        t.read()
            .map_err(|e| warn!("no per-workload counts: {e:#}"))
            .ok()
    }

    /// One run: `arm` in `round`, at `position` in the round's order.
    pub fn run(&self, arm: &Arm, shape: Shape, round: u32, position: u32) -> RunRecord {
        let mut rec = RunRecord {
            arm: arm.name.clone(),
            shape,
            round,
            position,
            ..Default::default()
        };
        let stem = self.runs_dir.join(rec.stem());
        let sched_log = beside(&stem, "sched.log");
        let res = (|| -> Result<()> {
            self.tree.fresh()?;
            // A unit the pristine tree holds compiled already (a native
            // tree someone built in) would not be compiled again.
            if shape == Shape::Units {
                for t in workload::targets(shape, self.scope, self.cpus) {
                    let _ = fs::remove_file(self.tree.run.join(t));
                }
            }
            let extra = match &self.record {
                Some(r) if arm.ours => {
                    r.args(&beside(&stem, "records.csv"), &arm.name, shape, round)
                }
                _ => vec![],
            };
            let mut att = attach(arm, &extra, &sched_log)?;
            if let Some(a) = &att {
                rec.ops = a.ops.clone();
            }
            let measured = self.measure(&stem, shape, &mut rec);
            let checked = att.as_mut().map_or(Ok(()), |a| a.check());
            if let Some(a) = att {
                rec.sched_exit = Some(a.detach()?);
            }
            measured.and(checked)?;
            if let Some(code) = rec.sched_exit.filter(|&c| c != 0) {
                bail!(
                    "{} exited {code} on SIGINT: {}",
                    arm.name,
                    tail(&sched_log, 5)
                );
            }
            Ok(())
        })();
        match res {
            Ok(()) => rec.ok = true,
            Err(e) => {
                warn!("round {round}, {}: {e:#}", arm.name);
                rec.error = Some(format!("{e:#}"));
            }
        }
        rec
    }

    /// The mix itself, with the scheduler already attached.  perf and
    /// cyclictest start first, fio a second later, then make; when make
    /// ends, all three get SIGINT (each writes its results on it), so fio's
    /// I/O and the latency samples cover exactly the compile.
    fn measure(&self, stem: &Path, shape: Shape, rec: &mut RunRecord) -> Result<()> {
        let fio_out = beside(stem, "fio.json");
        let fio_log = beside(stem, "fio.log");
        let ct_out = beside(stem, "cyclictest.json");
        let perf_out = beside(stem, "perf.csv");
        let make_log = beside(stem, "make.log");

        let perf_t0 = Instant::now();
        let perf = Bg::spawn(
            Command::new("perf")
                .args(["stat", "-a", "-x,", "-e", "cpu-migrations", "-o"])
                .arg(&perf_out),
            "perf (linux-perf)",
            None,
        )?;
        let mut ct_cmd = Command::new("cyclictest");
        ct_cmd.args(workload::cyclictest_args(&ct_out));
        if let Some((cg, _)) = &self.traced {
            trace::start_in(&mut ct_cmd, &cg.latency)?;
        }
        let ct = Bg::spawn(&mut ct_cmd, "cyclictest (rt-tests)", None)?;
        std::thread::sleep(Duration::from_secs(1));
        let mut fio_cmd = Command::new("fio");
        fio_cmd.args(workload::fio_args(&self.fio_target, &fio_out));
        let mut make_cmd = Command::new("make");
        make_cmd
            .args(workload::make_args(shape, self.scope, self.cpus))
            .current_dir(&self.tree.run)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&make_log)?);
        if let Some((cg, _)) = &self.traced {
            trace::start_in(&mut fio_cmd, &cg.fio)?;
            trace::start_in(&mut make_cmd, &cg.compile)?;
        }
        let fio = Bg::spawn(&mut fio_cmd, "fio", Some(&fio_log))?;

        let costs0 = COSTED_OPS.map(prog_stats);
        let moved0 = MovedBy::read_loaded();
        let gate0 = GateByPoint::read_loaded();
        let rd0 = system_run_delay();
        let irq0 = interrupts();
        let st0 = proc_stat()?;
        let wl0 = self.read_workloads();
        let cpu0 = children_cpu_s();
        let t0 = Instant::now();
        let make = make_cmd.status().context("starting make")?;
        rec.compile_wall_s = t0.elapsed().as_secs_f64();
        if let (Some(a), Some(b)) = (wl0, self.read_workloads()) {
            rec.workloads = Some(b.since(&a));
        }
        // Only make has been reaped since cpu0: the delta is its tree's CPU time.
        rec.compile_cpu_s = children_cpu_s() - cpu0;
        let st1 = proc_stat()?;
        if let (Some(a), Some(b)) = (rd0, system_run_delay()) {
            rec.run_wait_us = b.since(a).mean_us();
        }
        if let (Some(a), Some(b)) = (irq0, interrupts()) {
            let rows = workload::IPI_ROWS.iter().chain(&["LOC"]);
            rec.irqs = rows
                .filter_map(|&k| Some((k.to_string(), b.get(k)?.saturating_sub(*a.get(k)?))))
                .collect();
            let ipis: u64 = workload::IPI_ROWS
                .iter()
                .filter_map(|k| rec.irqs.get(*k))
                .sum();
            rec.ipis_per_60s = Some(ipis as f64 * 60.0 / rec.compile_wall_s);
        }
        // fio's jobs run from (about) the compile's start to now.
        rec.fio_wait_us = children_run_delay(fio.pid()).and_then(|d| d.mean_us());
        if let (Some(a), Some(b)) = (moved0, MovedBy::read_loaded()) {
            rec.moved = Some(b.since(&a));
        }
        if let (Some(a), Some(b)) = (gate0, GateByPoint::read_loaded()) {
            rec.gate = Some(b.since(&a));
        }
        let costs1 = COSTED_OPS.map(prog_stats);
        let cost = |i: usize| op_cost(costs0[i], costs1[i]);
        rec.select_cpu_cost = cost(0);
        rec.enqueue_cost = cost(1);
        if let Some(d) = cost(2) {
            rec.dispatch_ns = Some(d.ns_per_call);
            rec.dispatch_calls = d.calls;
        }

        let wait = Duration::from_secs(60);
        perf.stop(wait)?;
        let perf_window = perf_t0.elapsed().as_secs_f64();
        ct.stop(wait)?;
        // fio exits non-zero on SIGINT; its JSON, read below, says whether it ran.
        fio.stop(wait)?;

        if !make.success() {
            bail!("make failed ({make}): {}", tail(&make_log, 5));
        }
        rec.efficiency = rec.compile_cpu_s / (self.cpus as f64 * rec.compile_wall_s);
        rec.cpu_busy = (st1.busy - st0.busy) as f64 / (st1.total - st0.total).max(1) as f64;
        rec.ctx_switches = st1.ctxt - st0.ctxt;

        let read_json = |p: &Path, log: &Path| -> Result<serde_json::Value> {
            let text = fs::read_to_string(p).unwrap_or_default();
            // fio prints notes ("terminating on signal 2") before its JSON.
            let start = text.find('{').unwrap_or(0);
            serde_json::from_str(&text[start..])
                .with_context(|| format!("no results in {}: {}", p.display(), tail(log, 5)))
        };
        rec.fio_json = read_json(&fio_out, &fio_log)?;
        rec.fio = workload::parse_fio(&rec.fio_json)?;
        rec.cyclictest_json = read_json(&ct_out, &ct_out)?;
        rec.latency = workload::parse_cyclictest(&rec.cyclictest_json)?;
        let perf_text = fs::read_to_string(&perf_out).unwrap_or_default();
        rec.migrations = workload::parse_perf_count(&perf_text, "cpu-migrations")
            .with_context(|| format!("perf counted no cpu-migrations: {}", perf_text.trim()))?;
        rec.migrations_per_60s = rec.migrations as f64 * 60.0 / perf_window;
        info!(
            "round {}, {} ({}): compile {:.1} s, fio {:.0} IOPS (waits {:.0} us), wakeup p99 {:.0} us, {} migrations",
            rec.round,
            rec.arm,
            shape.name(),
            rec.compile_wall_s,
            rec.fio.iops,
            rec.fio_wait_us.unwrap_or(f64::NAN),
            rec.latency.p99_us,
            rec.migrations
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command as Cmd};
    use clap::Parser;

    #[test]
    fn run_files_keep_the_whole_arm_name() {
        let f = beside(Path::new("/o/r1-units-mlsched-explore0.2"), "records.csv");
        assert_eq!(f, Path::new("/o/r1-units-mlsched-explore0.2.records.csv"));
    }

    /// What `bench --record` adds is a valid `run` command line, and the
    /// header says which run the file came from.
    #[test]
    fn record_args_are_run_options() {
        let r = RecordRuns {
            max_rows: 1234,
            seed: 59,
        };
        let extra = r.args(
            Path::new("/o/r1.records.csv"),
            "mlsched-explore0.1",
            Shape::Units,
            3,
        );
        let argv = ["scx_mlsched", "run", "--explore", "0.1", "--stats", "10"]
            .into_iter()
            .map(String::from)
            .chain(extra);
        let Some(Cmd::Run(o)) = Cli::try_parse_from(argv).unwrap().cmd else {
            panic!("not a run")
        };
        assert_eq!(o.record.as_deref(), Some(Path::new("/o/r1.records.csv")));
        assert_eq!(o.record_max, 1234);
        let meta: Vec<String> = o
            .record_meta
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            meta,
            [
                "bench_seed=59",
                "shape=units",
                "round=3",
                "arm=mlsched-explore0.1"
            ]
        );
    }
}
