//! Checks made before anything is loaded, so that a run that cannot work
//! fails with one clear line and changes nothing on the system.
//!
//! Order matters: "no sched_ext" is the answer even for root, and "not root"
//! comes before looking at the state of a scheduler we could not replace.
//! The sysfs root is a parameter so that the checks are unit-tested on
//! fake trees.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Where the kernel exposes sched_ext.
pub const SYSFS_SCHED_EXT: &str = "/sys/kernel/sched_ext";

/// What the sysfs tree says about sched_ext.
#[derive(Debug, PartialEq, Eq)]
pub enum ExtState {
    /// The directory is missing: the kernel is built without sched_ext.
    Unsupported,
    /// sched_ext exists and no BPF scheduler is attached.
    Disabled,
    /// A BPF scheduler is attached (or attaching/detaching): its ops name.
    Busy { state: String, ops: String },
}

pub fn read_state(root: &Path) -> ExtState {
    let Ok(state) = fs::read_to_string(root.join("state")) else {
        return ExtState::Unsupported;
    };
    let state = state.trim().to_string();
    if state == "disabled" {
        return ExtState::Disabled;
    }
    let ops = fs::read_to_string(root.join("root/ops"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "an unknown scheduler".into());
    ExtState::Busy { state, ops }
}

/// The kernel config files that may tell whether CONFIG_SCHED_CLASS_EXT is set.
fn kernel_config_hint() -> String {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let boot = PathBuf::from(format!("/boot/config-{}", release.trim()));
    match fs::read_to_string(&boot) {
        Ok(cfg) if cfg.lines().any(|l| l == "CONFIG_SCHED_CLASS_EXT=y") => {
            format!(
                "{} has CONFIG_SCHED_CLASS_EXT=y but sched_ext is not exposed",
                boot.display()
            )
        }
        Ok(_) => format!("{} has no CONFIG_SCHED_CLASS_EXT=y", boot.display()),
        Err(_) => "the kernel needs CONFIG_SCHED_CLASS_EXT=y".into(),
    }
}

/// Everything `run` needs before it touches the kernel.
pub fn check_can_run(root: &Path, euid: u32) -> Result<()> {
    match read_state(root) {
        ExtState::Unsupported => bail!(
            "this kernel has no sched_ext: {} is missing ({}); \
             `scripts/run` in the scx_mlsched repository runs it in a VM instead",
            root.display(),
            kernel_config_hint()
        ),
        _ if euid != 0 => bail!("scx_mlsched must run as root (it loads BPF programs)"),
        ExtState::Busy { state, ops } => bail!(
            "another sched_ext scheduler is already attached: {ops} (state {state}); \
             stop it first"
        ),
        ExtState::Disabled => Ok(()),
    }
}

/// The caller's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(state: Option<&str>, ops: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(s) = state {
            fs::write(d.path().join("state"), format!("{s}\n")).unwrap();
        }
        if let Some(o) = ops {
            fs::create_dir(d.path().join("root")).unwrap();
            fs::write(d.path().join("root/ops"), format!("{o}\n")).unwrap();
        }
        d
    }

    #[test]
    fn missing_dir_is_unsupported_and_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("sched_ext");
        assert_eq!(read_state(&missing), ExtState::Unsupported);
        let err = check_can_run(&missing, 0).unwrap_err().to_string();
        assert!(err.contains("no sched_ext"), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("CONFIG_SCHED_CLASS_EXT"), "{err}");
    }

    #[test]
    fn non_root_is_refused_when_supported() {
        let d = tree(Some("disabled"), None);
        let err = check_can_run(d.path(), 1000).unwrap_err().to_string();
        assert!(err.contains("root"), "{err}");
        assert!(check_can_run(d.path(), 0).is_ok());
    }

    #[test]
    fn attached_scheduler_is_named() {
        let d = tree(Some("enabled"), Some("bpfland_1.1.4"));
        assert_eq!(
            read_state(d.path()),
            ExtState::Busy {
                state: "enabled".into(),
                ops: "bpfland_1.1.4".into()
            }
        );
        let err = check_can_run(d.path(), 0).unwrap_err().to_string();
        assert!(err.contains("bpfland_1.1.4"), "{err}");
    }
}
