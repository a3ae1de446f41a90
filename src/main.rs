//! scx_mlsched entry point: parses the command line, sets up logging and
//! signals, and runs the subcommand.  `run` follows the scx schedulers'
//! shape: preflight checks, then init/run in a loop that restarts while the
//! exit asks for it (UserExitInfo::should_restart, e.g. CPU hotplug).

mod bench;
mod cli;
mod learn;
mod rng;
mod sched;

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use log::{info, warn};

use cli::{Cli, Command, RunOpts};
use learn::{collect, inspect, train};
use sched::record::Recorder;
use sched::{preflight, scheduler, selftest, stats};

fn init_logging(verbose: u8) -> Result<()> {
    let level = if verbose > 0 {
        simplelog::LevelFilter::Debug
    } else {
        simplelog::LevelFilter::Info
    };
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_level(simplelog::LevelFilter::Error)
        .set_location_level(simplelog::LevelFilter::Off)
        .set_target_level(simplelog::LevelFilter::Off)
        .set_thread_level(simplelog::LevelFilter::Off)
        .build();
    simplelog::TermLogger::init(
        level,
        cfg,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Auto,
    )?;
    Ok(())
}

/// SIGINT and SIGTERM set the flag.  (Not SIGHUP: it reloads the model.)
fn shutdown_flag() -> Result<Arc<AtomicBool>> {
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(shutdown)
}

/// `own`: the stats are this process's (`--stats`), not another's (`--monitor`).
fn spawn_monitor(
    intv: f64,
    shutdown: Arc<AtomicBool>,
    fmt: stats::Format,
    own: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Err(e) = stats::monitor(Duration::from_secs_f64(intv), shutdown, fmt, own) {
            warn!("stats monitor stopped: {e:#}");
        }
    })
}

fn cmd_run(opts: &RunOpts) -> Result<()> {
    if opts.help_stats {
        stats::server_data().describe_meta(&mut std::io::stdout(), None)?;
        return Ok(());
    }
    let shutdown = shutdown_flag()?;
    // JSON with --stats-json; every counter with --stats-verbose or -v;
    // else the readable line.
    let fmt = if opts.stats_json {
        stats::Format::Json
    } else if opts.stats_verbose || opts.verbose > 0 {
        stats::Format::Verbose
    } else {
        stats::Format::Line
    };
    if let Some(intv) = opts.monitor {
        let _ = spawn_monitor(intv, shutdown, fmt, false).join();
        return Ok(());
    }
    preflight::check_can_run(Path::new(preflight::SYSFS_SCHED_EXT), preflight::euid())?;
    if let Some(intv) = opts.stats {
        spawn_monitor(intv, shutdown.clone(), fmt, true);
    }
    // SIGHUP reloads the model (run --policy ml|shadow).
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the SIGHUP handler")?;
    // Created before anything is loaded (an unwritable path fails `run`
    // with the system unchanged), kept across restarts, closed at the end,
    // also when the scheduler was ejected.
    if opts.explore > 0.0 && opts.record.is_none() {
        warn!(
            "--explore {} without --record: decisions are randomised, but no log is kept to learn from",
            opts.explore
        );
    }
    let mut recorder = opts
        .record
        .as_deref()
        .map(|path| Recorder::for_run(path, opts))
        .transpose()?;
    let mut open_object = MaybeUninit::uninit();
    let res = loop {
        let mut sched = match scheduler::Scheduler::init(opts, &mut open_object, &mut recorder) {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let res = sched.run(shutdown.clone(), reload.clone());
        recorder = sched.take_recorder();
        match res {
            Ok(uei) if uei.should_restart() => {
                info!("the kernel asked for a restart; re-initialising")
            }
            Ok(_) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Some(r) = recorder {
        // A failed run's own error comes first; the file's is then only said.
        match (r.finish(), &res) {
            (Err(e), Ok(())) => return Err(e),
            (Err(e), Err(_)) => warn!("closing the --record file: {e:#}"),
            (Ok(_), _) => {}
        }
    }
    res
}

/// Errors end as one line (the anyhow chain), never a backtrace.  The exit
/// status is 0 on success and on SIGINT/SIGTERM, `EXIT_EJECTED` (86) when the
/// kernel ejected the scheduler (error exit: a stall, a BPF error), so that a
/// service can stop instead of restarting, and 1 for every other failure.
fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scx_mlsched: error: {e:#}");
            if e.downcast_ref::<scheduler::Ejected>().is_some() {
                std::process::ExitCode::from(scheduler::EXIT_EJECTED)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn real_main() -> Result<()> {
    match &Cli::parse().into_command() {
        Command::Run(o) => {
            init_logging(o.verbose)?;
            cmd_run(o)
        }
        Command::Selftest(o) if !o.replay.is_empty() => {
            init_logging(o.run.verbose)?;
            let source = sched::model_map::ModelSource::from_opt(o.run.model.as_deref());
            for line in selftest::replay(&source.load()?, &o.replay)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Selftest(o) if !o.check_explore.is_empty() => {
            init_logging(o.run.verbose)?;
            for line in selftest::check_explore(&o.check_explore, o.run.explore)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Selftest(o) if !o.check_record.is_empty() => {
            init_logging(o.run.verbose)?;
            for line in selftest::check_record(&o.check_record)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Selftest(o) => {
            init_logging(o.run.verbose)?;
            preflight::check_can_run(Path::new(preflight::SYSFS_SCHED_EXT), preflight::euid())?;
            let vectors = selftest::vectors(o.random, 0x5eed);
            let (n, stats) = scheduler::selftest(&o.run, &vectors, o.verifier_stats)?;
            for s in &stats {
                println!("{}", s.line());
            }
            if o.verifier_stats && stats.is_empty() {
                anyhow::bail!("--verifier-stats: libbpf passed on no verifier log");
            }
            println!(
                "selftest: BPF can_migrate_decide (at every decision point) and balance_failed_next agree with their Rust twins on {n} cases"
            );
            Ok(())
        }
        Command::Collect(o) => {
            init_logging(0)?;
            collect::run(o, shutdown_flag()?)
        }
        Command::Train(o) => {
            init_logging(0)?;
            train::run(o).map(|_| ())
        }
        Command::Inspect(o) => inspect::run(o),
        Command::Eval(o) => learn::eval::run(o),
        Command::Skew(o) => learn::skew::run(o),
        Command::Bench(o) => {
            init_logging(0)?;
            bench::main(o)
        }
        Command::Export(o) => learn::export::run(o),
    }
}
