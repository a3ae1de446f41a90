//! The command line: `scx_mlsched run` (the scheduler), `selftest` (BPF
//! decision against its Rust twin), and the subcommands of the learning
//! pipeline as they land.  Options follow the scx schedulers (scx_bpfland):
//! durations in microseconds, `--stats`/`--monitor`, `--exit-dump-len`,
//! `-v`, `--partial`, and libbpf's own options flattened in.

use clap::{Args, Parser, Subcommand};
use scx_utils::libbpf_clap_opts::LibbpfOpts;

/// scx_mlsched: a sched_ext scheduler whose task-migration rule is learned
/// from the kernel's own load balancer.
///
/// It keeps one dispatch queue per CPU and one per LLC, shares CPU time by
/// weighted virtual time, and lets idle CPUs steal work. Every migration it
/// makes passes one gate, can_migrate(task, src, dst), the sched_ext
/// counterpart of the kernel's can_migrate_task().
#[derive(Debug, Parser)]
#[command(name = "scx_mlsched", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
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
    /// Compare schedulers on a kernel compile beside fio and cyclictest, in
    /// shuffled rounds of one boot (natively, or in the VM test bed on a
    /// kernel without sched_ext); writes JSON, CSV, markdown and a chart.
    Bench(crate::bench::BenchOpts),
}

#[derive(Debug, Clone, Args)]
pub struct RunOpts {
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

    /// Print statistics every SECS seconds while running.
    #[arg(long, value_name = "SECS", conflicts_with = "monitor")]
    pub stats: Option<f64>,

    /// Print the statistics of an already running instance every SECS
    /// seconds; does not load a scheduler (no root needed beyond socket access).
    #[arg(long, value_name = "SECS")]
    pub monitor: Option<f64>,

    /// Length of the debug dump printed on an error exit (0: kernel default).
    #[arg(long, default_value_t = 0)]
    pub exit_dump_len: u32,

    /// Verbose output; repeat (-vv) for libbpf's debug messages.
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

#[derive(Debug, Clone, Args)]
pub struct SelftestOpts {
    /// Random feature vectors to check on top of every combination of the
    /// rule's inputs.
    #[arg(long, default_value_t = 2000)]
    pub random: usize,

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
        let Command::Run(o) = cli.cmd else {
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
        assert!(Cli::try_parse_from(["scx_mlsched"]).is_err());
        let cli = Cli::try_parse_from(["scx_mlsched", "run", "-vv", "--partial"]).unwrap();
        let Command::Run(o) = cli.cmd else {
            panic!("not run")
        };
        assert_eq!((o.verbose, o.partial), (2, true));
    }
}
