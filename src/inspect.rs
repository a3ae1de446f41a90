//! `scx_mlsched inspect MODEL`: print a model file's tree, feature
//! importance and metrics, or write it as Graphviz with --dot.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::Model;
use crate::train::print_importance;

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
    if let Some(dot) = &o.dot {
        if dot.as_os_str() == "-" {
            print!("{}", m.to_dot());
        } else {
            std::fs::write(dot, m.to_dot())?;
            println!("Graphviz written to {}", dot.display());
        }
        return Ok(());
    }
    println!("{}: {} v{}, schema {}", o.model.display(), m.format, m.version, m.schema_hash);
    println!("tree: depth {}, {} nodes, trained on {} rows of {}", m.depth, m.nodes.len(), m.training.rows, m.training.datasets.join(", "));
    println!("training: max_depth {}, min_samples_leaf {}, class_weight {}, seed {}",
        m.training.max_depth, m.training.min_samples_leaf, m.training.class_weight, m.training.seed);
    if let (Some(mean), Some(sd)) = (m.metrics.cv_accuracy_mean, m.metrics.cv_accuracy_std) {
        println!("cross-validation accuracy: {mean:.4} ± {sd:.4}");
    }
    if let Some(t) = &m.metrics.test {
        println!("test split:\n{t}");
    }
    for (name, h) in &m.metrics.holdout {
        println!("hold-out {name}:\n{h}");
    }
    print_importance(&m);
    println!("tree (x < threshold ? yes : no):");
    print!("{}", m.render());
    Ok(())
}
