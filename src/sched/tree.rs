//! The BPF tree walk alone (bpf/tree.bpf.c), run through BPF_PROG_RUN.
//!
//! It loads no scheduler, so it works on any kernel with BPF, including
//! hosts without sched_ext, and its figures are native there.  Two uses:
//!   - replay (`selftest --replay`): the walk's verdict on every row of a
//!     dataset, to compare with linfa's prediction;
//!   - timing (`bench inference`): nanoseconds per decision, the walk
//!     looped in the program over recorded vectors, and what the NUMA page
//!     tracker (bpf/numa.bpf.h, carried by the same object) adds to a page
//!     allocation, and what filling one feature vector costs (fill_bench:
//!     the scheduler's fill.bpf.h, with stand-ins for its sched_ext reads).

use std::mem::MaybeUninit;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

use crate::learn::features::FeatureVec;
use crate::learn::model::Model;
use crate::sched::bpf_intf as c;
use crate::sched::model_map;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/tree_skel.rs"));
}
use skel::*;

pub const MAX_VECTORS: usize = c::mlsched_consts_TREE_MAX_VECTORS as usize;

/// Results of one run of a tree program.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOut {
    pub elapsed_ns: u64,
    pub decisions: u64,
    pub migrate: u64,
    pub bad: u64,
}

/// The loaded tree object, with one model in bank 0 and vectors loaded.
pub struct TreeProg<'a> {
    skel: TreeSkel<'a>,
    nr: u32,
}

impl<'a> TreeProg<'a> {
    /// `numa_tracker`: also load the NUMA page tracker of bpf/numa.bpf.h
    /// with these node pfn ranges (not attached: see
    /// `attach_numa_tracker`), for its cost in `bench inference`.
    /// `fill`: also load fill_bench (`time_fill`), which reads task fields
    /// a kernel may not have as this build knows them; the walk does not.
    pub fn load(
        open_object: &'a mut MaybeUninit<libbpf_rs::OpenObject>,
        numa_tracker: Option<&[crate::sched::numa::PfnRange]>,
        fill: bool,
    ) -> Result<Self> {
        scx_utils::try_set_rlimit_infinity();
        let mut open = TreeSkelBuilder::default()
            .open(open_object)
            .context("opening bpf/tree.bpf.c")?;
        crate::setup_numa_tracker!(&mut open, numa_tracker)?;
        open.progs.fill_bench.set_autoload(fill);
        // fill_bench's move is FILL_SRC -> FILL_DST, on two nodes and two
        // LLCs: the fill's longest path (the NUMA features are looked up).
        let rodata = open.maps.rodata_data.as_mut().unwrap();
        rodata.cpu_node[FILL_DST as usize] = 1;
        rodata.cpu_llc[FILL_DST as usize] = 1;
        let skel = open
            .load()
            .context("loading the tree-walk BPF program (needs root and a kernel with BPF)")?;
        Ok(Self { skel, nr: 0 })
    }

    pub fn set_model(&mut self, model: &Model) -> Result<()> {
        model_map::write_bank(&self.skel.maps.model_banks, 0, model, 1)
    }

    /// Load up to MAX_VECTORS vectors (the programs walk [0, n)).
    pub fn set_vectors(&mut self, vectors: &[FeatureVec]) -> Result<()> {
        if vectors.len() > MAX_VECTORS {
            bail!(
                "{} vectors, more than the {MAX_VECTORS} of one run",
                vectors.len()
            );
        }
        for (i, v) in vectors.iter().enumerate() {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
            self.skel
                .maps
                .vectors
                .update(&(i as u32).to_ne_bytes(), &bytes, MapFlags::ANY)
                .context("writing a feature vector")?;
        }
        self.nr = vectors.len() as u32;
        Ok(())
    }

    fn run(&self, prog: &libbpf_rs::ProgramMut<'_>, loops: u32, empty: bool) -> Result<RunOut> {
        let mut arg = c::tree_run_arg {
            bank: 0,
            nr: self.nr,
            loops,
            empty: empty as u32,
            elapsed_ns: 0,
            decisions: 0,
            migrate: 0,
            bad: 0,
        };
        super::run_syscall(prog, &mut arg)?;
        Ok(RunOut {
            elapsed_ns: arg.elapsed_ns,
            decisions: arg.decisions,
            migrate: arg.migrate,
            bad: arg.bad,
        })
    }

    /// The walk's verdict on each loaded vector: 1 migrate, 0 stay, -1 none.
    pub fn replay(&self) -> Result<Vec<i32>> {
        self.run(&self.skel.progs.tree_replay, 1, false)?;
        (0..self.nr)
            .map(|i| {
                let v = self
                    .skel
                    .maps
                    .verdicts
                    .lookup(&i.to_ne_bytes(), MapFlags::ANY)?
                    .context("missing verdict")?;
                Ok(i32::from_ne_bytes(v[..4].try_into()?))
            })
            .collect()
    }

    /// Attach the NUMA page tracker (loaded with `numa_tracker`): from now
    /// until the link is dropped, every page allocation runs it.
    pub fn attach_numa_tracker(&mut self) -> Result<libbpf_rs::Link> {
        self.skel
            .progs
            .mls_numa_page_alloc
            .attach()
            .context("attaching the NUMA page tracker to kmem:mm_page_alloc")
    }

    /// Walk the loaded vectors `loops` times in one program run, timed
    /// inside it; `empty` runs the loop without the walk.
    pub fn time(&self, loops: u32, empty: bool) -> Result<RunOut> {
        self.run(&self.skel.progs.tree_bench, loops, empty)
    }
}

/// The CPUs of fill_bench's move (CPU 1 may not exist: the per-CPU reads
/// of a CPU that does not exist find nothing, which `bench inference`
/// reports).
pub const FILL_SRC: i32 = 0;
pub const FILL_DST: i32 = 1;

impl TreeProg<'_> {
    /// Fill a feature vector `loops` times in one program run, timed inside
    /// it; `empty` runs the loop without the fill.  Returns (ns, the sum of
    /// the last vector's features).
    pub fn time_fill(&self, loops: u32, empty: bool) -> Result<(u64, i64)> {
        let mut arg = c::fill_run_arg {
            src: FILL_SRC,
            dst: FILL_DST,
            loops,
            empty: empty as u32,
            elapsed_ns: 0,
            check: 0,
        };
        super::run_syscall(&self.skel.progs.fill_bench, &mut arg)?;
        Ok((arg.elapsed_ns, arg.check))
    }
}

/// The BPF walk's verdicts for `model` on every vector, in chunks.
pub fn replay(model: &Model, vectors: &[FeatureVec]) -> Result<Vec<i32>> {
    let mut obj = MaybeUninit::uninit();
    let mut prog = TreeProg::load(&mut obj, None, false)?;
    prog.set_model(model)?;
    let mut out = Vec::with_capacity(vectors.len());
    for chunk in vectors.chunks(MAX_VECTORS) {
        prog.set_vectors(chunk)?;
        out.extend(prog.replay()?);
    }
    Ok(out)
}
