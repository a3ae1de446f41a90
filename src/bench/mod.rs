//! `scx_mlsched bench`: the benchmark users decide by.  A Linux kernel
//! compile, in two shapes (`make` of a subtree: many small units and much
//! process churn; `units`: CPUs + 1 large translation units at once,
//! CPU-bound), beside fio random I/O and cyclictest, under each scheduler (an
//! "arm": the default scheduler, scx_mlsched, scx peers), all in one boot,
//! in shuffled rounds after a discarded warm-up round.  It reports per arm
//! the median, min and max, and the paired per-round ratio to the default
//! scheduler with a 95% t confidence interval (none, and no verdict, below
//! 5 paired rounds).  It asserts no timing: it reports.
//!
//! Data flow: plan (arms, round order) -> run (one arm in one round: attach,
//! run the workloads, record) -> summary (statistics) -> report (JSON, CSV,
//! markdown, environment) and chart (PNG).  On a kernel without sched_ext,
//! vm boots the VM test bed and runs this same binary inside it.

pub mod chart;
pub mod inference;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod run;
pub mod summary;
pub mod trace;
pub mod vm;
pub mod workload;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use log::info;

use crate::sched::preflight;
use plan::{Launch, BASELINE};
use progress::{Progress, Step};
use workload::{Scope, Shape};

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchOpts {
    #[command(subcommand)]
    pub what: Option<BenchWhat>,

    /// Schedulers to compare, comma-separated: default (the kernel's own,
    /// no sched_ext scheduler), mlsched (heuristic policy), mlsched-ml (the
    /// learned model), and peers by name (bpfland, rusty, or any scx_NAME in
    /// --peers-dir).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,mlsched,mlsched-ml,bpfland,rusty"
    )]
    pub schedulers: Vec<String>,

    /// Measured rounds; one warm-up round runs first and is discarded.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub rounds: u32,

    /// How much of the kernel each run compiles: auto is defconfig natively
    /// and vm (a fixed subset, 100-155 s a run) in the emulated VM.
    #[arg(long, value_enum, default_value_t = Scope::Auto)]
    pub scope: Scope,

    /// Compile shapes, comma-separated, each run by every scheduler in
    /// every round: make (a kernel subtree: many small units, much process
    /// churn) and units (CPUs + 1 large translation units at once:
    /// CPU-bound).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "make,units")]
    pub shapes: Vec<Shape>,

    /// Check the pipeline end to end in a few minutes: scope quick, 2
    /// rounds. Its numbers mean nothing.
    #[arg(long)]
    pub quick: bool,

    /// Output folder [default: bench/results/<date>-<machine>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Machine name for the output folder [default: the host name, or
    /// vm-tcg-<N>cpu in the VM test bed].
    #[arg(long)]
    pub machine: Option<String>,

    /// Seed of the per-round shuffles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Where the peer schedulers are (bench/setup.sh builds the pinned ones).
    #[arg(long, default_value = "/var/cache/scx_mlsched/peers/bin")]
    pub peers_dir: PathBuf,

    /// Folder of the model files that `mlsched-ml-NAME` arms load
    /// (NAME.json) [default: the repository's model/].
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,

    /// Record every scx_mlsched arm's decisions and their outcomes (`run
    /// --record`) into runs/<run>.records.csv, with the bench seed, shape,
    /// round and arm in each file's header: the logs of `eval
    /// --policy-value` and `train --target outcome` (with an
    /// `mlsched-exploreEPS` arm), recorded on the benchmark's own workload.
    #[arg(long)]
    pub record: bool,

    /// With --record: rows per run at most (`run --record-max`).
    #[arg(
        long,
        default_value_t = 50_000,
        value_name = "ROWS",
        requires = "record"
    )]
    pub record_max: u64,

    /// Work folder with the prepared kernel tree and fio's disk image
    /// (bench/setup.sh).
    #[arg(long, default_value = "/var/tmp/scx_mlsched-work")]
    pub workdir: PathBuf,

    /// File or block device for fio [default: <workdir>/fio.data natively,
    /// the attached disk in the VM].
    #[arg(long)]
    pub fio_target: Option<PathBuf>,

    /// Run in the VM test bed even where this kernel has sched_ext.
    #[arg(long)]
    pub vm: bool,

    /// vCPUs of the VM test bed's guest.
    #[arg(long, default_value_t = 4)]
    pub vm_cpus: u32,

    /// Sockets of the guest: each has its own L3, so 2 gives a 2-LLC
    /// machine, where a move between LLCs is a real choice.
    #[arg(long, default_value_t = 1)]
    pub vm_sockets: u32,

    /// Memory of the guest (the compile runs in its tmpfs).
    #[arg(long, default_value = "6G")]
    pub vm_mem: String,

    /// Set by the host side: this process is the guest of a VM benchmark.
    #[arg(long, hide = true)]
    pub in_guest: bool,

    /// Set by the host side: append progress to this file instead of a bar.
    #[arg(long, hide = true)]
    pub progress_file: Option<PathBuf>,

    /// Set by the host side: where this runs (for the environment block).
    #[arg(long, hide = true)]
    pub place: Option<String>,

    /// Set by the host side: the repository's git revision.
    #[arg(long, hide = true)]
    pub git_revision: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchWhat {
    /// Time one tree decision in BPF (ns per decision), natively on any
    /// kernel with BPF: the walk alone, over recorded feature vectors, for
    /// the shipped model and a tree of the maximum depth.
    Inference(inference::InferenceOpts),
    /// Recompute a benchmark folder's summary, CSV, markdown and chart from
    /// its env.json and runs/*.json, and print the markdown.
    Report {
        /// The benchmark's output folder.
        dir: PathBuf,
    },
}

impl BenchOpts {
    pub fn scope(&self) -> Scope {
        if self.quick {
            Scope::Quick
        } else {
            self.scope
        }
    }

    /// The shapes asked for, each once, in the order given.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let mut v: Vec<Shape> = Vec::new();
        for s in &self.shapes {
            if !v.contains(s) {
                v.push(*s);
            }
        }
        if v.is_empty() {
            bail!("--shapes names no compile shape");
        }
        Ok(v)
    }

    /// Where `mlsched-ml-NAME` arms find NAME.json.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(|| {
            vm::find_repo().map_or_else(|_| PathBuf::from("model"), |r| r.join("model"))
        })
    }

    pub fn rounds(&self) -> u32 {
        if self.quick {
            2
        } else {
            self.rounds
        }
    }

    pub fn machine_name(&self, emulated: bool) -> String {
        self.machine.clone().unwrap_or_else(|| {
            if emulated {
                match self.vm_sockets {
                    0 | 1 => format!("vm-tcg-{}cpu", self.vm_cpus),
                    s => format!("vm-tcg-{}cpu-{s}llc", self.vm_cpus),
                }
            } else {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "native".into())
            }
        })
    }
}

pub fn main(opts: &BenchOpts) -> Result<()> {
    match &opts.what {
        Some(BenchWhat::Inference(o)) => return inference::run(o),
        Some(BenchWhat::Report { dir }) => {
            print!("{}", report::rewrite(dir)?);
            return Ok(());
        }
        None => {}
    }
    // The work folder is shared by the host, bench/setup.sh and the guest.
    let mut opts = opts.clone();
    opts.workdir = std::path::absolute(&opts.workdir)?;
    let opts = &opts;
    let has_ext = Path::new(preflight::SYSFS_SCHED_EXT).is_dir();
    let emulated = opts.in_guest || opts.vm || !has_ext;
    let out = match &opts.out {
        Some(o) => o.clone(),
        None => {
            let base = vm::find_repo().unwrap_or_else(|_| PathBuf::from("."));
            base.join("bench/results").join(format!(
                "{}-{}",
                chrono::Local::now().format("%Y-%m-%d"),
                opts.machine_name(emulated)
            ))
        }
    };
    if opts.in_guest || (has_ext && !opts.vm) {
        run_here(opts, &out, emulated)
    } else {
        vm::run(opts, &out)
    }
}

/// The compile's and fio's cgroups and the tracer counting per workload;
/// None, with a warning, where they cannot be set up (the runs then
/// record no per-workload counts, and the benchmark goes on).
fn trace_workloads(in_guest: bool) -> Option<(trace::Cgroups, trace::Tracer)> {
    let root = Path::new("/sys/fs/cgroup");
    if in_guest && !root.join("cgroup.controllers").is_file() {
        // The guest is ours: mount the v2 hierarchy if its init did not.
        let _ = std::process::Command::new("mount")
            .args(["-t", "cgroup2", "none"])
            .arg(root)
            .status();
    }
    let r = trace::Cgroups::create(root).and_then(|cg| {
        let t = trace::Tracer::load(&cg)?;
        Ok((cg, t))
    });
    r.map_err(|e| log::warn!("no per-workload counts: {e:#}"))
        .ok()
}

/// Run the plan on this machine (natively, or as the VM's guest).
fn run_here(opts: &BenchOpts, out: &Path, emulated: bool) -> Result<()> {
    if preflight::euid() != 0 {
        bail!("scx_mlsched bench must run as root (it attaches schedulers)");
    }
    let _bpf_stats = run::enable_bpf_stats();
    if !opts.in_guest {
        // Natively, prepare here; without the repository (an installed
        // binary), the work folder must have been prepared already.
        if let Ok(repo) = vm::find_repo() {
            vm::setup(&repo, opts)?;
        }
    }
    let scope = opts.scope().resolve(emulated);
    let rounds = opts.rounds();
    let shapes = opts.shapes()?;
    let exe = std::env::current_exe()?;
    let arms = plan::arms(&opts.schedulers, &exe, &opts.peers_dir, &opts.models_dir())?;
    let avail: Vec<&plan::Arm> = arms.iter().filter(|a| a.available()).collect();
    let unavailable: Vec<(String, String)> = arms
        .iter()
        .filter_map(|a| match &a.launch {
            Launch::Unavailable(why) => Some((a.name.clone(), why.clone())),
            _ => None,
        })
        .collect();
    for (a, why) in &unavailable {
        info!("{a}: not available: {why}");
    }

    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    let scratch = if opts.in_guest {
        PathBuf::from("/run/scx_mlsched-bench")
    } else {
        opts.workdir.join("scratch")
    };
    let fio_target = opts
        .fio_target
        .clone()
        .unwrap_or_else(|| opts.workdir.join("fio.data"));
    if opts.in_guest
        && !std::fs::metadata(&fio_target)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
    {
        bail!(
            "{} is not a block device: fio's disk is not attached",
            fio_target.display()
        );
    }
    let traced = trace_workloads(opts.in_guest);
    info!("preparing the kernel tree (scope {})", scope.name());
    let runner = run::Runner {
        scope,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        tree: run::Tree::prepare(scope, &opts.workdir, &scratch)?,
        fio_target,
        runs_dir: runs_dir.clone(),
        traced,
        record: opts.record.then_some(run::RecordRuns {
            max_rows: opts.record_max,
            seed: opts.seed,
        }),
    };

    let mut env = report::Environment::probe();
    env.machine = opts.machine_name(emulated);
    env.place = opts.place.clone().unwrap_or_else(|| "native".into());
    env.emulated = emulated;
    env.git_revision = opts.git_revision.clone().unwrap_or_else(|| {
        vm::find_repo().map_or_else(|_| "unknown".into(), |r| vm::git_revision(&r))
    });
    env.scope = scope.name().into();
    env.make_targets = scope.targets().iter().map(|s| s.to_string()).collect();
    env.shapes = shapes.clone();
    env.unit_targets = workload::targets(Shape::Units, scope, runner.cpus)
        .iter()
        .map(|s| s.to_string())
        .collect();
    env.rounds = rounds;
    env.seed = opts.seed;
    env.schedulers = arms.iter().map(|a| (a.name.clone(), a.version())).collect();

    // One shuffled order per shape (the make shape's is the order the
    // benchmark ran in before there were shapes); within a round the
    // shapes take turns going first.
    let orders: Vec<Vec<Vec<usize>>> = shapes
        .iter()
        .map(|&s| plan::schedule(avail.len(), rounds, opts.seed.wrapping_add(s as u64)))
        .collect();
    let total = orders.iter().flatten().map(Vec::len).sum::<usize>() as u64;
    let progress = match &opts.progress_file {
        Some(p) => Progress::File(p.clone()),
        None => Progress::Bar(progress::bar(total)),
    };
    let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
    let mut runs = Vec::new();
    let mut md = String::new();
    let mut done = 0;
    for round in 0..=rounds {
        for k in 0..shapes.len() {
            let si = (k + round as usize) % shapes.len();
            let shape = shapes[si];
            for (pos, &ai) in orders[si][round as usize].iter().enumerate() {
                let arm = avail[ai];
                progress.step(&Step {
                    done,
                    total,
                    msg: format!(
                        "{} · {} · {}",
                        if round == 0 {
                            "warm-up round".to_string()
                        } else {
                            format!("round {round}/{rounds}")
                        },
                        shape.name(),
                        arm.name
                    ),
                });
                let rec = runner.run(arm, shape, round, pos as u32);
                report::write_run(&runs_dir, &rec)?;
                runs.push(rec);
                done += 1;
            }
        }
        // Written after every round: an interrupted benchmark keeps its results.
        md = report::write_all(out, &env, &runs, &names, &unavailable)?;
    }
    progress.step(&Step {
        done,
        total,
        msg: "done".into(),
    });
    progress.finish();
    print!("{md}");
    if !opts.in_guest {
        println!("\nresults: {}", out.display());
    }
    if runs
        .iter()
        .filter(|r| r.round > 0 && r.arm == BASELINE)
        .all(|r| !r.ok)
    {
        bail!("every measured run of the default scheduler failed: nothing to compare with");
    }
    Ok(())
}
