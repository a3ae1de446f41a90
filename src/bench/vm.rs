//! Host side of a benchmark on a kernel without sched_ext: prepare the
//! workloads and peers (bench/setup.sh), stage this binary and the peers
//! where the guest sees them, boot ONE guest of the VM test bed with fio's
//! disk image attached, and run this same binary inside it with
//! `--in-guest`.  All arms and rounds run in that one boot, so the paired
//! ratios compare like with like.  The guest's progress file drives the
//! host's bar; its output folder is copied to the requested one at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use log::info;

use super::plan::{self, Launch};
use super::workload::Scope;
use super::BenchOpts;

/// Staging folder: the guest sees /var/tmp (writable), not /var/cache.
const STAGE: &str = "/var/tmp/scx_mlsched-bench";

/// The repository (holding vm/testbed.sh): the working directory or one of
/// its parents, else the one this binary was built in (target/*/scx_mlsched).
pub fn find_repo() -> Result<PathBuf> {
    let is_repo =
        |d: &Path| d.join("vm/testbed.sh").is_file() && d.join("bench/setup.sh").is_file();
    let cwd = std::env::current_dir()?;
    let exe = std::env::current_exe()?;
    cwd.ancestors()
        .chain(exe.ancestors())
        .find(|d| is_repo(d))
        .map(Path::to_path_buf)
        .context(
            "this kernel has no sched_ext, and the VM test bed (vm/testbed.sh) was not found: \
             run `scx_mlsched bench` from the scx_mlsched repository",
        )
}

/// The git revision of the repository, with "-dirty" for uncommitted changes.
pub fn git_revision(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{rev}{}", if dirty { "-dirty" } else { "" })
        }
        None => "unknown".into(),
    }
}

fn host_cpu() -> String {
    let host = super::report::Environment::probe();
    format!("a {}-CPU host ({})", host.cpus, host.cpu_model)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), &dst)
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// bench/setup.sh: tools, the kernel tree and fio's disk in the work
/// folder, and the pinned peers if any peer arm is asked for.
pub fn setup(repo: &Path, opts: &BenchOpts) -> Result<()> {
    // scx_mlsched's own arms (mlsched, mlsched-ml, mlsched-prev, ...) need
    // no peer built.
    let wants_peers = opts.schedulers.iter().any(|s| {
        let s = s.trim_start_matches("scx_");
        s != "default" && !s.starts_with("mlsched")
    });
    info!(
        "preparing workloads{} (bench/setup.sh)",
        if wants_peers { " and peers" } else { "" }
    );
    let mut setup = Command::new("bash");
    setup
        .arg("bench/setup.sh")
        .current_dir(repo)
        .env("WORKDIR", &opts.workdir);
    if !wants_peers {
        setup.arg("--no-peers");
    }
    if !setup.status().context("running bench/setup.sh")?.success() {
        bail!("bench/setup.sh failed");
    }
    Ok(())
}

pub fn run(opts: &BenchOpts, out: &Path) -> Result<()> {
    let repo = find_repo()?;
    if crate::sched::preflight::euid() != 0 {
        bail!("scx_mlsched bench must run as root (it installs the workloads and boots the VM test bed)");
    }
    let exe = std::env::current_exe()?;
    let models = opts.models_dir();
    plan::arms(&opts.schedulers, &exe, &opts.peers_dir, &models)?;
    setup(&repo, opts)?;
    // Resolved after setup, which may just have built the peers.
    let arms = plan::arms(&opts.schedulers, &exe, &opts.peers_dir, &models)?;

    let stage = PathBuf::from(STAGE);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("peers"))?;
    std::fs::create_dir_all(stage.join("models"))?;
    std::fs::copy(&exe, stage.join("scx_mlsched")).context("staging scx_mlsched")?;
    for a in &arms {
        if let Launch::Program { path, .. } = &a.launch {
            if path != &exe {
                std::fs::copy(path, stage.join("peers").join(path.file_name().unwrap()))?;
            }
            // The guest resolves the arm again in its own models folder.
            if let Some(file) = a.launch.model_file() {
                let name = file.file_name().context("a model file without a name")?;
                std::fs::copy(file, stage.join("models").join(name))
                    .with_context(|| format!("staging the model {}", file.display()))?;
            }
        }
    }
    let guest_out = stage.join("out");
    let progress = stage.join("progress.jsonl");

    let scope = opts.scope().resolve(true);
    let runs = (opts.rounds() as u64 + 1)
        * arms.iter().filter(|a| a.available()).count() as u64
        * opts.shapes()?.len() as u64;
    let per_run = if scope == Scope::Quick { 90 } else { 400 };
    let timeout = runs * per_run + 1200;
    let place = format!(
        "VM test bed (virtme-ng, stock Debian kernel, {}), {} vCPUs{} on {}",
        if std::env::var("SCX_MLSCHED_VM_KVM").as_deref() == Ok("1") {
            "KVM requested, TCG if it failed"
        } else {
            "TCG software emulation"
        },
        opts.vm_cpus,
        if opts.vm_sockets > 1 {
            format!(" in {} sockets (an LLC each)", opts.vm_sockets)
        } else {
            String::new()
        },
        host_cpu()
    );
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut guest = vec![
        q(&stage.join("scx_mlsched").to_string_lossy()),
        "bench --in-guest".into(),
        format!("--schedulers {}", q(&opts.schedulers.join(","))),
        format!("--rounds {}", opts.rounds()),
        format!("--scope {}", scope.name()),
        format!(
            "--shapes {}",
            opts.shapes()?
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        format!("--seed {}", opts.seed),
        format!("--peers-dir {}", q(&stage.join("peers").to_string_lossy())),
        format!(
            "--models-dir {}",
            q(&stage.join("models").to_string_lossy())
        ),
        format!("--workdir {}", q(&opts.workdir.to_string_lossy())),
        "--fio-target /dev/vda".into(),
        format!("--out {}", q(&guest_out.to_string_lossy())),
        format!("--progress-file {}", q(&progress.to_string_lossy())),
        format!("--place {}", q(&place)),
        format!("--git-revision {}", q(&git_revision(&repo))),
        format!("--machine {}", q(&opts.machine_name(true))),
    ];
    if opts.quick {
        guest.push("--quick".into());
    }
    if opts.record {
        guest.push(format!("--record --record-max {}", opts.record_max));
    }
    info!(
        "booting the VM test bed ({} vCPUs, {}): {runs} runs, at most {} min",
        opts.vm_cpus,
        opts.vm_mem,
        timeout / 60
    );
    let stop = Arc::new(AtomicBool::new(false));
    let bar = super::progress::follow(progress, stop.clone());
    let status = Command::new("bash")
        .arg("vm/testbed.sh")
        .arg("run")
        .args(["-c", &opts.vm_cpus.to_string(), "-m", &opts.vm_mem])
        .args(["-s", &opts.vm_sockets.max(1).to_string()])
        .args(["-t", &timeout.to_string()])
        .arg("-d")
        .arg(opts.workdir.join("fio.img"))
        .arg("--")
        .arg(guest.join(" "))
        .current_dir(&repo)
        .status()
        .context("running vm/testbed.sh")?;
    stop.store(true, Ordering::Relaxed);
    let _ = bar.join();
    if guest_out.join("summary.md").is_file() {
        copy_dir(&guest_out, out)?;
        println!("results: {}", out.display());
    }
    if !status.success() {
        bail!(
            "the benchmark in the VM test bed failed ({status}); guest kernel log: \
             /var/cache/scx_mlsched/last-guest.log"
        );
    }
    if !out.join("summary.md").is_file() {
        bail!("the guest wrote no results");
    }
    Ok(())
}
