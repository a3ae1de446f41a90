//! The learning pipeline, in data-flow order: the feature schema (shared
//! with BPF), the kprobe collector that records the kernel's decisions, the
//! dataset format (CSV, and Parquet for fleets), the trainer, the model
//! format it writes, the metrics it reports, `inspect` and `eval`, which
//! read a model back, and `skew`, which compares training data with what
//! the scheduler records in service (`run --record`).  `outcome` learns
//! from what followed the scheduler's own decisions instead (`run
//! --explore --record`): costs, offline policy estimates, and the
//! cost-sensitive tree of `train --target outcome`.

pub mod collect;
pub mod dataset;
pub mod eval;
pub mod export;
pub mod features;
pub mod inspect;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod skew;
pub mod train;
