//! The pfn ranges of the NUMA nodes, for the page-allocator tracepoint of
//! bpf/numa.bpf.h, which counts the pages each task allocates on each node.
//!
//! Why: the tracepoint sees a page frame number, and BPF has no
//! pfn-to-node helper.  /proc/zoneinfo gives every zone's node, first pfn
//! (`start_pfn:`) and span (`spanned`); a node's pages lie in its zones'
//! spans.  Both the scheduler and the collector load the same ranges
//! (`setup_numa_tracker!`), so the NUMA features mean the same on both sides.

use anyhow::{bail, Context, Result};

use crate::sched::bpf_intf as c;

/// Page frames [lo, hi) of node `nid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PfnRange {
    pub lo: u64,
    pub hi: u64,
    pub nid: i32,
}

/// The zones of /proc/zoneinfo as pfn ranges, in file order, empty zones
/// left out, neighbouring ranges of one node merged.
pub fn parse_zoneinfo(text: &str) -> Result<Vec<PfnRange>> {
    // (nid, spanned, start_pfn) of the zone being read
    let mut zone: Option<(i32, Option<u64>, Option<u64>)> = None;
    let mut zones = Vec::new();
    let mut finish = |z: Option<(i32, Option<u64>, Option<u64>)>| -> Result<()> {
        // The kernel prints `start_pfn:` only for a zone with pages: an
        // empty zone, or one whose span holds no page (a Device zone of
        // pmem or HMM), has none, and no page of ours to count.
        match z {
            None | Some((_, Some(0), _)) | Some((_, _, None)) => {}
            Some((nid, Some(spanned), Some(start))) => zones.push(PfnRange {
                lo: start,
                hi: start + spanned,
                nid,
            }),
            Some((nid, None, Some(_))) => {
                bail!("a zone of node {nid} has a `start_pfn:` line but no `spanned`")
            }
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let bad = || format!("/proc/zoneinfo line {}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("Node ") {
            finish(zone.take())?;
            let nid = rest
                .split(',')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .with_context(bad)?;
            zone = Some((nid, None, None));
            continue;
        }
        let Some(z) = zone.as_mut() else { continue };
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            Some("spanned") => &mut z.1,
            Some("start_pfn:") => &mut z.2,
            _ => continue,
        };
        *slot = Some(
            words
                .next()
                .and_then(|v| v.parse().ok())
                .with_context(bad)?,
        );
    }
    finish(zone.take())?;
    let mut out: Vec<PfnRange> = Vec::new();
    for r in zones {
        match out.last_mut() {
            Some(last) if last.nid == r.nid && last.hi == r.lo => last.hi = r.hi,
            _ => out.push(r),
        }
    }
    Ok(out)
}

/// Ranges the tracker can use: some, and no two of different nodes
/// overlapping (spans include holes, and the kernel allows interleaved
/// node spans; the lookup takes the first match, so an overlap would count
/// one node's pages on another).
pub fn check_ranges(ranges: &[PfnRange]) -> Result<()> {
    if ranges.is_empty() {
        bail!("/proc/zoneinfo lists no populated zone");
    }
    for (i, a) in ranges.iter().enumerate() {
        if let Some(b) = ranges[i + 1..]
            .iter()
            .find(|b| b.nid != a.nid && a.lo < b.hi && b.lo < a.hi)
        {
            bail!(
                "the pfn spans of nodes {} [{}, {}) and {} [{}, {}) overlap: pages cannot be told apart by node",
                a.nid, a.lo, a.hi, b.nid, b.lo, b.hi
            );
        }
    }
    Ok(())
}

/// This machine's node pfn ranges, at most NUMA_PFN_RANGES of them (the
/// rest are left out with a warning: their pages count on no node).
pub fn node_pfn_ranges() -> Result<Vec<PfnRange>> {
    let text = std::fs::read_to_string("/proc/zoneinfo").context("reading /proc/zoneinfo")?;
    let mut ranges = parse_zoneinfo(&text)?;
    check_ranges(&ranges)?;
    let max = c::mlsched_consts_NUMA_PFN_RANGES as usize;
    if ranges.len() > max {
        log::warn!(
            "{} zone pfn ranges, {max} tracked: pages of the others count on no node",
            ranges.len()
        );
        ranges.truncate(max);
    }
    Ok(ranges)
}

/// Load the page-allocator tracepoint only where it can tell nodes apart:
/// with one node every NUMA feature is 0 (src and dst share the node) and
/// counting every page allocation would be pure cost.
pub fn track_pages(nr_nodes: usize) -> bool {
    nr_nodes > 1
}

/// Where libbpf looks up a tracepoint's id to attach to it: tracefs, or
/// tracefs under debugfs.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Whether kmem:mm_page_alloc can be attached to (tracefs is mounted and
/// the kernel has the event).
fn tracepoint_visible() -> bool {
    TRACEFS.iter().any(|d| {
        std::path::Path::new(d)
            .join("events/kmem/mm_page_alloc/id")
            .exists()
    })
}

/// Why the tracker cannot attach, for messages.
const NOT_VISIBLE: &str = "kmem:mm_page_alloc is not visible (is tracefs mounted? \
     `mount -t tracefs nodev /sys/kernel/tracing`)";

/// The node pfn ranges to load the tracker with, when it is `wanted`
/// (None: not wanted); an error says why it cannot run here.
pub fn tracker_ranges(wanted: bool) -> Result<Option<Vec<PfnRange>>> {
    if !wanted {
        return Ok(None);
    }
    if !tracepoint_visible() {
        bail!("{NOT_VISIBLE}");
    }
    node_pfn_ranges().map(Some)
}

/// Set up the NUMA page tracker of an opened skeleton (main.bpf.c,
/// collect.bpf.c or tree.bpf.c, which all include numa.bpf.h): with
/// `Some(ranges)` (an `Option<&[PfnRange]>`), the node pfn ranges go into
/// its rodata and its tracepoint program loads; with None, the program
/// does not load and its task map shrinks to one entry (an LRU hash is
/// preallocated: 65,536 entries are about 8 MiB).  Evaluates to
/// anyhow::Result<()>.
#[macro_export]
macro_rules! setup_numa_tracker {
    ($open:expr, $ranges:expr) => {{
        let open = $open;
        let ranges: Option<&[$crate::sched::numa::PfnRange]> = $ranges;
        let mut res: anyhow::Result<()> = Ok(());
        if let Some(ranges) = ranges {
            let rodata = open.maps.rodata_data.as_mut().unwrap();
            for (i, r) in ranges.iter().enumerate() {
                rodata.numa_pfn_lo[i] = r.lo;
                rodata.numa_pfn_hi[i] = r.hi;
                rodata.numa_pfn_nid[i] = r.nid;
            }
            rodata.nr_numa_pfn_ranges = ranges.len() as u32;
            log::info!(
                "NUMA page tracker on: pages per task and node, {} node pfn ranges",
                ranges.len()
            );
        } else if let Err(e) = open.maps.numa_pages_map.set_max_entries(1) {
            res = Err(anyhow::Error::from(e).context("shrinking numa_pages_map"));
        }
        open.progs
            .mls_numa_page_alloc
            .set_autoload(ranges.is_some());
        res
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(node: i32, name: &str, spanned: u64, start: u64) -> String {
        format!(
            "Node {node}, zone {name:>8}\n  per-node stats\n      nr_inactive_anon 5\n  pages free     3840\n        \
             min      1\n        spanned  {spanned}\n        present  {spanned}\n        \
             protection: (0, 1, 2)\n  pagesets\n    cpu: 0\n              count: 0\n  \
             node_unreclaimable:  0\n  start_pfn:           {start}\n"
        )
    }

    #[test]
    fn zones_become_merged_node_ranges() {
        let text = [
            zone(0, "DMA", 4095, 1),
            zone(0, "DMA32", 258048, 4096),
            zone(0, "Normal", 0, 0),
            zone(0, "Movable", 0, 0).replace("start_pfn:", "gone:"),
            zone(1, "DMA", 0, 0),
            zone(1, "Normal", 262144, 262144),
        ]
        .concat();
        assert_eq!(
            parse_zoneinfo(&text).unwrap(),
            vec![
                PfnRange {
                    lo: 1,
                    hi: 262144,
                    nid: 0
                },
                PfnRange {
                    lo: 262144,
                    hi: 524288,
                    nid: 1
                },
            ]
        );
    }

    #[test]
    fn interleaved_nodes_stay_apart() {
        let text = [
            zone(0, "Normal", 10, 0),
            zone(1, "Normal", 10, 10),
            zone(0, "Movable", 10, 20),
        ]
        .concat();
        let r = parse_zoneinfo(&text).unwrap();
        assert_eq!(r.iter().map(|r| r.nid).collect::<Vec<_>>(), vec![0, 1, 0]);
    }

    #[test]
    fn a_zone_without_pages_is_left_out_and_bad_lines_are_errors() {
        // A Device zone: a span, but no page and so no start_pfn line.
        let device = zone(1, "Device", 4096, 1 << 30).replace("start_pfn:", "gone:");
        let text = [zone(0, "Normal", 10, 0), device].concat();
        assert_eq!(
            parse_zoneinfo(&text).unwrap(),
            vec![PfnRange {
                lo: 0,
                hi: 10,
                nid: 0
            }]
        );
        let text = zone(0, "DMA", 10, 1).replace("spanned", "spread");
        let e = parse_zoneinfo(&text).unwrap_err().to_string();
        assert!(e.contains("node 0"), "{e}");
        assert!(parse_zoneinfo("Node x, zone DMA\n").is_err());
    }

    #[test]
    fn overlapping_nodes_and_no_zone_are_refused() {
        let r = |lo, hi, nid| PfnRange { lo, hi, nid };
        assert!(check_ranges(&[r(0, 10, 0), r(10, 20, 1), r(20, 30, 0)]).is_ok());
        let e = check_ranges(&[r(0, 10, 0), r(5, 20, 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlap"), "{e}");
        assert!(check_ranges(&[]).is_err());
    }

    #[test]
    fn pages_are_tracked_only_with_nodes_to_tell_apart() {
        assert!(!track_pages(1));
        assert!(track_pages(2));
        assert!(tracker_ranges(false).unwrap().is_none());
    }

    #[test]
    fn this_machine_has_ranges() {
        // Every Linux machine has at least one populated zone.
        let r = node_pfn_ranges().unwrap();
        assert!(!r.is_empty());
        assert!(r.iter().all(|r| r.lo < r.hi && r.nid >= 0));
    }
}
