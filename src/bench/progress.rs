//! Progress of a benchmark: run k of n, its round and arm, and the time
//! left.  Natively the runner drives an indicatif bar.  Inside the VM the
//! guest's console is only read when the guest ends, so the runner appends
//! one JSON line per step to a file in the shared folder, and the host side
//! follows that file with the same bar.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Runs finished.
    pub done: u64,
    pub total: u64,
    /// What runs now, e.g. "round 2/5 · bpfland".
    pub msg: String,
}

pub fn bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} run {pos}/{len} · {msg} · {eta} left",
        )
        .expect("valid progress template"),
    );
    pb.enable_steady_tick(Duration::from_millis(500));
    pb
}

fn show(pb: &ProgressBar, s: &Step) {
    pb.set_length(s.total);
    pb.set_position(s.done);
    pb.set_message(s.msg.clone());
}

pub enum Progress {
    Bar(ProgressBar),
    /// JSON lines for the host to follow.
    File(PathBuf),
}

impl Progress {
    pub fn step(&self, s: &Step) {
        match self {
            Progress::Bar(pb) => show(pb, s),
            Progress::File(p) => {
                // Progress is best effort: a failed write loses a bar update only.
                if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(p) {
                    let _ = writeln!(f, "{}", serde_json::to_string(s).unwrap_or_default());
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(pb) = self {
            pb.finish_and_clear();
        }
    }
}

/// The last complete step written to `path`.
pub fn last_step(path: &Path) -> Option<Step> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// Follow `path` with a bar until `stop` is set (host side of a VM run).
pub fn follow(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let pb = bar(1);
        pb.set_message("booting the VM test bed");
        while !stop.load(Ordering::Relaxed) {
            if let Some(s) = last_step(&path) {
                show(&pb, &s);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        pb.finish_and_clear();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_steps_are_read_back_last_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("progress.jsonl");
        assert_eq!(last_step(&p), None);
        let prog = Progress::File(p.clone());
        for done in 0..3 {
            prog.step(&Step {
                done,
                total: 9,
                msg: format!("run {done}"),
            });
        }
        // A line cut short by a guest that died mid-write is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"done\": 3, \"tot")
            .unwrap();
        let s = last_step(&p).unwrap();
        assert_eq!((s.done, s.total, s.msg.as_str()), (2, 9, "run 2"));
    }
}
