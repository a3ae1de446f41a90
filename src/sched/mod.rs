//! The scheduler side: the BPF scheduler's loader and its statistics, the
//! heuristic policy's userspace twin, the model in the BPF maps (two banks,
//! hot swap) and the linfa twin that checks the tree's sampled decisions,
//! the tree walk alone for replay and timing, the preflight checks that make
//! `run` fail with one clear line, and the BPF-against-Rust selftest.

pub mod bpf_intf;
pub mod bpf_skel;
pub mod heuristic;
pub mod model_map;
pub mod preflight;
pub mod scheduler;
pub mod selftest;
pub mod stats;
pub mod tree;
pub mod twin;
