//! Before mapping: the multi-node spellings of one language layer fused into
//! one node each, and the nodes the output does not depend on dropped.
//!
//! The spellings are the ones this crate's exporter writes and PyTorch's
//! exporter writes: gelu as `0.5 * x * (1 + erf(x / sqrt 2))`, silu as
//! `x / (1 + exp(-x))` or `x * sigmoid(x)`, hard silu as
//! `x * hard_sigmoid(x)` (PyTorch before opset 14), softplus as
//! `relu(x) + softplus(-|x|)`, a min-pool as `-maxpool(-x)`. The fused nodes
//! get op types outside ONNX's (`cnn.Gelu`, ...), named after the pattern's
//! last node. Each inner value must be read by the pattern alone.

use std::collections::{HashMap, HashSet};

use super::decode::{Graph, Node};

/// Op type of a fused gelu.
pub(crate) const GELU: &str = "cnn.Gelu";
/// Op type of a fused silu.
pub(crate) const SILU: &str = "cnn.Silu";
/// Op type of a fused (overflow-safe) softplus.
pub(crate) const SOFTPLUS: &str = "cnn.Softplus";
/// Op type of a fused hard silu (`x * hard_sigmoid(x)`).
pub(crate) const HARD_SILU: &str = "cnn.HardSilu";
/// Op type of a fused min-pool (the `MaxPool`'s attributes).
pub(crate) const MINPOOL: &str = "cnn.MinPool";

/// Who writes and who reads each value.
struct Uses<'g> {
    producer: HashMap<&'g str, usize>,
    readers: HashMap<&'g str, Vec<usize>>,
    output: &'g str,
}

impl<'g> Uses<'g> {
    fn new(g: &'g Graph) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, n) in g.nodes.iter().enumerate() {
            for o in &n.outputs {
                producer.insert(o.as_str(), k);
            }
            for i in &n.inputs {
                readers.entry(i.as_str()).or_default().push(k);
            }
        }
        Uses {
            producer,
            readers,
            output: &g.output,
        }
    }

    /// The one node reading `v` (not the graph's output), if exactly one.
    fn only_reader(&self, v: &str) -> Option<usize> {
        match self.readers.get(v).map(Vec::as_slice) {
            Some([k]) if v != self.output => Some(*k),
            _ => None,
        }
    }
}

/// Whether `name` is a constant of one value within `tol` of `v`.
fn scalar(g: &Graph, name: &str, v: f32, tol: f32) -> bool {
    g.consts
        .get(name)
        .and_then(|t| t.floats())
        .is_some_and(|d| d.len() == 1 && (d[0] - v).abs() <= tol)
}

/// `n`'s inputs as (data, constant) when one of its two inputs is the
/// constant `v` (either order).
fn with_const<'n>(g: &Graph, n: &'n Node, v: f32) -> Option<&'n str> {
    match n.inputs.as_slice() {
        [a, b] if scalar(g, b, v, 1e-6) => Some(a),
        [a, b] if scalar(g, a, v, 1e-6) => Some(b),
        _ => None,
    }
}

fn op(g: &Graph, k: usize) -> &str {
    &g.nodes[k].op
}

fn out(g: &Graph, k: usize) -> &str {
    g.nodes[k].outputs.first().map_or("", String::as_str)
}

/// A match: the nodes it replaces and the node that stands for them (put
/// where the last of them was).
struct Fused {
    nodes: Vec<usize>,
    node: Node,
}

fn fused(g: &Graph, op: &str, x: &str, nodes: Vec<usize>, attrs_from: Option<usize>) -> Fused {
    let last = *nodes.iter().max().expect("a pattern has nodes");
    let node = Node {
        name: g.nodes[last].name.clone(),
        op: op.to_string(),
        inputs: vec![x.to_string()],
        outputs: vec![out(g, last).to_string()],
        attrs: attrs_from.map_or_else(Vec::new, |k| g.nodes[k].attrs.clone()),
    };
    Fused { nodes, node }
}

/// gelu from its `Erf` node `e`.
fn gelu(g: &Graph, u: &Uses, e: usize) -> Option<Fused> {
    let div = *u.producer.get(g.nodes[e].inputs.first()?.as_str())?;
    let x = match op(g, div) {
        "Div" => match g.nodes[div].inputs.as_slice() {
            [x, c] if scalar(g, c, std::f32::consts::SQRT_2, 1e-5) => x.as_str(),
            _ => return None,
        },
        "Mul" => with_const(g, &g.nodes[div], std::f32::consts::FRAC_1_SQRT_2)?,
        _ => return None,
    };
    (u.only_reader(out(g, div))? == e).then_some(())?;
    let add = u.only_reader(out(g, e))?;
    (op(g, add) == "Add" && with_const(g, &g.nodes[add], 1.0)? == out(g, e)).then_some(())?;
    let mul = u.only_reader(out(g, add))?;
    let ins = &g.nodes[mul].inputs;
    let pair = ins.len() == 2
        && ((ins[0] == x && ins[1] == out(g, add)) || (ins[1] == x && ins[0] == out(g, add)));
    (op(g, mul) == "Mul" && pair).then_some(())?;
    let half = u.only_reader(out(g, mul))?;
    (op(g, half) == "Mul" && with_const(g, &g.nodes[half], 0.5)? == out(g, mul)).then_some(())?;
    Some(fused(g, GELU, x, vec![div, e, add, mul, half], None))
}

/// silu from its `Exp` node (`x / (1 + exp(-x))`) or its `Sigmoid` node
/// (`x * sigmoid(x)`).
fn silu(g: &Graph, u: &Uses, k: usize) -> Option<Fused> {
    if op(g, k) == "Sigmoid" {
        let x = g.nodes[k].inputs.first()?.as_str();
        let mul = u.only_reader(out(g, k))?;
        let ins = &g.nodes[mul].inputs;
        let pair = ins.len() == 2
            && ((ins[0] == x && ins[1] == out(g, k)) || (ins[1] == x && ins[0] == out(g, k)));
        return (op(g, mul) == "Mul" && pair).then(|| fused(g, SILU, x, vec![k, mul], None));
    }
    let neg = *u.producer.get(g.nodes[k].inputs.first()?.as_str())?;
    (op(g, neg) == "Neg" && u.only_reader(out(g, neg))? == k).then_some(())?;
    let x = g.nodes[neg].inputs.first()?.as_str();
    let add = u.only_reader(out(g, k))?;
    (op(g, add) == "Add" && with_const(g, &g.nodes[add], 1.0)? == out(g, k)).then_some(())?;
    let div = u.only_reader(out(g, add))?;
    let ins = &g.nodes[div].inputs;
    (op(g, div) == "Div" && ins.len() == 2 && ins[0] == x && ins[1] == out(g, add)).then_some(())?;
    Some(fused(g, SILU, x, vec![neg, k, add, div], None))
}

/// hard silu from its `HardSigmoid` node (the language's: alpha 1/6, beta
/// 1/2): `x * hard_sigmoid(x)`.
fn hard_silu(g: &Graph, u: &Uses, k: usize) -> Option<Fused> {
    use super::decode::Attr;
    let n = &g.nodes[k];
    let alpha = match n.attr("alpha") {
        Some(Attr::Float(a)) => *a,
        _ => return None,
    };
    let beta = match n.attr("beta") {
        None => 0.5,
        Some(Attr::Float(b)) => *b,
        _ => return None,
    };
    if (alpha - 1.0 / 6.0).abs() > 1e-6 || (beta - 0.5).abs() > 1e-6 {
        return None;
    }
    let x = n.inputs.first()?.as_str();
    let mul = u.only_reader(out(g, k))?;
    let ins = &g.nodes[mul].inputs;
    let pair = ins.len() == 2
        && ((ins[0] == x && ins[1] == out(g, k)) || (ins[1] == x && ins[0] == out(g, k)));
    (op(g, mul) == "Mul" && pair).then(|| fused(g, HARD_SILU, x, vec![k, mul], None))
}

/// softplus from its `Abs` node: `relu(x) + softplus(-|x|)`.
fn softplus(g: &Graph, u: &Uses, abs: usize) -> Option<Fused> {
    let x = g.nodes[abs].inputs.first()?.as_str();
    let neg = u.only_reader(out(g, abs))?;
    (op(g, neg) == "Neg").then_some(())?;
    let sp = u.only_reader(out(g, neg))?;
    (op(g, sp) == "Softplus").then_some(())?;
    let add = u.only_reader(out(g, sp))?;
    (op(g, add) == "Add").then_some(())?;
    let ins = &g.nodes[add].inputs;
    let other = match ins.as_slice() {
        [a, b] if b == out(g, sp) => a,
        [a, b] if a == out(g, sp) => b,
        _ => return None,
    };
    let relu = *u.producer.get(other.as_str())?;
    let relu_ok = op(g, relu) == "Relu"
        && g.nodes[relu].inputs.first().map(String::as_str) == Some(x)
        && u.only_reader(out(g, relu)) == Some(add);
    relu_ok.then(|| fused(g, SOFTPLUS, x, vec![relu, abs, neg, sp, add], None))
}

/// A min-pool from its `MaxPool` node: `-maxpool(-x)`.
fn minpool(g: &Graph, u: &Uses, max: usize) -> Option<Fused> {
    let neg = *u.producer.get(g.nodes[max].inputs.first()?.as_str())?;
    (op(g, neg) == "Neg" && u.only_reader(out(g, neg))? == max).then_some(())?;
    // A second output (the indices) must not be read.
    if g.nodes[max]
        .outputs
        .iter()
        .skip(1)
        .any(|o| !o.is_empty() && u.readers.contains_key(o.as_str()))
    {
        return None;
    }
    let back = u.only_reader(out(g, max))?;
    (op(g, back) == "Neg").then_some(())?;
    let x = g.nodes[neg].inputs.first()?.as_str();
    Some(fused(g, MINPOOL, x, vec![neg, max, back], Some(max)))
}

/// The graph's nodes with the patterns fused and the dead nodes dropped.
pub(crate) fn fuse(g: &Graph) -> Vec<Node> {
    let u = Uses::new(g);
    let mut gone: HashSet<usize> = HashSet::new();
    let mut at: HashMap<usize, Node> = HashMap::new();
    for k in 0..g.nodes.len() {
        if gone.contains(&k) {
            continue;
        }
        let m = match op(g, k) {
            "Erf" => gelu(g, &u, k),
            "Exp" | "Sigmoid" => silu(g, &u, k),
            "Abs" => softplus(g, &u, k),
            "HardSigmoid" => hard_silu(g, &u, k),
            "MaxPool" => minpool(g, &u, k),
            _ => None,
        };
        if let Some(m) = m {
            if m.nodes.iter().any(|n| gone.contains(n)) {
                continue;
            }
            let last = *m.nodes.iter().max().expect("nodes");
            gone.extend(m.nodes.iter().copied());
            at.insert(last, m.node);
        }
    }
    let nodes: Vec<Node> = (0..g.nodes.len())
        .filter_map(|k| match at.remove(&k) {
            Some(n) => Some(n),
            None if gone.contains(&k) => None,
            None => Some(g.nodes[k].clone()),
        })
        .collect();
    live(nodes, &g.output)
}

/// The nodes the graph's output depends on, in order.
fn live(nodes: Vec<Node>, output: &str) -> Vec<Node> {
    let mut needed: HashSet<&str> = HashSet::from([output]);
    let mut keep = vec![false; nodes.len()];
    for (k, n) in nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|o| needed.contains(o.as_str())) {
            keep[k] = true;
            needed.extend(n.inputs.iter().map(String::as_str));
        }
    }
    nodes
        .into_iter()
        .zip(keep)
        .filter_map(|(n, k)| k.then_some(n))
        .collect()
}
