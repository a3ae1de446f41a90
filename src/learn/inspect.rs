//! `scx_mlsched inspect MODEL`: print a model file's tree, feature
//! importance and metrics, or write it as Graphviz with --dot.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::learn::model::Model;
use crate::learn::train::importance_text;

#[derive(Debug, Clone, Args)]
pub struct InspectOpts {
    /// Model file (JSON).
    pub model: PathBuf,
    /// Write the tree as Graphviz to this file ("-": standard output).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
}

pub fn run(o: &InspectOpts) -> Result<()> {
    let m = Model::load(&o.model)?;
    let mut out = String::new();
    match &o.dot {
        Some(dot) if dot.as_os_str() == "-" => out = m.to_dot(),
        Some(dot) => {
            std::fs::write(dot, m.to_dot())?;
            writeln!(out, "Graphviz written to {}", dot.display())?;
        }
        None => report(&o.model, &m, &mut out)?,
    }
    // A closed pipe (`| head`) is not an error.
    match std::io::stdout().write_all(out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn report(path: &std::path::Path, m: &Model, out: &mut String) -> std::fmt::Result {
    writeln!(
        out,
        "{}: {} v{}, schema {}",
        path.display(),
        m.format,
        m.version,
        m.schema_hash
    )?;
    writeln!(
        out,
        "tree: depth {}, {} nodes, trained on {} rows of {}",
        m.depth,
        m.nodes.len(),
        m.training.rows,
        m.training.datasets.join(", ")
    )?;
    writeln!(
        out,
        "training: max_depth {}, min_samples_leaf {}, class_weight {}, seed {}",
        m.training.max_depth, m.training.min_samples_leaf, m.training.class_weight, m.training.seed
    )?;
    if let (Some(mean), Some(sd)) = (m.metrics.cv_accuracy_mean, m.metrics.cv_accuracy_std) {
        writeln!(out, "cross-validation accuracy: {mean:.4} ± {sd:.4}")?;
    }
    if let Some(t) = &m.metrics.test {
        writeln!(out, "test split:\n{t}")?;
    }
    for (name, h) in &m.metrics.holdout {
        writeln!(out, "hold-out {name}:\n{h}")?;
    }
    out.push_str(&importance_text(m));
    writeln!(out, "tree (x < threshold ? yes : no):")?;
    out.push_str(&m.render());
    Ok(())
}
