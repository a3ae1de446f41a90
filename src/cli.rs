//! The command line.  `scx_mlsched [run options]` (or `scx_mlsched run
//! [run options]`) runs the scheduler: bare, as scx.service and scx_loader
//! start scx schedulers (`$SCX_SCHEDULER $SCX_FLAGS`).  The subcommands are
//! the selftest (BPF decision against its Rust twin), the learning pipeline
//! (collect, train, inspect, export) and the benchmark.  Options follow the
//! scx schedulers (scx_bpfland): durations in microseconds,
//! `--stats`/`--monitor`, `--help-stats`, `--exit-dump-len`, `-v`,
//! `--partial`, libbpf's own options flattened in, and `--version` with the
//! full build version.

use std::sync::LazyLock;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scx_utils::libbpf_clap_opts::LibbpfOpts;

/// The full version, as scx schedulers print it: crate version, git
/// revision (from build.rs, with -dirty for uncommitted changes), target.
pub fn full_version() -> &'static str {
    static V: LazyLock<String> = LazyLock::new(|| {
        let semver = match option_env!("MLSCHED_GIT_REV") {
            Some(rev) if !rev.is_empty() => format!("{}-{rev}", env!("CARGO_PKG_VERSION")),
            _ => env!("CARGO_PKG_VERSION").to_string(),
        };
        scx_utils::build_id::full_version(&semver)
    });
    &V
}

/// scx_mlsched: a sched_ext scheduler whose task-migration rule is learned
/// from the kernel's own load balancer.
///
/// It keeps one dispatch queue per CPU and one per LLC, shares CPU time by
/// weighted virtual time, and lets idle CPUs steal work. The moves it makes
/// on its own (steals) pass one gate, can_migrate(task, src, dst), the
/// sched_ext counterpart of the kernel's can_migrate_task().
///
/// Without a subcommand it runs the scheduler with the options below, as
/// `scx_mlsched run` does.
#[derive(Debug, Parser)]
#[command(
    name = "scx_mlsched",
    version = full_version(),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Command>,

    #[command(flatten)]
    pub run: RunOpts,
}

impl Cli {
    /// The subcommand, with a bare invocation meaning `run`.
    pub fn into_command(self) -> Command {
        self.cmd.unwrap_or(Command::Run(self.run))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the scheduler and run it until SIGINT/SIGTERM (needs root and sched_ext).
    Run(RunOpts),
    /// Load the BPF program without attaching it and check its migration
    /// decision against the userspace twin on many feature vectors.
    Selftest(SelftestOpts),
    /// Record the kernel's own can_migrate_task() decisions into a dataset
    /// (root; runs while the default fair scheduler balances).
    Collect(crate::learn::collect::CollectOpts),
    /// Train a decision tree on datasets and write a model file.
    Train(crate::learn::train::TrainOpts),
    /// Print a model file: tree, feature importance, metrics (or Graphviz).
    Inspect(crate::learn::inspect::InspectOpts),
    /// Score a model on datasets (CSV or Parquet) without retraining:
    /// accuracy, precision, recall, F1, balanced accuracy, MCC, confusion
    /// matrix, and the rows where model and label differ.
    Eval(crate::learn::eval::EvalOpts),
    /// Compare the per-feature distributions of training datasets and
    /// serving datasets (`run --record`): flags features constant on one
    /// side only, and splits of the model that serving values never test.
    Skew(crate::learn::skew::SkewOpts),
    /// Compare schedulers on a kernel compile beside fio and cyclictest, in
    /// shuffled rounds of one boot (natively, or in the VM test bed on a
    /// kernel without sched_ext); writes JSON, CSV, markdown and a chart.
    Bench(crate::bench::BenchOpts),
    /// Convert a dataset (CSV, as `collect` writes it) to Parquet for
    /// fleet-scale tools (Polars, Spark); `train` reads either.
    Export(crate::learn::export::ExportOpts),
}

/// Who decides the migrations that pass the gate (steals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// The kernel's can_migrate_task() rule.
    Heuristic,
    /// The learned tree, behind hard guards (affinity, migration disabled,
    /// running, per-CPU kthread) that no model can override.
    Ml,
    /// Act on the heuristic; walk the tree beside it and count agreement.
    Shadow,
}

impl Policy {
    /// The BPF side's enum mlsched_policy.
    pub fn raw(self) -> u32 {
        use crate::sched::bpf_intf as c;
        match self {
            Policy::Heuristic => c::mlsched_policy_POLICY_HEURISTIC,
            Policy::Ml => c::mlsched_policy_POLICY_ML,
            Policy::Shadow => c::mlsched_policy_POLICY_SHADOW,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunOpts {
    /// Migration policy: `heuristic`, each decision point's own rule (the
    /// kernel's at steals); `ml`, the model decides at the points it
    /// declares (the shipped model, which imitates the kernel's rule,
    /// declares the steals) and the heuristic elsewhere; `shadow`, the
    /// heuristic decides and the tree is walked beside it, its agreement
    /// counted per point.
    #[arg(long, value_enum, default_value_t = Policy::Heuristic)]
    pub policy: Policy,

    /// Model file for `--policy ml|shadow` (default: the shipped model,
    /// embedded in the binary). SIGHUP reloads it without detaching. With
    /// `--policy heuristic` it is loaded but does not decide, and a missing
    /// or bad file is only a warning.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Reload the model when its file changes (checked every second).
    #[arg(long, requires = "model")]
    pub watch: bool,

    /// Send every Nth tree decision per CPU to the userspace twin, which
    /// checks it with linfa (0: none).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub sample_every: u64,

    /// Record the scheduler's own decisions (any policy) into this serving
    /// dataset: features, the verdict acted on (label), the decision point
    /// and the CPU pair, its propensity, and its outcome (the wait until the
    /// task ran, where, for how long, and whether it moved again or back
    /// within 10 ms).  At most one decision per task and scheduling
    /// episode, at a stage drawn uniformly (wakeup placement, enqueue,
    /// preempting wakee or a steal), and none while the task's previous
    /// window is open (counted as superseded; tasks that exit first, as
    /// censored). `scx_mlsched skew` compares it with training data.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// With --record: record every Nth decision of each CPU.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "record", value_parser = clap::value_parser!(u64).range(1..))]
    pub record_every: u64,

    /// With --record: stop writing after this many rows (later decisions
    /// are counted in the file's trailer, not written).
    #[arg(
        long,
        default_value_t = 200_000,
        value_name = "ROWS",
        requires = "record"
    )]
    pub record_max: u64,

    /// With --record: a `KEY=VALUE` line for the file's header (repeatable),
    /// e.g. the workload's seed, so that the dataset says how it was made.
    #[arg(long, value_name = "KEY=VALUE", requires = "record", value_parser = parse_meta)]
    pub record_meta: Vec<(String, String)>,

    /// Explore: with probability EPS a decision's action is a fair coin
    /// instead of the policy's (propensity 1 - EPS/2 for the policy's own
    /// action, EPS/2 for the other), so that `--record` logs support the
    /// offline estimates of `eval --policy-value` and `train --target
    /// outcome`.  Decisions a guard or a safety rule makes are never
    /// explored.  0 (the default) is off; at most 0.5.
    #[arg(long, default_value_t = 0.0, value_name = "EPS", value_parser = parse_explore)]
    pub explore: f64,

    /// Fall back to the heuristic when userspace's heartbeat (every 100-150
    /// ms) is older than this (userspace hung: the features it feeds and
    /// the twin are stale).
    #[arg(long, default_value_t = 1000, value_name = "MS", value_parser = clap::value_parser!(u64).range(500..))]
    pub feed_timeout_ms: u64,

    /// Scheduling slice in microseconds.
    #[arg(short = 's', long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub slice_us: u64,

    /// A task that ran less than this many microseconds ago is cache-hot and
    /// is not migrated (the kernel's sched_migration_cost, 500 us by default).
    #[arg(short = 'm', long, default_value_t = 500)]
    pub migration_cost_us: u64,

    /// Hot tasks may be stolen after this many consecutive failed steal
    /// attempts (the kernel's sd->cache_nice_tries).
    #[arg(long, default_value_t = 1)]
    pub cache_nice_tries: u64,

    /// CPUs of its LLC a queued wakeup may preempt besides the CPU running
    /// the wakeup: its previous CPU and the next ones; the one whose task
    /// is furthest ahead in vtime is preempted (1: the previous CPU only).
    /// By default none (0): in the benchmark's VM the remote preemptions'
    /// IPIs cost fio more than the waits they saved (see docs/benchmark.md).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub preempt_scan: u32,

    /// How long a running task runs before a waking task may preempt it,
    /// in microseconds (a younger run is preempted by a timer when it gets
    /// there); at most --slice-us.  The fair class's protected run (1500 us
    /// at 2 CPUs) compiled 4-15 % faster under emulation, but cost fio 9-15 %
    /// of its IOPS in every round (docs/benchmark.md, 2026-12-04): 250 us
    /// stays the default.
    #[arg(long, default_value_t = 250, value_name = "US", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub preempt_min_us: u64,

    /// Do not look first at the CPU that runs a wakeup.  By default a
    /// queued wakeup on its LLC's DSQ preempts the task of the CPU that
    /// runs the wakeup (the one that took an I/O completion's interrupt,
    /// or the waker's), if that CPU is in the LLC and allowed and its task
    /// far enough ahead, before the --preempt-scan CPUs: no cross-CPU IPI.
    /// With this option, only the --preempt-scan CPUs, furthest ahead
    /// first.
    #[arg(long)]
    pub no_wake_local: bool,

    /// Queue a wakee that preempts the task of the CPU running its wakeup
    /// on a DSQ as any other wakee.  By default it goes straight onto that
    /// CPU's local DSQ, at its head (SCX_ENQ_PREEMPT), so that the wakee is
    /// what the CPU runs next, not the lowest-vtime task of the queue.
    #[arg(long)]
    pub no_direct_preempt: bool,

    /// Keep a cache-hot task that is queued again without a wakeup
    /// (preempted, or its slice ended) on its own CPU's DSQ, as a cache-hot
    /// wakeup is kept, instead of the LLC's shared DSQ; an idle CPU steals
    /// it through the gate.  The fair class keeps a preempted task on its
    /// runqueue the same way.  Off by default until the benchmark shows it
    /// (issue #24's hypothesis H2; the arm `mlsched-requeuelocal`).
    #[arg(long)]
    pub requeue_local: bool,

    /// Print statistics every SECS seconds while running: one line per
    /// interval, saying how many tasks moved and by which path, who decided
    /// (the model, the heuristic) and how, the queued wakeups' mean wait,
    /// and anything abnormal.
    #[arg(long, value_name = "SECS", conflicts_with = "monitor")]
    pub stats: Option<f64>,

    /// With --stats or --monitor, print every counter (as -v does).
    #[arg(long)]
    pub stats_verbose: bool,

    /// With --stats or --monitor, print each interval's counters as one
    /// JSON object per line (the scx_stats server's reply), for tools.
    #[arg(long, conflicts_with = "stats_verbose")]
    pub stats_json: bool,

    /// Print the statistics of an already running instance every SECS
    /// seconds; does not load a scheduler (no root needed beyond socket access).
    #[arg(long, value_name = "SECS")]
    pub monitor: Option<f64>,

    /// Describe every statistic (scx_stats metadata) and exit.
    #[arg(long)]
    pub help_stats: bool,

    /// Length of the debug dump printed on an error exit (0: kernel default).
    #[arg(long, default_value_t = 0)]
    pub exit_dump_len: u32,

    /// Verbose output, every counter in --stats; repeat (-vv) for libbpf's
    /// debug messages.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Schedule only tasks that chose SCHED_EXT; others stay with the fair class.
    #[arg(long)]
    pub partial: bool,

    /// Test hook: make the BPF side exit with an error after this many ms.
    #[arg(long, hide = true, default_value_t = 0)]
    pub debug_error_after_ms: u64,

    #[command(flatten, next_help_heading = "Libbpf Options")]
    pub libbpf: LibbpfOpts,
}

impl RunOpts {
    /// The run before a wakeup may preempt, in ns: at most the slice.
    pub fn preempt_min_ns(&self) -> u64 {
        self.preempt_min_us.min(self.slice_us) * 1000
    }

    /// `--explore` as BPF compares it with bpf_get_prandom_u32(): EPS * 2^32.
    pub fn explore_thresh(&self) -> u32 {
        (self.explore * 4_294_967_296.0)
            .round()
            .min(u32::MAX as f64) as u32
    }

    /// `--explore` in millionths (enum mlsched_consts PROP_ONE).
    pub fn explore_ppm(&self) -> u32 {
        (self.explore * 1e6).round() as u32
    }
}

#[derive(Debug, Clone, Args)]
pub struct SelftestOpts {
    /// Random feature vectors to check on top of every combination of the
    /// rule's inputs.
    #[arg(long, default_value_t = 2000)]
    pub random: usize,

    /// Instead: replay every row of these datasets through the BPF tree walk
    /// (bpf/tree.bpf.c, no sched_ext needed) and require linfa's prediction
    /// on each (model: --model, or the embedded one).
    #[arg(long, num_args = 1.., value_name = "DATASET")]
    pub replay: Vec<PathBuf>,

    /// Instead: check serving datasets that `run --record` wrote under the
    /// heuristic policy: at every decision point, each recorded verdict
    /// must equal the point's heuristic (no sched_ext needed).
    #[arg(long, num_args = 1.., value_name = "DATASET", conflicts_with = "replay")]
    pub check_record: Vec<PathBuf>,

    /// Instead: check datasets that `run --explore EPS --record` wrote
    /// (give the same --explore EPS): guarded rows never explored, with
    /// propensity 1; explorable rows with propensity 1 - EPS/2 for the
    /// policy's own action and EPS/2 for the other; unexplored rows act as
    /// the policy; some rows explored (no sched_ext needed).
    #[arg(long, num_args = 1.., value_name = "DATASET", conflicts_with_all = ["replay", "check_record"])]
    pub check_explore: Vec<PathBuf>,

    /// Also print what the BPF verifier said about each program of the
    /// scheduler: instructions processed and stack depth per function.
    #[arg(long, conflicts_with_all = ["replay", "check_record"])]
    pub verifier_stats: bool,

    #[command(flatten)]
    pub run: RunOpts,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults_and_conflicts() {
        let cli = Cli::try_parse_from(["scx_mlsched", "run"]).unwrap();
        let Command::Run(o) = cli.into_command() else {
            panic!("not run")
        };
        assert_eq!(
            (o.slice_us, o.migration_cost_us, o.verbose, o.partial),
            (3000, 500, 0, false)
        );
        assert!(
            Cli::try_parse_from(["scx_mlsched", "run", "--stats", "1", "--monitor", "1"]).is_err()
        );
        assert!(Cli::try_parse_from(["scx_mlsched", "run", "--slice-us", "0"]).is_err());
        let cli = Cli::try_parse_from(["scx_mlsched", "run", "-vv", "--partial"]).unwrap();
        let Command::Run(o) = cli.into_command() else {
            panic!("not run")
        };
        assert_eq!((o.verbose, o.partial), (2, true));
    }

    /// `scx_mlsched run ARGS...` parsed.
    fn run(args: &[&str]) -> Result<RunOpts, clap::Error> {
        let argv = ["scx_mlsched", "run"]
            .into_iter()
            .chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| match c.into_command() {
            Command::Run(o) => o,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn policy_model_and_watch() {
        let o = run(&[]).unwrap();
        assert_eq!(
            (o.policy, o.model, o.watch),
            (Policy::Heuristic, None, false)
        );
        assert_eq!((o.sample_every, o.feed_timeout_ms), (64, 1000));
        let o = run(&["--policy", "ml", "--model", "m.json", "--watch"]).unwrap();
        assert_eq!(o.policy, Policy::Ml);
        assert_eq!(o.model.as_deref(), Some(std::path::Path::new("m.json")));
        assert_eq!(run(&["--policy", "shadow"]).unwrap().policy, Policy::Shadow);
        assert!(run(&["--policy", "tree"]).is_err());
        assert!(run(&["--watch"]).is_err(), "--watch without --model");
        assert!(run(&["--feed-timeout-ms", "100"]).is_err());
        use crate::sched::bpf_intf as c;
        assert_eq!(Policy::Ml.raw(), c::mlsched_policy_POLICY_ML);
        assert_eq!(Policy::Shadow.raw(), c::mlsched_policy_POLICY_SHADOW);
        assert_eq!(Policy::Heuristic.raw(), c::mlsched_policy_POLICY_HEURISTIC);
    }

    /// --explore is a probability in [0, 0.5], as BPF's threshold and in
    /// millionths; --record-meta is KEY=VALUE, with --record only.
    #[test]
    fn explore_and_record_meta() {
        let o = run(&[]).unwrap();
        assert_eq!((o.explore_thresh(), o.explore_ppm()), (0, 0));
        let o = run(&["--explore", "0.1"]).unwrap();
        assert_eq!(o.explore_ppm(), 100_000);
        assert_eq!(o.explore_thresh(), 429_496_730);
        let o = run(&["--explore", "0.5"]).unwrap();
        assert_eq!(o.explore_thresh(), 1 << 31);
        for bad in ["0.6", "-0.1", "x", "NaN", "0.000001"] {
            assert!(run(&["--explore", bad]).is_err(), "{bad}");
        }
        let o = run(&[
            "--record",
            "r.csv",
            "--record-meta",
            "seed=7",
            "--record-meta",
            "workload = kcompile",
        ])
        .unwrap();
        assert_eq!(
            o.record_meta,
            vec![
                ("seed".into(), "7".into()),
                ("workload".into(), "kcompile".into())
            ]
        );
        assert!(
            run(&["--record-meta", "seed=7"]).is_err(),
            "without --record"
        );
        assert!(run(&["--record", "r.csv", "--record-meta", "seed"]).is_err());
        assert!(run(&["--record", "r.csv", "--record-meta", "a:b=1"]).is_err());
    }

    /// scx.service runs `$SCX_SCHEDULER $SCX_FLAGS`: bare options mean `run`.
    #[test]
    fn bare_invocation_is_run() {
        let bare = |args: &[&str]| {
            let argv = std::iter::once("scx_mlsched").chain(args.iter().copied());
            match Cli::try_parse_from(argv).map(Cli::into_command) {
                Ok(Command::Run(o)) => Ok(o),
                Ok(other) => panic!("{args:?} parsed as {other:?}"),
                Err(e) => Err(e),
            }
        };
        let o = bare(&[]).unwrap();
        assert_eq!((o.slice_us, o.stats, o.partial), (3000, None, false));
        let o = bare(&["--slice-us", "5000", "--partial", "-v"]).unwrap();
        assert_eq!((o.slice_us, o.partial, o.verbose), (5000, true, 1));
        assert_eq!(bare(&["--monitor", "2"]).unwrap().monitor, Some(2.0));
        // The minimum run before a wakeup preemption, never above the slice.
        assert_eq!(bare(&[]).unwrap().preempt_min_ns(), 250_000);
        assert_eq!(
            bare(&["--preempt-min-us", "1500"])
                .unwrap()
                .preempt_min_ns(),
            1_500_000
        );
        assert_eq!(
            bare(&["--preempt-min-us", "9000"])
                .unwrap()
                .preempt_min_ns(),
            3_000_000
        );
        assert!(
            bare(&["--monitor", "2", "--stats-json"])
                .unwrap()
                .stats_json
        );
        assert!(bare(&["--stats", "1", "--stats-json", "--stats-verbose"]).is_err());
        assert!(bare(&["--help-stats"]).unwrap().help_stats);
        // Run options before a subcommand are refused, not silently dropped.
        assert!(
            Cli::try_parse_from(["scx_mlsched", "--slice-us", "5000", "inspect", "m.json"])
                .is_err()
        );
        // Subcommands stay as they are.
        let cli = Cli::try_parse_from(["scx_mlsched", "inspect", "m.json"]).unwrap();
        assert!(matches!(cli.into_command(), Command::Inspect(_)));
    }

    #[test]
    fn version_is_the_full_build_version() {
        let v = full_version();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        // scx_utils appends the target triple.
        assert!(v.contains("linux"), "{v}");
        let err = Cli::try_parse_from(["scx_mlsched", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(v), "{err}");
    }
}

/// `--explore EPS`: a probability in [0, 0.5].
pub(crate) fn parse_explore(v: &str) -> Result<f64, String> {
    let eps: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    if eps > 0.0 && eps < 1e-5 {
        return Err(format!(
            "{eps} is below 1e-5: the other action's propensity (EPS/2) would round to 0 ppm"
        ));
    }
    if !(0.0..=0.5).contains(&eps) {
        return Err(format!(
            "{eps} is outside [0, 0.5]: above 0.5 the coin would decide more often than the policy"
        ));
    }
    Ok(eps)
}

/// `--record-meta KEY=VALUE`.
fn parse_meta(v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.trim().is_empty() && !k.contains(':') && !v.contains('\n') => {
            Ok((k.trim().to_string(), val.trim().to_string()))
        }
        _ => Err(format!("{v:?} is not KEY=VALUE (a key without ':')")),
    }
}
