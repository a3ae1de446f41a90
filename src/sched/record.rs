//! `run --record FILE`: the scheduler's own decision vectors as a serving
//! dataset, for the skew report (src/learn/skew.rs) and for training on
//! what the scheduler sees.
//!
//! BPF sends every `--record-every`-th decision of each CPU (any policy)
//! through the `records` ring buffer: the vector as can_migrate() filled
//! it, the verdict acted on, the decision point (enum mig_point) and the
//! CPU pair.  The file is a dataset (src/learn/dataset.rs) with the context
//! columns; its label is the verdict acted on.  Sampling is bounded twice:
//! the ring buffer (a full one drops the record in BPF, counted by
//! STAT_RECORDS_DROPPED) and `--record-max` rows (later ones are counted,
//! not written).  The trailer gives both counts, so a reader knows what the
//! file misses, and `lost`: records BPF queued (STAT_RECORDS) that were
//! never read, which the loader's last drain, after the scheduler is
//! detached, keeps at 0.
//!
//! Outcomes (issue #25, bpf/outcome.bpf.h): BPF records at most one
//! decision per task and episode, and sends what followed it (or that the
//! task left before it ran: censored) under the same id, later, through
//! the same ring buffer.  A decision waits here until its outcome comes;
//! the row is written then, with the OUTCOME columns (how it was decided,
//! its propensity under `--explore`, and what followed).  The trailer
//! counts what has no row: censored, `unjoined` (a decision whose outcome
//! never came: the ring buffer dropped it, `outcome_dropped`), `orphans`
//! (an outcome whose decision never came), and BPF's `superseded`
//! decisions (made while the task's recorded one was pending).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use log::{info, warn};

use scx_utils::NR_CPU_IDS;

use crate::cli::RunOpts;
use crate::learn::dataset::{self, Outcome, RowCtx, Writer};
use crate::sched::bpf_intf as c;
use crate::sched::stats::Metrics;

/// Decisions waiting for their outcome at most (one per live task is the
/// usual bound; past it the oldest are not kept, and counted as unjoined).
const MAX_PENDING: usize = 1 << 20;

pub struct Recorder {
    writer: Writer,
    max_rows: u64,
    written: u64,
    over_limit: u64,
    /// Records that could not be read, and of them decisions.
    malformed: u64,
    malformed_decisions: u64,
    /// Decisions waiting for their outcome, by id (ids restart with each
    /// scheduler instance: the map is emptied when one is detached).
    pending: HashMap<u64, c::mig_record>,
    censored: u64,
    unjoined: u64,
    orphans: u64,
    /// BPF's counts, summed over the scheduler's instances (a restart
    /// reloads BPF and its counters): records it could not queue
    /// (STAT_RECORDS_DROPPED), records it queued (STAT_RECORDS), outcomes
    /// it could not queue, decisions superseded.
    dropped: u64,
    sent: u64,
    outcome_dropped: u64,
    superseded: u64,
}

/// Does enum mig_verdict `v` let the task move?
pub fn verdict_allows(v: i32) -> bool {
    matches!(
        u32::try_from(v),
        Ok(c::mig_verdict_MIG_ALLOWED
            | c::mig_verdict_MIG_ALLOWED_FAILS
            | c::mig_verdict_MIG_ML_ALLOWED
            | c::mig_verdict_MIG_EXPLORE_ALLOWED)
    )
}

/// A plain-old-data record of the ring buffer, of at least its size.
fn read_pod<T: Copy>(data: &[u8]) -> Result<T> {
    let size = std::mem::size_of::<T>();
    if data.len() < size {
        bail!("record of {} bytes, expected {size}", data.len());
    }
    // The ring buffer gives 8-byte aligned records, but read unaligned anyway.
    // Safety: T is a bindgen struct of integers, any bit pattern is valid.
    Ok(unsafe { std::ptr::read_unaligned(data.as_ptr() as *const T) })
}

/// What `records` carries (enum rec_kind).
pub enum Record {
    Decision(c::mig_record),
    Outcome(c::mig_outcome),
    Censored(c::mig_outcome),
}

pub fn parse_record(data: &[u8]) -> Result<Record> {
    let kind: u32 = read_pod(data)?;
    Ok(match kind {
        c::rec_kind_REC_DECISION => Record::Decision(read_pod(data)?),
        c::rec_kind_REC_OUTCOME => Record::Outcome(read_pod(data)?),
        c::rec_kind_REC_CENSORED => Record::Censored(read_pod(data)?),
        k => bail!("record of unknown kind {k}"),
    })
}

/// The OUTCOME columns of decision `d` joined with what followed it.
fn outcome_of(d: &c::mig_record, o: &c::mig_outcome) -> Outcome {
    Outcome {
        explored: d.explored != 0,
        policy_action: verdict_allows(d.policy_verdict),
        propensity_ppm: d.prop_ppm as i64,
        explore_block: d.explore_block as i64,
        generation: d.generation as i64,
        wait_us: (o.wait_ns / 1000) as i64,
        run_cpu: o.run_cpu as i64,
        moved: o.moved != 0,
        run_us: (o.run_ns / 1000) as i64,
        moved_again: o.moved_again != 0,
        moved_back: o.moved_back != 0,
        window_us: (o.window_ns / 1000) as i64,
        closed_by: o.closed_by as i64,
    }
}

impl Recorder {
    /// The file of `run --record`, its header saying how it was made.
    pub fn for_run(path: &Path, o: &RunOpts) -> Result<Self> {
        let [kernel, host] = dataset::host_meta();
        let mut meta = vec![
            ("workload", "serving".to_string()),
            kernel,
            host,
            ("cpus", NR_CPU_IDS.to_string()),
            ("policy", format!("{:?}", o.policy).to_lowercase()),
            ("record_every", o.record_every.to_string()),
            ("slice_us", o.slice_us.to_string()),
            (
                "migration_cost_ns",
                (o.migration_cost_us * 1000).to_string(),
            ),
            ("cache_nice_tries", o.cache_nice_tries.to_string()),
            ("explore_eps", o.explore.to_string()),
            crate::sched::heuristic::Rules::of(o).meta(),
            (
                "explore_rng",
                "bpf_get_prandom_u32 (seeded by the kernel, not reproducible)".to_string(),
            ),
            (
                "outcome_window_us",
                c::mlsched_consts_OUTCOME_WINDOW_US.to_string(),
            ),
            (
                "record_rule",
                "per task and episode, the first decision at a stage drawn uniformly from \
                     {wake_idle, enqueue, preempt_wakee, steal}"
                    .to_string(),
            ),
            (
                "model",
                o.model
                    .as_ref()
                    .map_or("embedded".to_string(), |m| m.display().to_string()),
            ),
        ];
        meta.extend(o.record_meta.iter().map(|(k, v)| (k.as_str(), v.clone())));
        Self::create(path, o.record_max, &meta)
    }

    /// `meta`: the run's settings, written in the file's header.
    pub fn create(path: &Path, max_rows: u64, meta: &[(&str, String)]) -> Result<Self> {
        let writer = Writer::create_with_outcome(path, meta)?;
        info!(
            "recording decisions to {} (at most {max_rows} rows)",
            path.display()
        );
        Ok(Self {
            writer,
            max_rows,
            written: 0,
            over_limit: 0,
            malformed: 0,
            malformed_decisions: 0,
            pending: HashMap::new(),
            censored: 0,
            unjoined: 0,
            orphans: 0,
            dropped: 0,
            sent: 0,
            outcome_dropped: 0,
            superseded: 0,
        })
    }

    /// One record from the ring buffer.
    pub fn push_bytes(&mut self, data: &[u8]) -> Result<()> {
        let r = match parse_record(data) {
            Ok(r) => r,
            Err(e) => {
                self.malformed += 1;
                if read_pod::<u32>(data).ok() == Some(c::rec_kind_REC_DECISION) {
                    self.malformed_decisions += 1;
                }
                return Err(e);
            }
        };
        match r {
            Record::Decision(d) => {
                if self.pending.len() >= MAX_PENDING {
                    self.unjoined += 1;
                } else {
                    self.pending.insert(d.id, d);
                }
            }
            Record::Censored(o) => match self.pending.remove(&o.id) {
                Some(_) => self.censored += 1,
                None => self.orphans += 1,
            },
            Record::Outcome(o) => {
                let Some(d) = self.pending.remove(&o.id) else {
                    self.orphans += 1;
                    return Ok(());
                };
                if self.written >= self.max_rows {
                    self.over_limit += 1;
                    return Ok(());
                }
                let ctx = RowCtx {
                    point: d.point as i64,
                    src: d.src as i64,
                    dst: d.dst as i64,
                };
                let label = verdict_allows(d.verdict);
                self.writer
                    .write_outcome(&d.in_.f, label, ctx, &outcome_of(&d, &o))?;
                self.written += 1;
            }
        }
        Ok(())
    }

    /// One scheduler instance's counts, read once it is detached and its
    /// ring buffer drained: records BPF queued (STAT_RECORDS) and could not
    /// queue (STAT_RECORDS_DROPPED), outcomes it could not queue,
    /// decisions superseded.  Decisions still waiting for an outcome will
    /// never get one (the next instance's ids start again): unjoined.
    pub fn add_bpf_counts(&mut self, m: &Metrics) {
        self.sent += m.records;
        self.dropped += m.records_dropped;
        self.outcome_dropped += m.out_dropped;
        self.superseded += m.out_superseded;
        self.unjoined += self.pending.len() as u64;
        self.pending.clear();
    }

    /// Decisions BPF queued that were never read (none once the ring
    /// buffer is drained after the scheduler is detached).
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(
            self.written
                + self.over_limit
                + self.malformed_decisions
                + self.censored
                + self.unjoined
                + self.pending.len() as u64,
        )
    }

    /// Close the file with its trailer.
    pub fn finish(self) -> Result<PathBuf> {
        let dropped = self.dropped;
        let lost = self.lost();
        let path = self.writer.finish(&[
            ("dropped", dropped.to_string()),
            ("over_limit", self.over_limit.to_string()),
            ("malformed", self.malformed.to_string()),
            ("superseded", self.superseded.to_string()),
            ("censored", self.censored.to_string()),
            (
                "unjoined",
                (self.unjoined + self.pending.len() as u64).to_string(),
            ),
            ("outcome_dropped", self.outcome_dropped.to_string()),
            ("orphans", self.orphans.to_string()),
            ("lost", lost.to_string()),
        ])?;
        info!(
            "recorded {} decisions to {} ({} dropped: ring buffer full, {} over --record-max)",
            self.written,
            path.display(),
            dropped,
            self.over_limit
        );
        if dropped > 0 {
            warn!("--record lost {dropped} decisions to a full ring buffer: raise --record-every");
        }
        if lost > 0 {
            warn!("--record: {lost} decisions queued by BPF were never read");
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::features::NR_FEATURES;

    fn bytes<T>(r: &T) -> Vec<u8> {
        let p = r as *const T as *const u8;
        unsafe { std::slice::from_raw_parts(p, std::mem::size_of::<T>()) }.to_vec()
    }

    /// Decision `id`: feature 0 is `f0`, the policy said `policy`, the
    /// action taken was `verdict`.
    fn decision(id: u64, f0: i64, verdict: u32, policy: u32, point: u32) -> Vec<u8> {
        let mut r: c::mig_record = unsafe { std::mem::zeroed() };
        r.kind = c::rec_kind_REC_DECISION;
        r.id = id;
        r.generation = 3;
        r.in_.f[0] = f0;
        r.in_.f[NR_FEATURES - 1] = -f0;
        r.src = 2;
        r.dst = 5;
        r.verdict = verdict as i32;
        r.policy_verdict = policy as i32;
        r.prop_ppm = if verdict == policy { 950_000 } else { 50_000 };
        r.explored = (verdict != policy) as u32;
        r.point = point;
        bytes(&r)
    }

    fn outcome(id: u64, kind: u32, wait_ns: u64, run_cpu: i32) -> Vec<u8> {
        let mut o: c::mig_outcome = unsafe { std::mem::zeroed() };
        o.kind = kind;
        o.id = id;
        o.wait_ns = wait_ns;
        o.run_ns = 2_500_000;
        o.window_ns = 10_000_000;
        o.run_cpu = run_cpu;
        o.moved = (run_cpu != 2) as u8;
        o.closed_by = c::outcome_close_CLOSED_WINDOW;
        bytes(&o)
    }

    /// A decision becomes a row when its outcome comes, in the outcome's
    /// order, with the action taken as label and the policy's own action,
    /// propensity and what followed in the outcome columns.  Censored
    /// decisions, decisions that never got an outcome, outcomes without a
    /// decision, rows past the limit and short records are counted, not
    /// written; the trailer's counts add up to what BPF sent.
    #[test]
    fn decisions_and_outcomes_join_into_a_bounded_dataset() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("serving.csv");
        let mut rec = Recorder::create(&path, 3, &[("workload", "unit".into())]).unwrap();
        let (cpu, llc) = (
            c::mig_point_POINT_STEAL_CPU_DSQ,
            c::mig_point_POINT_STEAL_LLC_DSQ,
        );
        let (allowed, hot, flip) = (
            c::mig_verdict_MIG_ALLOWED,
            c::mig_verdict_MIG_DENY_HOT,
            c::mig_verdict_MIG_EXPLORE_ALLOWED,
        );
        let (out, cens) = (c::rec_kind_REC_OUTCOME, c::rec_kind_REC_CENSORED);
        rec.push_bytes(&decision(1, 1, allowed, allowed, cpu))
            .unwrap();
        rec.push_bytes(&decision(2, 2, flip, hot, llc)).unwrap();
        rec.push_bytes(&decision(3, 3, hot, hot, cpu)).unwrap();
        // Outcomes come in another order than their decisions.
        rec.push_bytes(&outcome(2, out, 7_000, 5)).unwrap();
        rec.push_bytes(&outcome(1, out, 1_999, 2)).unwrap();
        rec.push_bytes(&outcome(3, cens, 0, -1)).unwrap();
        rec.push_bytes(&outcome(9, out, 1, 1)).unwrap();
        assert!(rec
            .push_bytes(&decision(4, 4, allowed, allowed, cpu)[..8])
            .is_err());
        assert!(rec.push_bytes(&[7, 0, 0, 0, 0, 0, 0, 0]).is_err());
        rec.push_bytes(&decision(5, 5, allowed, allowed, cpu))
            .unwrap();
        rec.push_bytes(&decision(6, 6, allowed, allowed, cpu))
            .unwrap();
        rec.push_bytes(&outcome(5, out, 3_000, 2)).unwrap();
        rec.push_bytes(&outcome(6, out, 3_000, 2)).unwrap();
        // The instance ends with decision 7 still waiting: unjoined.
        rec.push_bytes(&decision(7, 7, allowed, allowed, cpu))
            .unwrap();
        let m = Metrics {
            records: 8,
            records_dropped: 4,
            out_dropped: 1,
            out_superseded: 11,
            ..Default::default()
        };
        rec.add_bpf_counts(&m);
        // A second instance: ids start again; 2 sent, 3 dropped.
        rec.push_bytes(&decision(1, 8, allowed, allowed, cpu))
            .unwrap();
        rec.add_bpf_counts(&Metrics {
            records: 2,
            records_dropped: 3,
            ..Default::default()
        });
        rec.finish().unwrap();

        let ds = dataset::read(&path).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.x.iter().map(|x| x[0]).collect::<Vec<_>>(), vec![2, 1, 5]);
        assert_eq!(ds.x[0][NR_FEATURES - 1], -2);
        assert_eq!(ds.y, vec![true, true, true]);
        assert_eq!(
            ds.ctx[0],
            RowCtx {
                point: llc as i64,
                src: 2,
                dst: 5
            }
        );
        let o = ds.out[0];
        assert!(o.explored && !o.policy_action);
        assert_eq!((o.propensity_ppm, o.generation), (50_000, 3));
        assert_eq!(
            (o.wait_us, o.run_cpu, o.moved, o.run_us),
            (7, 5, true, 2_500)
        );
        assert_eq!((o.window_us, o.closed_by), (10_000, 0));
        let o = ds.out[1];
        assert!(!o.explored && o.policy_action && !o.moved);
        assert_eq!((o.propensity_ppm, o.wait_us), (950_000, 1));
        let meta = |k: &str| ds.meta[k].parse::<u64>().unwrap();
        assert_eq!(meta("rows"), 3);
        assert_eq!(meta("dropped"), 7);
        assert_eq!(meta("over_limit"), 1);
        assert_eq!(meta("malformed"), 2);
        assert_eq!(meta("censored"), 1);
        assert_eq!(meta("unjoined"), 2);
        assert_eq!(meta("orphans"), 1);
        assert_eq!(meta("outcome_dropped"), 1);
        assert_eq!(meta("superseded"), 11);
        // 10 sent: 3 written, 1 over the limit, 1 malformed decision (the
        // other malformed record is of no known kind), 1 censored, 2
        // unjoined; 2 were never read.
        assert_eq!(meta("lost"), 2);
    }

    #[test]
    fn allowing_verdicts() {
        let allowed: Vec<u32> = (0..c::mig_verdict_NR_MIG_VERDICTS)
            .filter(|v| verdict_allows(*v as i32))
            .collect();
        assert_eq!(
            allowed,
            vec![
                c::mig_verdict_MIG_ALLOWED,
                c::mig_verdict_MIG_ALLOWED_FAILS,
                c::mig_verdict_MIG_ML_ALLOWED,
                c::mig_verdict_MIG_EXPLORE_ALLOWED
            ]
        );
        assert!(!verdict_allows(-1));
    }
}
