//! The scheduler side: the BPF scheduler's loader and its statistics, the
//! migration policy's userspace twin, the preflight checks that make `run`
//! fail with one clear line, and the BPF-against-Rust selftest.

pub mod bpf_intf;
pub mod bpf_skel;
pub mod heuristic;
pub mod preflight;
pub mod scheduler;
pub mod selftest;
pub mod stats;
