//! Model files: a decision tree as a flat node array that BPF can walk.
//!
//! Format (JSON, `format: "scx_mlsched-tree"`, `version: 1`, or 2 for a
//! model that declares other points than the steals): the schema
//! hash and feature names, the training metrics, and `nodes`, where node 0
//! is the root and each node is either
//!   internal: `feature` (index), `threshold` (integer): x[feature] < threshold -> `left`, else `right`
//!   leaf:     `feature` = -1, `verdict` 0 (stay) or 1 (migrate)
//! Children always have larger indices than their parent, so a walk ends;
//! depth and node count are bounded by MODEL_MAX_DEPTH / MODEL_MAX_NODES
//! (bpf/intf.h), what the BPF evaluator accepts.
//!
//! Thresholds are integers: linfa splits at x < s with s a float midpoint;
//! for integer x, x < s exactly when x < ceil(s), so the integer tree gives
//! linfa's prediction on every integer vector (tests check it).
//!
//! `points` names the decision points (enum mig_point, by the names of
//! `dataset::point_name`) the model was trained for: under `--policy ml`
//! the tree decides there, and each other point's heuristic decides.  A
//! file without it was trained for the steals, the only points the
//! scheduler asked its gate before issue #23.
//!
//! A trained model also carries `linfa`, linfa-trees' own `DecisionTree`
//! (its serde form, with float splits): the scheduler's userspace twin
//! (src/sched/twin.rs) predicts with it to check every sampled BPF verdict.
//! A model without it (written by hand, e.g. the adversarial test models)
//! gets one built from its nodes by `linfa_tree()`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use linfa_trees::{DecisionTree, TreeNode};
use serde::{Deserialize, Serialize};

use crate::learn::features::{FeatureVec, NR_FEATURES, SCHEMA};
use crate::learn::metrics::Metrics;
use crate::sched::bpf_intf as c;

pub const FORMAT: &str = "scx_mlsched-tree";
/// The newest format version: 2 is a model that declares other points than
/// the steals (an older binary, which reads version 1 only, would apply it
/// at the steals); a steal model is still written as version 1.
pub const VERSION: u32 = 2;
pub const MAX_NODES: usize = c::mlsched_consts_MODEL_MAX_NODES as usize;
pub const MAX_DEPTH: usize = c::mlsched_consts_MODEL_MAX_DEPTH as usize;
/// A model file larger than this is refused before parsing.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub feature: i32,
    #[serde(default)]
    pub threshold: i64,
    #[serde(default)]
    pub left: u32,
    #[serde(default)]
    pub right: u32,
    #[serde(default)]
    pub verdict: u8,
}

impl Node {
    /// A leaf: 1 migrate, 0 stay.
    pub fn leaf(verdict: u8) -> Self {
        Node {
            feature: -1,
            threshold: 0,
            left: 0,
            right: 0,
            verdict,
        }
    }

    /// An internal node: x[feature] < threshold goes to `left` (tests build
    /// trees by hand).
    #[cfg(test)]
    pub fn split(feature: i32, threshold: i64, left: u32, right: u32) -> Self {
        Node {
            feature,
            threshold,
            left,
            right,
            verdict: 0,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.feature < 0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub version: u32,
    pub schema_hash: String,
    pub features: Vec<String>,
    pub depth: usize,
    pub nodes: Vec<Node>,
    /// The decision points the model decides at (names of enum mig_point).
    #[serde(default = "steal_points")]
    pub points: Vec<String>,
    /// Share of the impurity decrease per feature (sums to 1), from linfa.
    pub importance: Vec<f64>,
    pub metrics: ModelMetrics,
    pub training: TrainingInfo,
    /// linfa's tree, as trained (absent in hand-written models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linfa: Option<DecisionTree<f64, usize>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelMetrics {
    pub test: Option<Metrics>,
    pub cv_accuracy_mean: Option<f64>,
    pub cv_accuracy_std: Option<f64>,
    pub holdout: Vec<(String, Metrics)>,
    /// Cross-validation accuracy at each depth up to the tree's --max-depth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cv_depth_curve: Vec<(usize, f64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub datasets: Vec<String>,
    pub rows: usize,
    pub max_depth: usize,
    pub min_samples_leaf: f32,
    pub class_weight: String,
    pub seed: u64,
    /// Trained only on rows of decision points the scheduler has
    /// (`train --scheduler-points`).
    #[serde(default)]
    pub scheduler_points: bool,
    /// How the test split was drawn (`train --split`); empty in models
    /// written before the field: stratified.
    #[serde(default)]
    pub split: String,
    /// What the tree learned: empty (imitation of the label) or "outcome"
    /// (`train --target outcome`: the cheaper action).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// With the outcome target: the penalty per move in the cost (us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty_us: Option<f64>,
}

/// Integer threshold with `x < t` equivalent to linfa's `x as f64 < split` for integer x.
pub fn int_threshold(split: f64) -> Result<i64> {
    if !split.is_finite() {
        bail!("split value {split} is not finite");
    }
    let t = split.ceil();
    if t.abs() > 9.0e15 {
        bail!("split value {split} is beyond exact integer range");
    }
    Ok(t as i64)
}

fn flatten(node: &TreeNode<f64, usize>, out: &mut Vec<Node>) -> Result<u32> {
    let idx = out.len();
    if out.len() >= MAX_NODES {
        bail!("the tree has more than {MAX_NODES} nodes; lower --max-depth");
    }
    if node.is_leaf() {
        let verdict = node.prediction().context("leaf without prediction")?;
        out.push(Node::leaf((verdict != 0) as u8));
        return Ok(idx as u32);
    }
    let (feature, split, _) = node.split();
    out.push(Node {
        feature: feature as i32,
        threshold: int_threshold(split)?,
        left: 0,
        right: 0,
        verdict: 0,
    });
    let kids = node.children();
    let (Some(l), Some(r)) = (kids[0].as_deref(), kids[1].as_deref()) else {
        bail!("internal node without two children");
    };
    let left = flatten(l, out)?;
    let right = flatten(r, out)?;
    out[idx].left = left;
    out[idx].right = right;
    Ok(idx as u32)
}

/// The points of a model file that names none: the steals.
pub fn steal_points() -> Vec<String> {
    [
        c::mig_point_POINT_STEAL_CPU_DSQ,
        c::mig_point_POINT_STEAL_LLC_DSQ,
    ]
    .map(|p| crate::learn::dataset::point_name(p as i64).to_string())
    .to_vec()
}

/// Parse point names (the scheduler's points only) into enum mig_point values.
pub fn parse_points(names: &[String]) -> Result<Vec<u32>> {
    if names.is_empty() {
        bail!("a model must decide at one point at least");
    }
    let known = || {
        crate::sched::heuristic::SCHEDULER_POINTS
            .map(|p| crate::learn::dataset::point_name(p as i64))
            .join(", ")
    };
    names
        .iter()
        .map(|n| {
            crate::learn::dataset::point_by_name(n)
                .filter(|p| crate::sched::heuristic::SCHEDULER_POINTS.contains(p))
                .with_context(|| {
                    format!(
                        "{n:?} is not a decision point of the scheduler (known: {})",
                        known()
                    )
                })
        })
        .collect()
}

impl Model {
    /// The same model, deciding at `points` (names of enum mig_point), in
    /// the version that says so.
    pub fn deciding_at(self, points: Vec<String>) -> Self {
        let version = if points == steal_points() { 1 } else { VERSION };
        Self {
            points,
            version,
            ..self
        }
    }

    /// The points the model decides at, as model_bank.points: bit 1 << point.
    pub fn points_mask(&self) -> Result<u32> {
        Ok(parse_points(&self.points)?
            .into_iter()
            .fold(0, |m, p| m | 1 << p))
    }

    pub fn from_linfa(
        tree: &DecisionTree<f64, usize>,
        metrics: ModelMetrics,
        training: TrainingInfo,
    ) -> Result<Self> {
        let mut nodes = Vec::new();
        flatten(tree.root_node(), &mut nodes)?;
        let mut importance = tree.feature_importance();
        importance.resize(NR_FEATURES, 0.0);
        let model = Model {
            format: FORMAT.into(),
            version: 1,
            schema_hash: SCHEMA.hash_hex(),
            features: SCHEMA.names().map(str::to_string).collect(),
            depth: 0,
            nodes,
            points: steal_points(),
            importance: importance
                .iter()
                .map(|v| if v.is_finite() { *v } else { 0.0 })
                .collect(),
            metrics,
            training,
            linfa: Some(tree.clone()),
        };
        let depth = model.validate()?;
        Ok(Model { depth, ..model })
    }

    /// Check everything the BPF side relies on; returns the depth.
    pub fn validate(&self) -> Result<usize> {
        if self.format != FORMAT {
            bail!(
                "not an scx_mlsched model (format {:?}, expected {FORMAT:?})",
                self.format
            );
        }
        if !(1..=VERSION).contains(&self.version) {
            bail!(
                "model version {} is not supported (this build reads versions 1 to {VERSION})",
                self.version
            );
        }
        self.points_mask()?;
        if self.schema_hash != SCHEMA.hash_hex() {
            bail!(
                "model feature schema {} differs from this build's {} (bpf/features.def changed); retrain it",
                self.schema_hash,
                SCHEMA.hash_hex()
            );
        }
        let n = self.nodes.len();
        if n == 0 {
            bail!("model has no nodes");
        }
        if n > MAX_NODES {
            bail!("model has {n} nodes, more than the {MAX_NODES} the BPF evaluator accepts");
        }
        let mut depth = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_leaf() {
                if node.verdict > 1 {
                    bail!("node {i}: leaf verdict {} is not 0 or 1", node.verdict);
                }
                continue;
            }
            if node.feature as usize >= NR_FEATURES {
                bail!(
                    "node {i}: feature index {} out of range (0..{NR_FEATURES})",
                    node.feature
                );
            }
            for (side, child) in [("left", node.left), ("right", node.right)] {
                let child = child as usize;
                if child >= n {
                    bail!("node {i}: {side} child {child} out of range (0..{n})");
                }
                if child <= i {
                    bail!("node {i}: {side} child {child} does not come after its parent (the walk could loop)");
                }
                depth[child] = depth[child].max(depth[i] + 1);
            }
        }
        let max = depth.into_iter().max().unwrap_or(0);
        if max > MAX_DEPTH {
            bail!("model depth {max} exceeds the BPF evaluator's limit of {MAX_DEPTH}");
        }
        Ok(max)
    }

    /// Walk the flat tree on integer features, exactly as BPF does.
    pub fn predict(&self, x: &FeatureVec) -> bool {
        let mut i = 0usize;
        for _ in 0..=MAX_DEPTH {
            let n = &self.nodes[i];
            if n.is_leaf() {
                return n.verdict == 1;
            }
            i = if x[n.feature as usize] < n.threshold {
                n.left
            } else {
                n.right
            } as usize;
        }
        false
    }

    /// linfa's `DecisionTree` of this model: the trained one it carries, or
    /// one built from the flat nodes (through linfa-trees' serde form, since
    /// its fields are private).  Integer thresholds become float splits,
    /// which compare alike on integer features below 2^53.
    pub fn linfa_tree(&self) -> Result<DecisionTree<f64, usize>> {
        if let Some(t) = &self.linfa {
            return Ok(t.clone());
        }
        self.validate()?;
        fn node(m: &Model, i: usize, depth: usize) -> serde_json::Value {
            let n = &m.nodes[i];
            let (left, right) = if n.is_leaf() {
                (serde_json::Value::Null, serde_json::Value::Null)
            } else {
                (
                    node(m, n.left as usize, depth + 1),
                    node(m, n.right as usize, depth + 1),
                )
            };
            serde_json::json!({
                "feature_idx": n.feature.max(0),
                "feature_name": if n.is_leaf() { "" } else { m.name(n.feature) },
                "split_value": n.threshold as f64,
                "impurity_decrease": 0.0,
                "left_child": left,
                "right_child": right,
                "leaf_node": n.is_leaf(),
                "prediction": n.verdict as usize,
                "depth": depth,
            })
        }
        let json =
            serde_json::json!({ "root_node": node(self, 0, 0), "num_features": NR_FEATURES });
        serde_json::from_value(json).context("building linfa's tree from the model's nodes")
    }

    /// Parse and validate a model from its JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let model: Model = serde_json::from_str(text)
            .with_context(|| format!("{origin}: not a valid model file"))?;
        model
            .validate()
            .with_context(|| format!("{origin}: invalid model"))?;
        Ok(model)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if size > MAX_FILE_BYTES {
            bail!(
                "{}: {size} bytes, larger than any valid model ({MAX_FILE_BYTES} bytes)",
                path.display()
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text, &path.display().to_string())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    fn name(&self, f: i32) -> &str {
        self.features
            .get(f as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Indented text, one node a line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![(0usize, 0usize, String::new())];
        while let Some((i, d, prefix)) = stack.pop() {
            let n = &self.nodes[i];
            let pad = "  ".repeat(d);
            if n.is_leaf() {
                let _ = writeln!(
                    out,
                    "{pad}{prefix}-> {}",
                    if n.verdict == 1 { "migrate" } else { "stay" }
                );
            } else {
                let _ = writeln!(
                    out,
                    "{pad}{prefix}[{i}] {} < {} ?",
                    self.name(n.feature),
                    n.threshold
                );
                stack.push((n.right as usize, d + 1, "no:  ".into()));
                stack.push((n.left as usize, d + 1, "yes: ".into()));
            }
        }
        out
    }

    /// Graphviz.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph scx_mlsched_tree {\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_leaf() {
                let (label, color) = if n.verdict == 1 {
                    ("migrate", "palegreen")
                } else {
                    ("stay", "lightpink")
                };
                let _ = writeln!(
                    out,
                    "  n{i} [label=\"{label}\", style=filled, fillcolor={color}];"
                );
            } else {
                let _ = writeln!(
                    out,
                    "  n{i} [label=\"{} < {}\"];",
                    self.name(n.feature),
                    n.threshold
                );
                let _ = writeln!(
                    out,
                    "  n{i} -> n{} [label=\"yes\"];\n  n{i} -> n{} [label=\"no\"];",
                    n.left, n.right
                );
            }
        }
        out.push_str("}\n");
        out
    }
}

/// linfa's own prediction for one integer vector (migrate?).
pub fn linfa_predict(t: &DecisionTree<f64, usize>, x: &FeatureVec) -> bool {
    use linfa::prelude::Predict;
    let row = ndarray::Array2::from_shape_fn((1, NR_FEATURES), |(_, j)| x[j] as f64);
    let y: ndarray::Array1<usize> = t.predict(&row);
    y[0] != 0
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sched::bpf_intf as c;
    use proptest::prelude::*;

    /// The feature tiny() splits on.
    const HOT: usize = c::mlsched_feature_FEAT_delta_hot as usize;

    pub fn leaf(v: u8) -> Node {
        Node::leaf(v)
    }

    pub fn tiny() -> Model {
        Model {
            format: FORMAT.into(),
            version: 1,
            schema_hash: SCHEMA.hash_hex(),
            features: SCHEMA.names().map(str::to_string).collect(),
            depth: 1,
            nodes: vec![Node::split(HOT as i32, 1, 1, 2), leaf(1), leaf(0)],
            points: steal_points(),
            importance: vec![0.0; NR_FEATURES],
            metrics: ModelMetrics::default(),
            training: TrainingInfo::default(),
            linfa: None,
        }
    }

    #[test]
    fn linfa_tree_built_from_nodes_predicts_like_the_walk() {
        let m = tiny();
        let t = m.linfa_tree().unwrap();
        let mut x = [0i64; NR_FEATURES];
        for v in [-3, 0, 1, 2] {
            x[HOT] = v;
            assert_eq!(linfa_predict(&t, &x), m.predict(&x), "delta_hot = {v}");
        }
        // a wrong tree is seen as wrong: flip a leaf in the nodes only
        let mut bad = m.clone();
        bad.linfa = Some(t);
        bad.nodes[1].verdict = 0;
        x[HOT] = 0;
        assert_ne!(
            linfa_predict(bad.linfa.as_ref().unwrap(), &x),
            bad.predict(&x)
        );
    }

    #[test]
    fn tiny_model_predicts_and_validates() {
        let m = tiny();
        assert_eq!(m.validate().unwrap(), 1);
        let mut x = [0i64; NR_FEATURES];
        assert!(m.predict(&x));
        x[HOT] = 1;
        assert!(!m.predict(&x));
        assert!(m.render().contains("delta_hot < 1"));
        assert!(m.to_dot().contains("n0 -> n1"));
    }

    /// A model that declares the steals only stays version 1 (what older
    /// binaries read, with the same meaning); one that declares any other
    /// point is version 2, which they refuse.  A file without `points`
    /// decides the steals.
    #[test]
    fn declared_points_set_the_version() {
        let steals = tiny().deciding_at(steal_points());
        assert_eq!(steals.version, 1);
        let wake = tiny().deciding_at(vec!["wake_idle".into(), "steal_cpu_dsq".into()]);
        assert_eq!(wake.version, 2);
        assert!(wake.validate().is_ok());
        let mut json: serde_json::Value = serde_json::to_value(tiny()).unwrap();
        json.as_object_mut().unwrap().remove("points");
        let old: Model = serde_json::from_value(json).unwrap();
        assert_eq!(old.points, steal_points());
    }

    #[test]
    fn invalid_models_are_refused_with_a_reason() {
        let check = |f: &dyn Fn(&mut Model), want: &str| {
            let mut m = tiny();
            f(&mut m);
            let e = m.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        };
        check(&|m| m.version = 9, "version 9");
        check(&|m| m.version = 0, "version 0");
        check(
            &|m| m.points = vec!["kernel_active".into()],
            "not a decision point",
        );
        check(&|m| m.format = "x".into(), "not an scx_mlsched model");
        check(&|m| m.schema_hash = "00".into(), "schema 00 differs");
        check(&|m| m.nodes[0].left = 7, "out of range");
        check(&|m| m.nodes[0].right = 0, "does not come after");
        check(&|m| m.nodes[0].feature = 99, "feature index 99");
        check(&|m| m.nodes[1].verdict = 3, "verdict 3");
        check(&|m| m.nodes.clear(), "no nodes");
        check(
            &|m| {
                // a chain deeper than the limit
                m.nodes = (0..=MAX_DEPTH as u32)
                    .map(|i| Node {
                        feature: 0,
                        threshold: 0,
                        left: i + 1,
                        right: i + 1,
                        verdict: 0,
                    })
                    .chain([leaf(0)])
                    .collect();
            },
            "depth",
        );
        check(
            &|m| m.nodes = vec![leaf(0); MAX_NODES + 1],
            "nodes, more than",
        );
    }

    #[test]
    fn load_refuses_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.json");
        let json = serde_json::to_string(&tiny()).unwrap();
        std::fs::write(&p, &json[..json.len() / 2]).unwrap();
        assert!(format!("{:#}", Model::load(&p).unwrap_err()).contains("not a valid model"));
        std::fs::write(&p, json.replace("\"threshold\":1", "\"threshold\":\"one\"")).unwrap();
        assert!(Model::load(&p).is_err());
        std::fs::write(&p, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(
            format!("{:#}", Model::load(&p).unwrap_err()).contains("larger than any valid model")
        );
        tiny().save(&p).unwrap();
        assert_eq!(Model::load(&p).unwrap().nodes, tiny().nodes);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)))]

        /// Fuzz target of the model loader: arbitrary bytes never panic.
        #[test]
        fn fuzz_model_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("m.json");
            std::fs::write(&p, &bytes).unwrap();
            let _ = Model::load(&p);
        }

        /// Fuzz target of the model loader: a valid file with its nodes
        /// mutated either loads (and then walks every input to a leaf within
        /// the depth bound) or is refused, never panics.
        #[test]
        fn fuzz_model_nodes(nodes in proptest::collection::vec(
                (-2i32..30, any::<i64>(), 0u32..40, 0u32..40, 0u8..3), 1..40),
            x in proptest::collection::vec(-5i64..5, NR_FEATURES)) {
            let mut m = tiny();
            m.nodes = nodes.into_iter()
                .map(|(feature, threshold, left, right, verdict)| Node { feature, threshold, left, right, verdict })
                .collect();
            let text = serde_json::to_string(&m).unwrap();
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("m.json");
            std::fs::write(&p, text).unwrap();
            if let Ok(loaded) = Model::load(&p) {
                let v: FeatureVec = x.try_into().unwrap();
                let _ = loaded.predict(&v);
                prop_assert!(loaded.validate().unwrap() <= MAX_DEPTH);
            }
        }

        #[test]
        fn int_threshold_matches_float_compare(split in -1.0e6f64..1.0e6, x in -2_000_000i64..2_000_000) {
            let t = int_threshold(split).unwrap();
            prop_assert_eq!((x as f64) < split, x < t);
        }

        #[test]
        fn half_splits_match(k in -1000i64..1000, x in -2000i64..2000) {
            let split = k as f64 + 0.5;
            prop_assert_eq!((x as f64) < split, x < int_threshold(split).unwrap());
        }
    }
}
