//! The structured graph as `.cnn` text, and its weights named by the paths
//! of the statements they belong to (`layer3.1.0.kernel`).
//!
//! An activation right after a conv, dwconv, deconv or dense layer becomes
//! that layer's option (`conv 6 5x5 relu`), as models are usually written;
//! the computation is the same.

use super::ops::{Items, JoinKind, Kind, Layer};
use super::structure::Tree;
use super::Weight;

/// A statement ready to print.
enum Stmt {
    /// A layer and the node (or Keras layer) it comes from, with its op.
    Layer(Layer, (String, String)),
    Join {
        kind: JoinKind,
        branches: Vec<Vec<Stmt>>,
    },
}

/// The statements of `tree`, activations folded into the layer before.
fn stmts(items: &Items, tree: &[Tree]) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::with_capacity(tree.len());
    for t in tree {
        match t {
            Tree::Layer(k) => {
                let item = &items.items[*k];
                let Kind::Layer(l) = &item.kind else {
                    continue;
                };
                if l.is_act {
                    if let Some(Stmt::Layer(prev, _)) = out.last_mut() {
                        if prev.takes_act && prev.act.is_none() {
                            prev.act.clone_from(&l.act);
                            continue;
                        }
                    }
                }
                out.push(Stmt::Layer(l.clone(), (item.node.clone(), item.op.clone())));
            }
            Tree::Join { kind, branches, .. } => out.push(Stmt::Join {
                kind: *kind,
                branches: branches.iter().map(|b| stmts(items, b)).collect(),
            }),
        }
    }
    out
}

/// A model name from the graph's: UpperCamelCase letters and digits,
/// `Imported` when nothing is left.
pub(crate) fn model_name(graph: &str) -> String {
    let mut name = String::new();
    for part in graph.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            name.push(c.to_ascii_uppercase());
            name.extend(cs);
        }
    }
    match name.chars().next() {
        None => "Imported".to_string(),
        Some(c) if c.is_ascii_digit() => format!("Model{name}"),
        Some(_) => name,
    }
}

struct Writer {
    text: String,
    weights: Vec<Weight>,
    /// Per line of `text`, the node and op of its statement.
    origins: Vec<Option<(String, String)>>,
}

impl Writer {
    fn line(&mut self, depth: usize, s: &str) {
        self.origins.push(None);
        for _ in 0..depth {
            self.text.push_str("    ");
        }
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn seq(&mut self, depth: usize, path: &str, stmts: Vec<Stmt>) {
        for (i, s) in stmts.into_iter().enumerate() {
            let p = if path.is_empty() {
                format!("layer{i}")
            } else {
                format!("{path}.{i}")
            };
            self.stmt(depth, &p, s);
        }
    }

    fn stmt(&mut self, depth: usize, path: &str, s: Stmt) {
        match s {
            Stmt::Layer(l, origin) => {
                let mut words = l.words;
                if l.nobias {
                    words += " nobias";
                }
                if let Some(a) = &l.act {
                    if !words.is_empty() {
                        words.push(' ');
                    }
                    words += a;
                }
                self.line(depth, &format!("{words};"));
                if let Some(last) = self.origins.last_mut() {
                    *last = Some(origin);
                }
                for p in l.params {
                    self.weights.push(Weight {
                        name: format!("{path}.{}", p.name),
                        shape: p.shape,
                        data: p.data,
                    });
                }
            }
            Stmt::Join { kind, branches } => {
                let n = branches.len();
                let empty: Vec<bool> = branches.iter().map(Vec::is_empty).collect();
                // `residual { A }` is `A(x) + x`, `residual { A } shortcut
                // { B }` is `A(x) + B(x)`: the usual spelling of two-branch
                // adds whose first branch has layers.
                let words: Vec<&str> = match (kind, n, empty.as_slice()) {
                    (JoinKind::Add, 2, [false, _]) => vec!["residual", "shortcut"],
                    (JoinKind::Add, _, _) => vec!["add"; n],
                    (JoinKind::Concat, _, _) => vec!["concat"; n],
                };
                let residual_alone = words[0] == "residual" && empty[1];
                for (b, branch) in branches.into_iter().enumerate() {
                    if b == 1 && residual_alone {
                        break;
                    }
                    let head = match (b, words[0]) {
                        (0, w) => format!("{w} {{"),
                        (_, "residual") => "} shortcut {".to_string(),
                        _ => "} {".to_string(),
                    };
                    self.line(depth, &head);
                    self.seq(depth + 1, &format!("{path}.{b}"), branch);
                }
                self.line(depth, "}");
            }
        }
    }
}

/// A rendered model.
pub(crate) struct Rendered {
    pub source: String,
    pub weights: Vec<Weight>,
    /// Per line of `source`, the node (or layer) and op of its statement.
    pub origins: Vec<Option<(String, String)>>,
}

/// The `.cnn` text of model `name` and its weights.
pub(crate) fn render(name: &str, comment: &str, items: &Items, tree: &[Tree]) -> Rendered {
    let mut w = Writer {
        text: String::new(),
        weights: Vec::new(),
        origins: Vec::new(),
    };
    for line in comment.lines() {
        w.line(0, &format!("// {line}"));
    }
    w.line(0, &format!("model {name} {{"));
    let [h, wd, c] = items.input;
    w.line(1, &format!("input {h}x{wd}x{c};"));
    w.seq(1, "", stmts(items, tree));
    w.line(0, "}");
    Rendered {
        source: w.text,
        weights: w.weights,
        origins: w.origins,
    }
}
