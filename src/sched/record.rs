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

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use log::{info, warn};

use scx_utils::NR_CPU_IDS;

use crate::cli::RunOpts;
use crate::learn::dataset::{self, RowCtx, Writer};
use crate::sched::bpf_intf as c;

pub struct Recorder {
    writer: Writer,
    max_rows: u64,
    written: u64,
    over_limit: u64,
    malformed: u64,
    /// Records BPF could not queue (STAT_RECORDS_DROPPED), summed over the
    /// scheduler's instances (a restart reloads BPF and its counters).
    dropped: u64,
    /// Records BPF queued (STAT_RECORDS), summed the same way.
    sent: u64,
}

/// Does enum mig_verdict `v` let the task move?
pub fn verdict_allows(v: i32) -> bool {
    matches!(
        u32::try_from(v),
        Ok(c::mig_verdict_MIG_ALLOWED
            | c::mig_verdict_MIG_ALLOWED_FAILS
            | c::mig_verdict_MIG_ML_ALLOWED)
    )
}

pub fn parse_record(data: &[u8]) -> Result<c::mig_record> {
    let size = std::mem::size_of::<c::mig_record>();
    if data.len() < size {
        bail!("record of {} bytes, expected {size}", data.len());
    }
    // The ring buffer gives 8-byte aligned records, but read unaligned anyway.
    Ok(unsafe { std::ptr::read_unaligned(data.as_ptr() as *const c::mig_record) })
}

impl Recorder {
    /// The file of `run --record`, its header saying how it was made.
    pub fn for_run(path: &Path, o: &RunOpts) -> Result<Self> {
        let [kernel, host] = dataset::host_meta();
        Self::create(
            path,
            o.record_max,
            &[
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
            ],
        )
    }

    /// `meta`: the run's settings, written in the file's header.
    pub fn create(path: &Path, max_rows: u64, meta: &[(&str, String)]) -> Result<Self> {
        let writer = Writer::create_with_context(path, meta)?;
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
            dropped: 0,
            sent: 0,
        })
    }

    /// One record from the ring buffer.
    pub fn push_bytes(&mut self, data: &[u8]) -> Result<()> {
        let r = match parse_record(data) {
            Ok(r) => r,
            Err(e) => {
                self.malformed += 1;
                return Err(e);
            }
        };
        if self.written >= self.max_rows {
            self.over_limit += 1;
            return Ok(());
        }
        let ctx = RowCtx {
            point: r.point as i64,
            src: r.src as i64,
            dst: r.dst as i64,
        };
        self.writer
            .write_ctx(&r.in_.f, verdict_allows(r.verdict), ctx)?;
        self.written += 1;
        Ok(())
    }

    /// One scheduler instance's counts, read once it is detached: records
    /// BPF queued (STAT_RECORDS) and records it could not queue
    /// (STAT_RECORDS_DROPPED).
    pub fn add_bpf_counts(&mut self, sent: u64, dropped: u64) {
        self.sent += sent;
        self.dropped += dropped;
    }

    /// Records BPF queued that were never read (none once the ring buffer is
    /// drained after the scheduler is detached).
    fn lost(&self) -> u64 {
        self.sent
            .saturating_sub(self.written + self.over_limit + self.malformed)
    }

    /// Close the file with its trailer.
    pub fn finish(self) -> Result<PathBuf> {
        let dropped = self.dropped;
        let lost = self.lost();
        let path = self.writer.finish(&[
            ("dropped", dropped.to_string()),
            ("over_limit", self.over_limit.to_string()),
            ("malformed", self.malformed.to_string()),
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

    fn raw(f0: i64, verdict: u32, point: u32) -> Vec<u8> {
        let mut r: c::mig_record = unsafe { std::mem::zeroed() };
        r.in_.f[0] = f0;
        r.in_.f[NR_FEATURES - 1] = -f0;
        r.src = 2;
        r.dst = 5;
        r.verdict = verdict as i32;
        r.point = point;
        let p = &r as *const c::mig_record as *const u8;
        unsafe { std::slice::from_raw_parts(p, std::mem::size_of::<c::mig_record>()) }.to_vec()
    }

    /// Records become rows with the verdict as label and the context;
    /// rows past the limit and short records are counted, not written.
    #[test]
    fn records_become_a_bounded_serving_dataset() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("serving.csv");
        let mut rec = Recorder::create(&path, 3, &[("workload", "unit".into())]).unwrap();
        let cpu = c::mig_point_POINT_STEAL_CPU_DSQ;
        let llc = c::mig_point_POINT_STEAL_LLC_DSQ;
        rec.push_bytes(&raw(1, c::mig_verdict_MIG_ALLOWED, cpu))
            .unwrap();
        rec.push_bytes(&raw(2, c::mig_verdict_MIG_DENY_HOT, llc))
            .unwrap();
        assert!(rec.push_bytes(&raw(9, 0, cpu)[..8]).is_err());
        rec.push_bytes(&raw(3, c::mig_verdict_MIG_ML_ALLOWED, cpu))
            .unwrap();
        rec.push_bytes(&raw(4, c::mig_verdict_MIG_ALLOWED, cpu))
            .unwrap();
        // Two instances (a restart): 5 + 2 sent, 4 + 3 dropped.  4 rows were
        // pushed whole and one short: 7 - 5 = 2 were never read.
        rec.add_bpf_counts(5, 4);
        rec.add_bpf_counts(2, 3);
        rec.finish().unwrap();

        let ds = dataset::read(&path).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.y, vec![true, false, true]);
        assert_eq!(ds.x[1][0], 2);
        assert_eq!(ds.x[1][NR_FEATURES - 1], -2);
        assert_eq!(
            ds.ctx[1],
            RowCtx {
                point: llc as i64,
                src: 2,
                dst: 5
            }
        );
        assert_eq!(ds.meta["dropped"], "7");
        assert_eq!(ds.meta["over_limit"], "1");
        assert_eq!(ds.meta["malformed"], "1");
        assert_eq!(ds.meta["lost"], "2");
        assert_eq!(ds.meta["rows"], "3");
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
                c::mig_verdict_MIG_ML_ALLOWED
            ]
        );
        assert!(!verdict_allows(-1));
    }
}
