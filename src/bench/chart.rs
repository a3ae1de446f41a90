//! The benchmark's chart: one panel per headline metric, each scheduler's
//! paired ratio to the default scheduler as a point with its 95% t-interval
//! (a point alone below summary::MIN_ROUNDS rounds), and a line at 1.0 (no
//! difference).  Drawn with plotters into a
//! PNG; text uses DejaVu Sans (Debian's fonts-dejavu-core, which
//! bench/setup.sh installs), registered at run time so the build needs no
//! fontconfig.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use super::plan::BASELINE;
use super::record::{headline, Better};
use super::report::Environment;
use super::summary::{ArmSummary, MIN_ROUNDS};
use super::workload::Shape;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut res = Ok(());
    ONCE.call_once(|| {
        res = std::fs::read(FONT)
            .with_context(|| format!("reading {FONT} (apt-get install fonts-dejavu-core)"))
            .and_then(|bytes| {
                plotters::style::register_font(
                    "sans-serif",
                    FontStyle::Normal,
                    Box::leak(bytes.into_boxed_slice()),
                )
                .map_err(|_| anyhow!("{FONT} is not a usable font"))
            });
    });
    res
}

pub fn draw(path: &Path, env: &Environment, shape: Shape, arms: &[ArmSummary]) -> Result<()> {
    register_font()?;
    let shown: Vec<&ArmSummary> = arms
        .iter()
        .filter(|a| a.arm != BASELINE && a.unavailable.is_none())
        .collect();
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (title, body) = root.split_vertically(50);
    title
        .draw_text(
            &format!(
                "scx_mlsched bench, compile shape {}: ratio to the default scheduler, {} ({}, {}, {} rounds)",
                shape.name(),
                if env.rounds as usize >= MIN_ROUNDS {
                    "95% t-interval".to_string()
                } else {
                    format!("no interval below {MIN_ROUNDS} rounds")
                },
                env.machine,
                if env.emulated { "emulated" } else { "native" },
                env.rounds
            ),
            &("sans-serif", 20).into_text_style(&title),
            (20, 15),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let panels = body.split_evenly((2, 2));
    for (panel, (mi, metric)) in panels.iter().zip(headline().iter().enumerate()) {
        let cells: Vec<(usize, f64, f64, f64)> = shown
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                // Below MIN_ROUNDS a ratio has no interval: a point alone.
                a.cells[mi].ratio.map(|r| {
                    let (lo, hi) = r.ci.map_or((r.point, r.point), |c| (c.lo, c.hi));
                    (i, r.point, lo, hi)
                })
            })
            .collect();
        let (lo, hi) = cells
            .iter()
            .fold((1.0f64, 1.0f64), |(l, h), c| (l.min(c.2), h.max(c.3)));
        let pad = ((hi - lo) * 0.15).max(0.05);
        let n = shown.len().max(1);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{}{}",
                    metric.label,
                    match metric.better {
                        Better::Lower => ", lower is better",
                        Better::Higher => ", higher is better",
                        Better::Neither => "",
                    }
                ),
                ("sans-serif", 18),
            )
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    shown
                        .get(i as usize)
                        .map_or(String::new(), |a| a.arm.clone())
                } else {
                    String::new()
                }
            })
            .y_desc("ratio")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(
                [(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
                BLACK.mix(0.5),
            ))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(
                cells.iter().map(|&(i, p, l, h)| {
                    ErrorBar::new_vertical(i as f64, l, p, h, BLUE.filled(), 12)
                }),
            )
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(
                cells
                    .iter()
                    .map(|&(i, p, _, _)| Circle::new((i as f64, p), 5, BLUE.filled())),
            )
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::RunRecord;
    use crate::bench::summary::summarize;

    #[test]
    fn draws_a_png_with_the_ratios() {
        if !Path::new(FONT).exists() {
            // The font is a runtime dependency that bench/setup.sh installs;
            // without it `draw` must say so rather than panic.
            let dir = tempfile::tempdir().unwrap();
            let err = draw(
                &dir.path().join("x.png"),
                &Environment::default(),
                Shape::Make,
                &[],
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains("fonts-dejavu-core"));
            return;
        }
        let mut runs = Vec::new();
        for round in 1..4 {
            for (arm, f) in [("default", 1.0), ("a", 0.8), ("b", 1.1)] {
                let mut r = RunRecord {
                    arm: arm.into(),
                    round,
                    ok: true,
                    compile_wall_s: 100.0 * f + round as f64,
                    ..Default::default()
                };
                r.fio.iops = 1000.0 / f;
                r.fio.clat_p99_us = 10.0 * f;
                r.latency.p99_us = 20.0;
                runs.push(r);
            }
        }
        let arms: Vec<String> = ["default", "a", "b"].map(String::from).to_vec();
        let s = summarize(&runs, &arms, "default", &[]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ratios.png");
        draw(&p, &Environment::default(), Shape::Units, &s).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5000, "a blank image: {} bytes", bytes.len());
    }
}
