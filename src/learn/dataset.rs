//! Datasets of migration decisions: CSV files written by `collect` and read
//! by `train` (which also reads their Parquet form, see export.rs).
//!
//! Format (v1): comment lines `# key: value` carry the metadata (schema hash,
//! kernel, workload; a trailer adds rows and dropped events), then a header
//! row of the feature names in schema order plus `label`, then one row per
//! can_migrate_task() call, all integers, label 0 or 1.  Reading refuses
//! a wrong schema, a wrong header, missing/extra columns and non-integer
//! values with the file and line.
//!
//! Datasets written since the serving dataset exists have three more
//! columns after `label`: `point` (enum mig_point of bpf/intf.h: where the
//! decision was made), `src_cpu` and `dst_cpu`.  `collect` writes the
//! kernel's balancing points, `run --record` (a serving dataset, whose
//! label is the verdict the scheduler acted on) its steals.  Everything
//! that reads datasets reads files with and without them.
//!
//! Datasets that `run --record` writes since outcomes exist have
//! thirteen more columns after the context (OUTCOME, [`Outcome`]): how the
//! decision was made (the policy's own action, whether `--explore`'s coin
//! chose it, the propensity of the action taken, why it could not be
//! explored, the model's generation) and what followed it (the wait until
//! the task ran, where, whether it moved, that run's length, whether it
//! moved again or back within the window, and how the window closed).
//! The header says which columns a file has; older files read as before,
//! with no outcomes.
//!
//! `retain_scheduler_points` keeps the rows of decision points the
//! scheduler has (a CPU with no task pulls; no active balancing); with no
//! context columns it judges by idle_type alone.
//! `retain_tree_rows` keeps the rows that the hard guards leave to the tree
//! (see `heuristic::ml_guard`): the model never decides the others.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::learn::features::{FeatureVec, NR_FEATURES, SCHEMA};
use crate::sched::bpf_intf as c;
use crate::sched::heuristic;

pub const MAGIC: &str = "scx_mlsched dataset v1";
pub const LABEL: &str = "label";
/// Larger feature values lose precision as f64 in the trainer.
pub const MAX_ABS_VALUE: u64 = 1 << 53;
/// The columns after `label` of a dataset with context.
pub const CONTEXT: [&str; 3] = ["point", "src_cpu", "dst_cpu"];
/// The columns after CONTEXT of a dataset recorded with outcomes.
pub const OUTCOME: [&str; 13] = [
    "explored",
    "policy_action",
    "propensity_ppm",
    "explore_block",
    "generation",
    "wait_us",
    "run_cpu",
    "moved",
    "run_us",
    "moved_again",
    "moved_back",
    "window_us",
    "closed_by",
];
/// A propensity of 1, in the unit of `propensity_ppm` (enum mlsched_consts).
pub const PROP_ONE: i64 = c::mlsched_consts_PROP_ONE as i64;

/// How a recorded decision was made and what followed it (the OUTCOME
/// columns; bpf/outcome.bpf.h says how BPF measures them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// `--explore`'s coin chose the action (it may equal the policy's).
    pub explored: bool,
    /// The policy's own action: true to migrate.  The label is the action
    /// taken.
    pub policy_action: bool,
    /// The probability of the action taken, in millionths (1..=PROP_ONE).
    pub propensity_ppm: i64,
    /// enum explore_block: 0 explorable, else why not.
    pub explore_block: i64,
    /// The generation of the model the policy walked (0: none).
    pub generation: i64,
    /// From the decision to the task's next run.
    pub wait_us: i64,
    /// The CPU of that run.
    pub run_cpu: i64,
    /// That run was on another CPU than the decision's source.
    pub moved: bool,
    /// The length of that run (0: still running when the window closed).
    pub run_us: i64,
    /// It ran on yet another CPU within the window.
    pub moved_again: bool,
    /// ... back on the decision's source, after having moved.
    pub moved_back: bool,
    /// How long moves were looked for after the run started.
    pub window_us: i64,
    /// enum outcome_close.
    pub closed_by: i64,
}

impl Outcome {
    pub fn to_row(&self) -> [i64; OUTCOME.len()] {
        [
            self.explored as i64,
            self.policy_action as i64,
            self.propensity_ppm,
            self.explore_block,
            self.generation,
            self.wait_us,
            self.run_cpu,
            self.moved as i64,
            self.run_us,
            self.moved_again as i64,
            self.moved_back as i64,
            self.window_us,
            self.closed_by,
        ]
    }

    /// From the OUTCOME columns, checked: the flags are 0 or 1, the
    /// propensity in 1..=PROP_ONE, the times not negative.
    pub fn from_row(v: &[i64; OUTCOME.len()]) -> Result<Self> {
        for i in [0, 1, 7, 9, 10] {
            if v[i] != 0 && v[i] != 1 {
                bail!("{} = {} is not 0 or 1", OUTCOME[i], v[i]);
            }
        }
        if !(1..=PROP_ONE).contains(&v[2]) {
            bail!("{} = {} is outside 1..={PROP_ONE}", OUTCOME[2], v[2]);
        }
        for i in [5, 8, 11] {
            if v[i] < 0 {
                bail!("{} = {} is negative", OUTCOME[i], v[i]);
            }
        }
        Ok(Self {
            explored: v[0] == 1,
            policy_action: v[1] == 1,
            propensity_ppm: v[2],
            explore_block: v[3],
            generation: v[4],
            wait_us: v[5],
            run_cpu: v[6],
            moved: v[7] == 1,
            run_us: v[8],
            moved_again: v[9] == 1,
            moved_back: v[10] == 1,
            window_us: v[11],
            closed_by: v[12],
        })
    }

    /// The probability of the action taken.
    pub fn propensity(&self) -> f64 {
        self.propensity_ppm as f64 / PROP_ONE as f64
    }
}

/// Where one decision was made (the CONTEXT columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCtx {
    /// enum mig_point
    pub point: i64,
    pub src: i64,
    pub dst: i64,
}

/// The name of a decision point (enum mig_point), "?" for another value.
pub fn point_name(point: i64) -> &'static str {
    match u32::try_from(point) {
        Ok(c::mig_point_POINT_KERNEL_BALANCE) => "kernel_balance",
        Ok(c::mig_point_POINT_KERNEL_ACTIVE) => "kernel_active",
        Ok(c::mig_point_POINT_STEAL_CPU_DSQ) => "steal_cpu_dsq",
        Ok(c::mig_point_POINT_STEAL_LLC_DSQ) => "steal_llc_dsq",
        Ok(c::mig_point_POINT_KERNEL_BUSY_DST) => "kernel_busy_dst",
        Ok(c::mig_point_POINT_WAKE_IDLE) => "wake_idle",
        Ok(c::mig_point_POINT_ENQ_WAKEUP) => "enq_wakeup",
        Ok(c::mig_point_POINT_ENQ_REQUEUE) => "enq_requeue",
        Ok(c::mig_point_POINT_PREEMPT_WAKEE) => "preempt_wakee",
        _ => "?",
    }
}

/// The decision point (enum mig_point) of a name that [`point_name`] gives.
pub fn point_by_name(name: &str) -> Option<u32> {
    (0..c::mig_point_NR_MIG_POINTS).find(|p| point_name(*p as i64) == name)
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub meta: BTreeMap<String, String>,
    pub x: Vec<FeatureVec>,
    pub y: Vec<bool>,
    /// One per row, or empty (a dataset written without context columns).
    pub ctx: Vec<RowCtx>,
    /// One per row, or empty (a dataset written without outcome columns).
    pub out: Vec<Outcome>,
}

/// Was this decision made at a point where the scheduler decides by the
/// kernel's rule, the points an imitation of the kernel's balancer is for?
/// Its steals are; of the kernel's, balances of an idle or newly idle CPU
/// that has no task are, and balances of a busy CPU (idle_type 0),
/// balances to a CPU that has tasks, and active balancing are not.  Nor are
/// the scheduler's placements (A, B, C): their labels in a recording are
/// their own rules, not the kernel's, and a steal model must not learn them.
pub fn scheduler_has_point(x: &FeatureVec, ctx: Option<&RowCtx>) -> bool {
    if let Some(p) = ctx.and_then(|c| u32::try_from(c.point).ok()) {
        match p {
            c::mig_point_POINT_STEAL_CPU_DSQ | c::mig_point_POINT_STEAL_LLC_DSQ => return true,
            c::mig_point_POINT_KERNEL_BALANCE => {}
            _ => return false,
        }
    }
    x[c::mlsched_feature_FEAT_idle_type as usize] != 0
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn workload(&self) -> &str {
        self.meta.get("workload").map(String::as_str).unwrap_or("?")
    }

    pub fn positives(&self) -> usize {
        self.y.iter().filter(|l| **l).count()
    }

    /// Keep only rows of decision points the scheduler has
    /// ([`scheduler_has_point`]); returns how many were dropped.
    pub fn retain_scheduler_points(&mut self) -> usize {
        self.retain_rows(scheduler_has_point)
    }

    /// Keep only the rows that the hard guards leave to the tree
    /// ([`heuristic::ml_guard`] says nothing); returns how many were dropped.
    pub fn retain_tree_rows(&mut self) -> usize {
        self.retain_rows(|x, _| heuristic::ml_guard(x).is_none())
    }

    /// Keep the rows (features, label and context alike) that `keep`
    /// accepts; returns how many were dropped.
    fn retain_rows(&mut self, keep: impl Fn(&FeatureVec, Option<&RowCtx>) -> bool) -> usize {
        let before = self.len();
        let rows = std::mem::take(&mut self.x)
            .into_iter()
            .zip(std::mem::take(&mut self.y))
            .enumerate()
            .filter(|(i, (x, _))| keep(x, self.ctx.get(*i)))
            .collect::<Vec<_>>();
        if !self.ctx.is_empty() {
            self.ctx = rows.iter().map(|(i, _)| self.ctx[*i]).collect();
        }
        if !self.out.is_empty() {
            self.out = rows.iter().map(|(i, _)| self.out[*i]).collect();
        }
        (self.x, self.y) = rows.into_iter().map(|(_, r)| r).unzip();
        before - self.len()
    }
}

/// Read a dataset as the model sees it: only the rows the tree decides (the
/// hard guards decide the others, whatever the model says), and with
/// `scheduler_points` only the rows of decision points the scheduler has.
/// Says on stderr what it left out; an empty result is an error.
pub fn read_for_model(p: &Path, scheduler_points: bool) -> Result<Dataset> {
    let mut d = read(p)?;
    let guarded = d.retain_tree_rows();
    let elsewhere = if scheduler_points {
        d.retain_scheduler_points()
    } else {
        0
    };
    log::info!(
        "{}: {} rows for the tree; left out: {guarded} decided by the hard guards, \
         {elsewhere} of decision points the scheduler does not have",
        p.display(),
        d.len()
    );
    if d.is_empty() {
        bail!("{}: no row left for the tree", p.display());
    }
    Ok(d)
}

/// Where a dataset was made: `kernel` (release) and `host`, for its header.
pub fn host_meta() -> [(&'static str, String); 2] {
    let read = |f: &str| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    [
        ("kernel", read("/proc/sys/kernel/osrelease")),
        ("host", read("/proc/sys/kernel/hostname")),
    ]
}

/// The header row this build writes and expects.
pub fn header() -> Vec<String> {
    SCHEMA
        .names()
        .map(str::to_string)
        .chain([LABEL.to_string()])
        .collect()
}

/// The header row of a serving dataset.
pub fn context_header() -> Vec<String> {
    header()
        .into_iter()
        .chain(CONTEXT.iter().map(|c| c.to_string()))
        .collect()
}

/// The header row of a serving dataset with outcomes.
pub fn outcome_header() -> Vec<String> {
    context_header()
        .into_iter()
        .chain(OUTCOME.iter().map(|c| c.to_string()))
        .collect()
}

/// Which columns a dataset has after the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Columns {
    Plain,
    Context,
    Outcome,
}

impl Columns {
    fn header(self) -> Vec<String> {
        match self {
            Self::Plain => header(),
            Self::Context => context_header(),
            Self::Outcome => outcome_header(),
        }
    }
}

pub struct Writer {
    out: csv::Writer<File>,
    file: PathBuf,
    rows: u64,
    cols: Columns,
}

impl Writer {
    /// Features and label only, as datasets were written before the context
    /// columns (the shipped ones are): tests write such files.
    #[cfg(test)]
    pub fn create(path: &Path, meta: &[(&str, String)]) -> Result<Self> {
        Self::open(path, meta, Columns::Plain)
    }

    /// Features, label and the CONTEXT columns (write rows with
    /// [`Writer::write_ctx`]).
    pub fn create_with_context(path: &Path, meta: &[(&str, String)]) -> Result<Self> {
        Self::open(path, meta, Columns::Context)
    }

    /// Features, label, the CONTEXT and the OUTCOME columns (write rows
    /// with [`Writer::write_outcome`]).
    pub fn create_with_outcome(path: &Path, meta: &[(&str, String)]) -> Result<Self> {
        Self::open(path, meta, Columns::Outcome)
    }

    fn open(path: &Path, meta: &[(&str, String)], cols: Columns) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "# {MAGIC}")?;
        writeln!(f, "# schema: {}", SCHEMA.hash_hex())?;
        for (k, v) in meta {
            writeln!(f, "# {k}: {}", v.replace('\n', " "))?;
        }
        let mut out = csv::Writer::from_writer(f);
        out.write_record(cols.header())?;
        Ok(Self {
            out,
            file: path.to_path_buf(),
            rows: 0,
            cols,
        })
    }

    #[cfg(test)]
    pub fn write(&mut self, x: &FeatureVec, label: bool) -> Result<()> {
        self.expect(Columns::Plain)?;
        self.row(x, label, &[])
    }

    pub fn write_ctx(&mut self, x: &FeatureVec, label: bool, ctx: RowCtx) -> Result<()> {
        self.expect(Columns::Context)?;
        self.row(x, label, &[ctx.point, ctx.src, ctx.dst])
    }

    pub fn write_outcome(
        &mut self,
        x: &FeatureVec,
        label: bool,
        ctx: RowCtx,
        out: &Outcome,
    ) -> Result<()> {
        self.expect(Columns::Outcome)?;
        let extra: Vec<i64> = [ctx.point, ctx.src, ctx.dst]
            .into_iter()
            .chain(out.to_row())
            .collect();
        self.row(x, label, &extra)
    }

    fn expect(&self, cols: Columns) -> Result<()> {
        if self.cols != cols {
            bail!(
                "{}: a row with the columns of {cols:?}, in a dataset of {:?}",
                self.file.display(),
                self.cols
            );
        }
        Ok(())
    }

    fn row(&mut self, x: &FeatureVec, label: bool, extra: &[i64]) -> Result<()> {
        self.out.write_record(
            x.iter()
                .map(|v| v.to_string())
                .chain([(label as u8).to_string()])
                .chain(extra.iter().map(|v| v.to_string())),
        )?;
        self.rows += 1;
        Ok(())
    }

    /// Flush and append the trailer (`# key: value` lines after the rows).
    pub fn finish(self, trailer: &[(&str, String)]) -> Result<PathBuf> {
        let mut f = self
            .out
            .into_inner()
            .map_err(|e| anyhow!("flushing {}: {e}", self.file.display()))?;
        writeln!(f, "# rows: {}", self.rows)?;
        for (k, v) in trailer {
            writeln!(f, "# {k}: {v}")?;
        }
        Ok(self.file)
    }
}

/// Read and validate a dataset: a CSV written by [`Writer`], or a Parquet
/// file (`.parquet`) written by `export` or merged by a fleet tool.
pub fn read(path: &Path) -> Result<Dataset> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return crate::learn::export::read_parquet(path);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Dataset> {
    let p = path.display();
    let mut meta = BTreeMap::new();
    let mut magic = false;
    for line in text.lines().filter_map(|l| l.strip_prefix('#')) {
        let line = line.trim();
        if line == MAGIC {
            magic = true;
        } else if let Some((k, v)) = line.split_once(':') {
            meta.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if text.trim().is_empty() {
        bail!("{p}: empty file, not a dataset");
    }
    if !magic {
        bail!("{p}:1: not an scx_mlsched dataset (no '# {MAGIC}' line)");
    }
    match meta.get("schema") {
        None => bail!("{p}: no '# schema:' line"),
        Some(h) if *h != SCHEMA.hash_hex() => bail!(
            "{p}: feature schema {h} differs from this build's {} (bpf/features.def changed); \
             collect the data again",
            SCHEMA.hash_hex()
        ),
        _ => {}
    }

    // File line of each record: csv skips comment and empty lines, and our
    // rows never span lines, so record k is the k-th other line.
    let lines: Vec<u64> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, _)| i as u64 + 1)
        .collect();
    let line_of = |r: &csv::StringRecord| {
        r.position()
            .and_then(|pos| lines.get(pos.record() as usize))
            .copied()
            .unwrap_or(0)
    };
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let head = match records.next() {
        None => bail!("{p}: no header row"),
        Some(r) => r.with_context(|| format!("{p}: unreadable header"))?,
    };
    let head_line = line_of(&head);
    let head: Vec<&str> = head.iter().collect();
    let Some(cols) = [Columns::Plain, Columns::Context, Columns::Outcome]
        .into_iter()
        .find(|c| head == c.header())
    else {
        bail!(
            "{p}:{}: header does not match the schema: expected {} (optionally followed by {}, \
             then by {})",
            head_line,
            header().join(","),
            CONTEXT.join(","),
            OUTCOME.join(",")
        );
    };
    let want = cols.header();

    let (mut x, mut y, mut ctx, mut out) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rec in records {
        let rec = rec.with_context(|| format!("{p}: unreadable row"))?;
        let line = line_of(&rec);
        if rec.len() != want.len() {
            bail!("{p}:{line}: {} columns, expected {}", rec.len(), want.len());
        }
        let mut v = [0i64; NR_FEATURES];
        let mut extra = [0i64; CONTEXT.len() + OUTCOME.len()];
        for (i, field) in rec.iter().enumerate() {
            let val: i64 = field.trim().parse().map_err(|_| {
                if field.trim().is_empty() {
                    anyhow!("{p}:{line}: missing value for {}", want[i])
                } else {
                    anyhow!("{p}:{line}: {} = {field:?} is not an integer", want[i])
                }
            })?;
            if i < NR_FEATURES {
                if val.unsigned_abs() > MAX_ABS_VALUE {
                    bail!("{p}:{line}: {} = {val} is outside ±2^53, which the trainer cannot represent exactly", want[i]);
                }
                v[i] = val;
            } else if i > NR_FEATURES {
                extra[i - NR_FEATURES - 1] = val;
            } else if val == 0 || val == 1 {
                y.push(val == 1);
            } else {
                bail!("{p}:{line}: label {val} is not 0 or 1");
            }
        }
        x.push(v);
        if cols != Columns::Plain {
            ctx.push(RowCtx {
                point: extra[0],
                src: extra[1],
                dst: extra[2],
            });
        }
        if cols == Columns::Outcome {
            let row: &[i64; OUTCOME.len()] = extra[CONTEXT.len()..].try_into()?;
            out.push(Outcome::from_row(row).map_err(|e| anyhow!("{p}:{line}: {e}"))?);
        }
    }
    if y.is_empty() {
        bail!("{p}: no rows");
    }
    Ok(Dataset {
        path: path.to_path_buf(),
        meta,
        x,
        y,
        ctx,
        out,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn sample(rows: &[(FeatureVec, bool)]) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/a.csv");
        let mut w = Writer::create(
            &path,
            &[("workload", "unit".into()), ("kernel", "test".into())],
        )
        .unwrap();
        for (x, l) in rows {
            w.write(x, *l).unwrap();
        }
        w.finish(&[("dropped", "0".into())]).unwrap();
        (d, path)
    }

    fn text_with_row(row: &str) -> String {
        format!(
            "# {MAGIC}\n# schema: {}\n{}\n{row}\n",
            SCHEMA.hash_hex(),
            header().join(",")
        )
    }

    #[test]
    fn round_trip() {
        let mut a = [0i64; NR_FEATURES];
        a[3] = -7;
        a[NR_FEATURES - 1] = 1 << 53;
        let (_d, path) = sample(&[(a, true), ([1; NR_FEATURES], false)]);
        let ds = read(&path).unwrap();
        assert_eq!(ds.x, vec![a, [1; NR_FEATURES]]);
        assert_eq!(ds.y, vec![true, false]);
        assert_eq!(ds.workload(), "unit");
        assert_eq!(ds.meta["rows"], "2");
        assert_eq!(ds.meta["dropped"], "0");
    }

    /// A serving dataset's context columns come back; a collected
    /// dataset has none; each writer refuses the other kind of row.
    #[test]
    fn serving_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.csv");
        let mut w = Writer::create_with_context(&path, &[("workload", "unit".into())]).unwrap();
        let ctx = RowCtx {
            point: c::mig_point_POINT_STEAL_LLC_DSQ as i64,
            src: 3,
            dst: 1,
        };
        w.write_ctx(&[2; NR_FEATURES], true, ctx).unwrap();
        assert!(w.write(&[2; NR_FEATURES], true).is_err());
        w.finish(&[]).unwrap();
        let ds = read(&path).unwrap();
        assert_eq!(ds.ctx, vec![ctx]);
        assert_eq!(ds.y, vec![true]);
        assert_eq!(point_name(ds.ctx[0].point), "steal_llc_dsq");
        assert_eq!(point_name(99), "?");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("label,{}", CONTEXT.join(","))));

        let (_d2, collected) = sample(&[([0; NR_FEATURES], false)]);
        assert!(read(&collected).unwrap().ctx.is_empty());
        let mut w = Writer::create(&d.path().join("c.csv"), &[]).unwrap();
        assert!(w.write_ctx(&[0; NR_FEATURES], false, ctx).is_err());
        // A serving header with a row that lacks the context: refused.
        let bad = format!(
            "# {MAGIC}\n# schema: {}\n{}\n{}\n",
            SCHEMA.hash_hex(),
            context_header().join(","),
            vec!["0"; NR_FEATURES + 1].join(",")
        );
        let e = err(&bad);
        assert!(e.contains("d.csv:4:") && e.contains("columns"), "{e}");
    }

    pub(crate) fn outcome_sample(i: i64) -> Outcome {
        Outcome {
            explored: i % 2 == 0,
            policy_action: i % 3 == 0,
            propensity_ppm: if i % 2 == 0 { 50_000 } else { 950_000 },
            explore_block: i % 5,
            generation: 2,
            wait_us: 10 * i,
            run_cpu: i % 4,
            moved: i % 4 != 1,
            run_us: 100 + i,
            moved_again: i % 7 == 0,
            moved_back: i % 14 == 0,
            window_us: 10_000,
            closed_by: i % 3,
        }
    }

    /// Outcome columns come back as written, older headers still read
    /// (with no outcomes), a context writer refuses outcome rows, and a bad
    /// outcome value is refused with the file and line.
    #[test]
    fn outcome_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("o.csv");
        let mut w = Writer::create_with_outcome(&path, &[("workload", "unit".into())]).unwrap();
        let ctx = RowCtx {
            point: c::mig_point_POINT_WAKE_IDLE as i64,
            src: 1,
            dst: 0,
        };
        let outs: Vec<Outcome> = (0..6).map(outcome_sample).collect();
        for (i, o) in outs.iter().enumerate() {
            w.write_outcome(&[i as i64; NR_FEATURES], i % 2 == 1, ctx, o)
                .unwrap();
        }
        assert!(w.write_ctx(&[0; NR_FEATURES], true, ctx).is_err());
        w.finish(&[]).unwrap();
        let mut ds = read(&path).unwrap();
        assert_eq!(ds.out, outs);
        assert_eq!(ds.ctx, vec![ctx; 6]);
        assert_eq!(ds.y, vec![false, true, false, true, false, true]);
        assert!((ds.out[0].propensity() - 0.05).abs() < 1e-12);
        // Filtering keeps the rows' outcomes with them.
        let dropped = ds.retain_rows(|x, _| x[0] % 2 == 1);
        assert_eq!(dropped, 3);
        assert_eq!(ds.out, vec![outs[1], outs[3], outs[5]]);

        let mut w = Writer::create_with_context(&d.path().join("c.csv"), &[]).unwrap();
        assert!(w
            .write_outcome(&[0; NR_FEATURES], true, ctx, &outs[0])
            .is_err());

        let row = |o: &[i64]| {
            let mut v = vec!["0".to_string(); NR_FEATURES + 1 + CONTEXT.len()];
            v.extend(o.iter().map(|x| x.to_string()));
            format!(
                "# {MAGIC}\n# schema: {}\n{}\n{}\n",
                SCHEMA.hash_hex(),
                outcome_header().join(","),
                v.join(",")
            )
        };
        let good = outs[1].to_row();
        assert!(parse(Path::new("d.csv"), &row(&good)).is_ok());
        let mut bad = good;
        bad[2] = 0;
        let e = err(&row(&bad));
        assert!(
            e.contains("d.csv:4:") && e.contains("propensity_ppm"),
            "{e}"
        );
        bad = good;
        bad[7] = 2;
        assert!(err(&row(&bad)).contains("moved = 2"));
        bad = good;
        bad[5] = -1;
        assert!(err(&row(&bad)).contains("wait_us = -1 is negative"));
        // A header that stops inside the outcome columns is refused.
        let partial = format!(
            "# {MAGIC}\n# schema: {}\n{},{}\n",
            SCHEMA.hash_hex(),
            context_header().join(","),
            OUTCOME[..4].join(",")
        );
        assert!(err(&partial).contains("header does not match"));
    }

    /// Rows of points the scheduler lacks go: a busy CPU's balance, active
    /// balancing; by the context where there is one, else by idle_type.
    #[test]
    fn scheduler_points_are_kept() {
        let idle = c::mlsched_feature_FEAT_idle_type as usize;
        let hot = c::mlsched_feature_FEAT_delta_hot as usize;
        let v = |idle_type: i64, delta_hot: i64| {
            let mut x = [0i64; NR_FEATURES];
            x[idle] = idle_type;
            x[hot] = delta_hot;
            x
        };
        let rows = [v(0, 0), v(1, 0), v(2, 0), v(2, 1), v(0, 0)];
        let mut ds = Dataset {
            path: PathBuf::from("d.csv"),
            meta: BTreeMap::new(),
            x: rows.to_vec(),
            y: vec![false, true, false, true, true],
            ctx: vec![],
            out: vec![],
        };
        assert_eq!(ds.clone().retain_scheduler_points(), 2);
        let point = |p: u32| RowCtx {
            point: p as i64,
            src: 0,
            dst: 1,
        };
        ds.ctx = vec![
            point(c::mig_point_POINT_KERNEL_BALANCE),
            point(c::mig_point_POINT_KERNEL_BALANCE),
            point(c::mig_point_POINT_KERNEL_ACTIVE),
            // An idle balance to a CPU that already has tasks: not ours.
            point(c::mig_point_POINT_KERNEL_BUSY_DST),
            // A steal is the scheduler's own point, whatever idle_type says.
            point(c::mig_point_POINT_STEAL_CPU_DSQ),
        ];
        assert_eq!(ds.clone().retain_scheduler_points(), 3);
        // A placement's row (its label is its own rule) is not a steal's,
        // whatever idle_type says.
        ds.ctx[1] = point(c::mig_point_POINT_ENQ_WAKEUP);
        assert_eq!(ds.clone().retain_scheduler_points(), 4);
        ds.ctx[1] = point(c::mig_point_POINT_KERNEL_BALANCE);
        assert_eq!(ds.retain_scheduler_points(), 3);
        assert_eq!(ds.x, vec![v(1, 0), v(0, 0)]);
        assert_eq!(ds.y, vec![true, true]);
        assert_eq!(ds.ctx[1].point, c::mig_point_POINT_STEAL_CPU_DSQ as i64);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)))]

        /// Fuzz target of the dataset reader: arbitrary text never panics.
        #[test]
        fn fuzz_dataset_text(text in "(#?[ -~\\n,]{0,80}\n){0,20}") {
            let _ = parse(Path::new("f.csv"), &text);
        }

        /// A valid file with one cell replaced is read or refused with the
        /// file name, never panics.
        #[test]
        fn fuzz_dataset_cell(col in 0..NR_FEATURES + 1, cell in "[-+0-9a-zA-Z. ]{0,24}") {
            let mut row = vec!["1".to_string(); NR_FEATURES + 1];
            row[col] = cell;
            match parse(Path::new("f.csv"), &text_with_row(&row.join(","))) {
                Ok(d) => prop_assert_eq!(d.len(), 1),
                Err(e) => prop_assert!(e.to_string().starts_with("f.csv"), "{}", e),
            }
        }
    }

    fn err(text: &str) -> String {
        parse(Path::new("d.csv"), text).unwrap_err().to_string()
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let good_row = vec!["0"; NR_FEATURES + 1].join(",");
        assert!(parse(Path::new("d.csv"), &text_with_row(&good_row)).is_ok());
        assert!(err("").contains("empty"));
        assert!(err("a,b\n1,2\n").contains("not an scx_mlsched dataset"));
        let wrong = format!("# {MAGIC}\n# schema: 0123\n");
        assert!(
            err(&wrong).contains("schema 0123 differs"),
            "{}",
            err(&wrong)
        );
        let e = err(&text_with_row(&["0"; NR_FEATURES].join(",")));
        assert!(e.contains("d.csv:4:") && e.contains("columns"), "{e}");
        let e = err(&text_with_row(&vec!["0"; NR_FEATURES + 2].join(",")));
        assert!(e.contains("d.csv:4:") && e.contains("columns"), "{e}");
        let mut nan = vec!["0"; NR_FEATURES + 1];
        let idle = c::mlsched_feature_FEAT_idle_type as usize;
        nan[idle] = "NaN";
        let e = err(&text_with_row(&nan.join(",")));
        assert!(
            e.contains("d.csv:4:") && e.contains("idle_type") && e.contains("not an integer"),
            "{e}"
        );
        nan[idle] = "inf";
        assert!(err(&text_with_row(&nan.join(","))).contains("not an integer"));
        nan[idle] = "9007199254740993";
        assert!(err(&text_with_row(&nan.join(","))).contains("outside"));
        nan[idle] = "";
        assert!(err(&text_with_row(&nan.join(","))).contains("missing value for idle_type"));
        let mut lab = vec!["0"; NR_FEATURES + 1];
        lab[NR_FEATURES] = "2";
        assert!(err(&text_with_row(&lab.join(","))).contains("label 2"));
        let e = err(&format!(
            "# {MAGIC}\n# schema: {}\nx,y\n",
            SCHEMA.hash_hex()
        ));
        assert!(e.contains("d.csv:3:") && e.contains("header"), "{e}");
        let e = err(&format!(
            "# {MAGIC}\n# schema: {}\n{}\n",
            SCHEMA.hash_hex(),
            header().join(",")
        ));
        assert!(e.contains("no rows"), "{e}");
    }
}
