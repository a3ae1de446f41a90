//! The scheduler side: the BPF scheduler's loader and its statistics, the
//! heuristic policy's userspace twin, the model in the BPF maps (two banks,
//! hot swap) and the linfa twin that checks the tree's sampled decisions,
//! the tree walk alone for replay and timing, the NUMA node pfn ranges that
//! the page-allocator tracepoint needs, the preflight checks that make
//! `run` fail with one clear line, the BPF-against-Rust selftest (and what
//! the verifier says of each program), and `run --record`, which writes
//! the scheduler's decisions as a dataset.

pub mod bpf_intf;
pub mod bpf_skel;
pub mod heuristic;
pub mod model_map;
pub mod numa;
pub mod preflight;
pub mod record;
pub mod scheduler;
pub mod selftest;
pub mod stats;
pub mod tree;
pub mod twin;
pub mod verifier;

/// Run a SEC("syscall") test program with `arg` as its context; the kernel
/// copies the context back, so `arg` holds the program's outputs after.
/// Fails if the program returns non-zero.
pub fn run_syscall<T>(prog: &libbpf_rs::ProgramMut<'_>, arg: &mut T) -> anyhow::Result<()> {
    use anyhow::Context;
    let input = libbpf_rs::ProgramInput {
        context_in: Some(unsafe {
            std::slice::from_raw_parts_mut(arg as *mut T as *mut u8, std::mem::size_of::<T>())
        }),
        ..Default::default()
    };
    let out = prog.test_run(input).context("BPF_PROG_RUN")?;
    if out.return_value != 0 {
        anyhow::bail!(
            "{} returned {}",
            prog.name().to_string_lossy(),
            out.return_value as i32
        );
    }
    Ok(())
}
