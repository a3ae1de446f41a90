//! The benchmark's plan: which schedulers (arms) run, how each is started,
//! and in what order.  Every round runs every available arm once, in an
//! order shuffled from the seed; round 0 is the warm-up and is discarded.
//! Interleaving arms within a round is what lets the paired ratios cancel
//! the slow drifts of an emulated machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::rng::XorShift64Star;

/// The arm every ratio is taken against.
pub const BASELINE: &str = "default";
/// The arm of the previous build, `peers_dir/scx_mlsched-prev`.
pub const PREV: &str = "mlsched-prev";

/// How an arm's scheduler is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Launch {
    /// No sched_ext scheduler: the kernel's own (EEVDF).
    Kernel,
    /// A program that attaches a sched_ext scheduler and detaches on SIGINT.
    Program { path: PathBuf, args: Vec<String> },
    /// The arm cannot run here; the report says why.
    Unavailable(String),
}

impl Launch {
    /// The model file of a `--model FILE` arm (`mlsched-ml-NAME`), which
    /// the VM run stages into the guest.
    pub fn model_file(&self) -> Option<&Path> {
        match self {
            Launch::Program { args, .. } => args
                .iter()
                .position(|a| a == "--model")
                .and_then(|i| args.get(i + 1))
                .map(Path::new),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub name: String,
    pub launch: Launch,
    /// This binary's own scheduler (`scx_mlsched run`): it takes `--record`.
    pub ours: bool,
}

impl Arm {
    pub fn available(&self) -> bool {
        !matches!(self.launch, Launch::Unavailable(_))
    }

    /// The version the arm reports (`--version`), or the kernel's for the
    /// default scheduler.
    pub fn version(&self) -> String {
        match &self.launch {
            Launch::Kernel => std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| format!("kernel {}", s.trim()))
                .unwrap_or_else(|_| "kernel (unknown)".into()),
            Launch::Program { path, .. } => Command::new(path)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .map(|l| l.trim().to_string())
                })
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "(no --version)".into()),
            Launch::Unavailable(why) => format!("not available: {why}"),
        }
    }
}

/// scx_mlsched's arms print their counters this often (seconds) into the
/// run's sched.log: wakeup waits, preemptions and steals explain a result.
/// One read of a per-CPU map per interval: no measurable cost.
const STATS_SECS: &str = "10";

/// Resolve arm names: `default`, `mlsched` (this binary's heuristic policy),
/// `mlsched-ml` (its learned tree, the embedded model), `mlsched-shadow`
/// (the heuristic, with the tree walked beside it), `mlsched-scanN`
/// (the heuristic with `--preempt-scan N`), `mlsched-nowakelocal` (with
/// `--no-wake-local`), `mlsched-requeuelocal` (with `--requeue-local`),
/// `mlsched-preminUS` (with `--preempt-min-us US`),
/// `mlsched-nodirect` (with `--no-direct-preempt`), `mlsched-exploreEPS`
/// (the heuristic with `--explore EPS`: logs for `train --target outcome`
/// when the benchmark records), `mlsched-ml-NAME` (`--policy ml` with the
/// model file `models_dir/NAME.json`), `mlsched-prev` (`peers_dir/scx_mlsched-prev`, a previous build, run as
/// `mlsched` is), and peers: `bpfland` or `scx_bpfland` is `scx_bpfland` in
/// `peers_dir`.
pub fn arms(
    names: &[String],
    self_exe: &Path,
    peers_dir: &Path,
    models_dir: &Path,
) -> Result<Vec<Arm>> {
    // `scx_mlsched run` with `opts`, printing its counters.
    let mlsched = |opts: &[&str]| Launch::Program {
        path: self_exe.to_path_buf(),
        args: ["run"]
            .iter()
            .chain(opts)
            .chain(&["--stats", STATS_SECS])
            .map(|a| a.to_string())
            .collect(),
    };
    let mut out: Vec<Arm> = Vec::new();
    for name in names {
        let name = name.trim().trim_start_matches("scx_").to_string();
        if name.is_empty() || out.iter().any(|a| a.name == name) {
            bail!("--schedulers: empty or repeated name '{name}'");
        }
        let launch = match name.as_str() {
            BASELINE => Launch::Kernel,
            "mlsched" => mlsched(&[]),
            "mlsched-ml" => mlsched(&["--policy", "ml"]),
            // A model file other than the embedded one (an outcome-trained
            // tree beside the shipped imitation, in one boot).
            // Named on purpose: a missing file is an error, not an arm
            // that silently does not run.
            ml if ml.starts_with("mlsched-ml-") => {
                let stem = &ml["mlsched-ml-".len()..];
                if stem.is_empty() || stem.contains('/') {
                    bail!("--schedulers: {ml}: NAME must be a file name in --models-dir");
                }
                let file = models_dir.join(format!("{stem}.json"));
                if !file.is_file() {
                    bail!(
                        "--schedulers: {ml}: {} is missing (--models-dir)",
                        file.display()
                    );
                }
                mlsched(&["--policy", "ml", "--model", &file.to_string_lossy()])
            }
            // The heuristic decides; the tree walks beside it at every
            // decision point, for its agreement per point under this load.
            "mlsched-shadow" => mlsched(&["--policy", "shadow"]),
            // The heuristic without preempting the waking CPU first.
            "mlsched-nowakelocal" => mlsched(&["--no-wake-local"]),
            // The heuristic with preempting wakees queued on the shared
            // DSQs and their CPU kicked (the behaviour before direct
            // preemption).
            "mlsched-nodirect" => mlsched(&["--no-direct-preempt"]),
            // The heuristic with cache-hot requeues kept on their CPU's
            // queue (issue #24's hypothesis H2).
            "mlsched-requeuelocal" => mlsched(&["--requeue-local"]),
            // The heuristic with another --preempt-scan, to weigh that
            // choice in one boot (mlsched-scan1: the previous CPU only;
            // mlsched-scan0: only the CPU running the wakeup).
            scan if scan
                .strip_prefix("mlsched-scan")
                .is_some_and(|n| n.parse::<u32>().is_ok()) =>
            {
                mlsched(&["--preempt-scan", &scan["mlsched-scan".len()..]])
            }
            // The heuristic with another --preempt-min-us (mlsched-premin250:
            // the minimum run before the fair class's was copied).
            m if m
                .strip_prefix("mlsched-premin")
                .is_some_and(|n| n.parse::<u64>().is_ok()) =>
            {
                mlsched(&["--preempt-min-us", &m["mlsched-premin".len()..]])
            }
            // The heuristic, exploring: with --record, the logs that
            // outcome training and offline evaluation need.
            e if e.starts_with("mlsched-explore") => {
                let eps = &e["mlsched-explore".len()..];
                crate::cli::parse_explore(eps)
                    .ok()
                    .filter(|&x| x > 0.0)
                    .with_context(|| {
                        format!("--schedulers: {e}: EPS must be a number in [1e-5, 0.5]")
                    })?;
                mlsched(&["--explore", eps])
            }
            // A previous build of scx_mlsched (its heuristic, with its
            // counters), to show in one boot what a change changed.
            PREV => {
                let path = peers_dir.join("scx_mlsched-prev");
                if path.is_file() {
                    Launch::Program {
                        path,
                        args: ["run", "--stats", STATS_SECS].map(String::from).to_vec(),
                    }
                } else {
                    Launch::Unavailable(format!(
                        "{} is missing: copy a build of the previous revision there",
                        path.display()
                    ))
                }
            }
            peer => {
                let path = peers_dir.join(format!("scx_{peer}"));
                if path.is_file() {
                    Launch::Program { path, args: vec![] }
                } else {
                    Launch::Unavailable(format!(
                        "{} is not installed (bench/setup.sh builds the pinned peers)",
                        path.display()
                    ))
                }
            }
        };
        let ours = matches!(&launch, Launch::Program { path, .. } if path == self_exe);
        out.push(Arm { name, launch, ours });
    }
    if !out.iter().any(|a| a.name == BASELINE) {
        bail!("--schedulers must include '{BASELINE}': every ratio is taken against it");
    }
    Ok(out)
}

/// The order of the runs: `rounds + 1` rounds (0 = warm-up), each a
/// shuffled list of indices into the available arms.
pub fn schedule(n_arms: usize, rounds: u32, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = XorShift64Star::from_seed(seed);
    (0..=rounds)
        .map(|_| {
            let mut order: Vec<usize> = (0..n_arms).collect();
            rng.shuffle(&mut order);
            order
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    #[test]
    fn arms_resolve_and_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scx_bpfland"), "").unwrap();
        let a = arms(
            &names("default,mlsched,mlsched-ml,scx_bpfland,rusty"),
            Path::new("/x/scx_mlsched"),
            dir.path(),
            dir.path(),
        )
        .unwrap();
        let n: Vec<&str> = a.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(n, ["default", "mlsched", "mlsched-ml", "bpfland", "rusty"]);
        assert_eq!(a[0].launch, Launch::Kernel);
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args == &["run", "--stats", "10"])
        );
        assert!(
            matches!(&a[2].launch, Launch::Program { args, .. } if args == &["run", "--policy", "ml", "--stats", "10"])
        );
        assert!(a[3].available());
        assert!(matches!(&a[4].launch, Launch::Unavailable(w) if w.contains("scx_rusty")));
        let ours: Vec<bool> = a.iter().map(|a| a.ours).collect();
        assert_eq!(ours, [false, true, true, false, false]);
        let p = Path::new("/x");
        let a = arms(&names("default,mlsched-scan1,mlsched-scan0"), p, p, p).unwrap();
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args == &["run", "--preempt-scan", "1", "--stats", "10"])
        );
        assert!(
            matches!(&a[2].launch, Launch::Program { args, .. } if args == &["run", "--preempt-scan", "0", "--stats", "10"])
        );
        let a = arms(&names("default,mlsched-premin250"), p, p, p).unwrap();
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args == &["run", "--preempt-min-us", "250", "--stats", "10"])
        );
        let a = arms(
            &names("default,mlsched-nowakelocal,mlsched-nodirect,mlsched-requeuelocal"),
            p,
            p,
            p,
        )
        .unwrap();
        assert!(
            matches!(&a[3].launch, Launch::Program { args, .. } if args == &["run", "--requeue-local", "--stats", "10"])
        );
        assert!(
            matches!(&a[2].launch, Launch::Program { args, .. } if args == &["run", "--no-direct-preempt", "--stats", "10"])
        );
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args == &["run", "--no-wake-local", "--stats", "10"])
        );
        // A previous build: from the peers folder, run as mlsched is.
        let a = arms(&names("default,mlsched-prev"), p, p, p).unwrap();
        assert!(matches!(&a[1].launch, Launch::Unavailable(w) if w.contains("previous revision")));
        std::fs::write(dir.path().join("scx_mlsched-prev"), "").unwrap();
        let a = arms(&names("default,mlsched-prev"), p, dir.path(), p).unwrap();
        assert!(
            matches!(&a[1].launch, Launch::Program { path, args } if args == &["run", "--stats", "10"] && path.ends_with("scx_mlsched-prev"))
        );
        assert!(!a[1].ours, "a previous build may not know --record");
        // Exploring, and a model file from the models folder.
        let a = arms(&names("default,mlsched-explore0.1"), p, p, p).unwrap();
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args == &["run", "--explore", "0.1", "--stats", "10"])
        );
        for bad in [
            "mlsched-explore0",
            "mlsched-explore0.7",
            "mlsched-explorex",
            "mlsched-explore",
        ] {
            assert!(
                arms(&names(&format!("default,{bad}")), p, p, p).is_err(),
                "{bad}"
            );
        }
        let e = arms(&names("default,mlsched-ml-outcome"), p, p, dir.path()).unwrap_err();
        assert!(e.to_string().contains("outcome.json is missing"), "{e}");
        assert!(arms(&names("default,mlsched-ml-../x"), p, p, dir.path()).is_err());
        std::fs::write(dir.path().join("outcome.json"), "").unwrap();
        let a = arms(&names("default,mlsched-ml-outcome"), p, p, dir.path()).unwrap();
        let want = dir.path().join("outcome.json");
        assert!(
            matches!(&a[1].launch, Launch::Program { args, .. } if args[..4] == ["run", "--policy", "ml", "--model"] && std::path::Path::new(&args[4]) == want)
        );
        assert_eq!(a[1].launch.model_file(), Some(want.as_path()));
        assert_eq!(a[0].launch.model_file(), None);
        // Not a count: a peer of that name, not installed.
        for bad in ["mlsched-scan-1", "mlsched-scanx", "mlsched-scan"] {
            let a = arms(&names(&format!("default,{bad}")), p, p, p).unwrap();
            assert!(!a[1].available(), "{bad}");
        }
    }

    #[test]
    fn baseline_is_required_and_names_unique() {
        let p = Path::new("/nonexistent");
        assert!(arms(&names("mlsched,bpfland"), p, p, p).is_err());
        assert!(arms(&names("default,mlsched,mlsched"), p, p, p).is_err());
        assert!(arms(&names("default,"), p, p, p).is_err());
    }

    #[test]
    fn every_round_is_a_permutation_and_orders_vary() {
        let s = schedule(4, 5, 1);
        assert_eq!(s.len(), 6);
        for r in &s {
            let mut v = r.clone();
            v.sort();
            assert_eq!(v, [0, 1, 2, 3]);
        }
        assert!(s.windows(2).any(|w| w[0] != w[1]), "{s:?}");
        assert_eq!(s, schedule(4, 5, 1));
        assert_ne!(s, schedule(4, 5, 0), "neighbouring seeds give one order");
    }
}
