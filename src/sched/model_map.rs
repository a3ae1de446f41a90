//! The model in the BPF maps: where `run --model` and hot swaps put the tree.
//!
//! A model is validated by the loader (src/learn/model.rs) before any byte of
//! it reaches BPF, then written as a `struct model_bank` into the bank of
//! the `model_banks` array map that BPF is not walking; only then does the
//! `model_active` flag in .bss flip to it (the two-bank scheme of scx_rusty's
//! tuner).  Each load gets the next generation, which tags the decisions BPF
//! samples, so that the twin checks each against the tree that made it.
//! A bad new model is refused here and the one in force stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use crate::learn::model::Model;
use crate::sched::bpf_intf as c;

/// The shipped model, embedded: a system service runs with `/` as its
/// working directory, so the default cannot be a relative path.
pub const EMBEDDED_JSON: &str = include_str!("../../model/default.json");

/// Between two swaps: BPF may still be walking the bank a swap left (a walk
/// takes well under a microsecond natively, and tens under emulation), and
/// the next swap writes into that bank.  This interval is what keeps a walk
/// from reading a bank being written; the BPF side does not re-check.
const MIN_SWAP_INTERVAL: Duration = Duration::from_millis(50);

// Children are u16 in struct model_node; validate() bounds them by MAX_NODES.
const _: () = assert!(crate::learn::model::MAX_NODES <= u16::MAX as usize + 1);

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Embedded,
    File(PathBuf),
}

impl ModelSource {
    pub fn from_opt(path: Option<&Path>) -> Self {
        path.map_or(Self::Embedded, |p| Self::File(p.to_path_buf()))
    }

    pub fn load(&self) -> Result<Model> {
        match self {
            Self::Embedded => Model::from_json(EMBEDDED_JSON, "the embedded model"),
            Self::File(p) => Model::load(p),
        }
    }

    /// (mtime, size) of the file, to notice a change (`--watch`).
    pub fn stamp(&self) -> Option<(SystemTime, u64)> {
        match self {
            Self::Embedded => None,
            Self::File(p) => {
                let m = std::fs::metadata(p).ok()?;
                Some((m.modified().ok()?, m.len()))
            }
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => write!(f, "the embedded model"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A `struct model_bank` holding `model` as generation `generation`.
pub fn bank(model: &Model, generation: u64) -> Result<c::model_bank> {
    let depth = model.validate()?;
    if generation == 0 {
        bail!("generation 0 means an empty bank");
    }
    let mut b: c::model_bank = unsafe { std::mem::zeroed() };
    b.generation = generation;
    b.nr_nodes = model.nodes.len() as u32;
    b.depth = depth as u32;
    b.points = model.points_mask()?;
    for (dst, n) in b.nodes.iter_mut().zip(&model.nodes) {
        dst.feature = n.feature;
        dst.threshold = n.threshold;
        // validate() bounds children by MODEL_MAX_NODES (1024), so u16 holds them.
        dst.left = n.left as u16;
        dst.right = n.right as u16;
        dst.verdict = n.verdict as u32;
    }
    // Unused slots are leaves that say "stay", never garbage.
    for dst in b.nodes.iter_mut().skip(model.nodes.len()) {
        dst.feature = -1;
    }
    Ok(b)
}

fn bytes_of(b: &c::model_bank) -> &[u8] {
    unsafe {
        std::slice::from_raw_parts(
            b as *const c::model_bank as *const u8,
            std::mem::size_of::<c::model_bank>(),
        )
    }
}

/// Write `model` into bank `idx` (0 or 1) of a `model_banks` map.
pub fn write_bank(map: &impl MapCore, idx: u32, model: &Model, generation: u64) -> Result<()> {
    let b = bank(model, generation)?;
    map.update(&idx.to_ne_bytes(), bytes_of(&b), MapFlags::ANY)
        .context("writing the model bank")
}

/// The banks' state on the userspace side.
pub struct ModelBanks {
    active: u32,
    generation: u64,
    last_swap: Option<Instant>,
}

impl Default for ModelBanks {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelBanks {
    pub fn new() -> Self {
        Self {
            active: 0,
            generation: 0,
            last_swap: None,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Put `model` in force: write the idle bank, then make it the active
    /// one through `set_active` (the .bss flag).  Returns the new generation.
    pub fn install(
        &mut self,
        map: &impl MapCore,
        model: &Model,
        set_active: impl FnOnce(u32),
    ) -> Result<u64> {
        if let Some(t) = self.last_swap {
            let since = t.elapsed();
            if since < MIN_SWAP_INTERVAL {
                std::thread::sleep(MIN_SWAP_INTERVAL - since);
            }
        }
        let idle = if self.generation == 0 {
            self.active
        } else {
            1 - self.active
        };
        let generation = self.generation + 1;
        write_bank(map, idle, model, generation)?;
        // The bank is in the map before the flag says to read it.
        fence(Ordering::SeqCst);
        set_active(idle);
        self.active = idle;
        self.generation = generation;
        self.last_swap = Some(Instant::now());
        Ok(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::model::tests::tiny;

    #[test]
    fn the_embedded_model_loads() {
        let m = ModelSource::Embedded.load().unwrap();
        assert!(m.nodes.len() > 1 && m.depth <= crate::learn::model::MAX_DEPTH);
        // it carries linfa's tree, which predicts like the flat nodes
        assert!(
            m.linfa.is_some(),
            "retrain model/default.json with linfa's tree"
        );
    }

    #[test]
    fn bank_layout_matches_the_model() {
        let m = tiny();
        let b = bank(&m, 3).unwrap();
        assert_eq!((b.generation, b.nr_nodes, b.depth), (3, 3, 1));
        // a model without `points` decides at the steals only
        assert_eq!(
            b.points,
            1 << c::mig_point_POINT_STEAL_CPU_DSQ | 1 << c::mig_point_POINT_STEAL_LLC_DSQ
        );
        let mut at_a = m.clone();
        at_a.points = vec!["wake_idle".into()];
        assert_eq!(
            bank(&at_a, 1).unwrap().points,
            1 << c::mig_point_POINT_WAKE_IDLE
        );
        at_a.points = vec!["kernel_balance".into()];
        assert!(bank(&at_a, 1).is_err(), "not a point of the scheduler");
        at_a.points.clear();
        assert!(bank(&at_a, 1).is_err(), "a model that decides nowhere");
        assert_eq!(
            (b.nodes[0].feature, b.nodes[0].threshold),
            (c::mlsched_feature_FEAT_delta_hot as i32, 1)
        );
        assert_eq!((b.nodes[0].left, b.nodes[0].right), (1, 2));
        assert_eq!((b.nodes[1].feature, b.nodes[1].verdict), (-1, 1));
        assert_eq!((b.nodes[2].feature, b.nodes[2].verdict), (-1, 0));
        assert!(b.nodes[3..]
            .iter()
            .all(|n| n.feature == -1 && n.verdict == 0));
        assert!(bank(&m, 0).is_err());
        let mut bad = m.clone();
        bad.nodes[0].left = 9;
        assert!(
            bank(&bad, 1).is_err(),
            "an invalid model never reaches a bank"
        );
    }

    #[test]
    fn file_source_reports_errors_and_stamps() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.json");
        let src = ModelSource::File(p.clone());
        assert!(src.stamp().is_none());
        assert!(format!("{:#}", src.load().unwrap_err()).contains("m.json"));
        tiny().save(&p).unwrap();
        assert_eq!(src.load().unwrap().nodes, tiny().nodes);
        assert_eq!(src.stamp().unwrap().1, std::fs::metadata(&p).unwrap().len());
        assert_eq!(ModelSource::from_opt(None), ModelSource::Embedded);
    }
}
