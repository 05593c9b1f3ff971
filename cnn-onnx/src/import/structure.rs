//! The graph of items as the language's nesting: a sequence of statements
//! whose forks are `add`/`residual`/`concat` blocks. From a value read by
//! several items, the branches run to the join where they all meet (the
//! value's immediate post-dominator within the enclosing branch), which must
//! be an `Add`/`Sum`/`Concat` whose inputs each end one branch; each branch
//! is structured the same way, and branches may share no item. Graphs that
//! are not series-parallel this way are refused, naming the node.

use super::ops::{Item, Items, JoinKind, Kind};
use super::ImportError;

/// Deepest nesting of blocks accepted (guards the recursion).
const MAX_DEPTH: usize = 64;

/// A statement of the structured graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    /// The layer of item `.0`.
    Layer(usize),
    /// A join item and its branches, in the join's input order.
    Join {
        item: usize,
        /// Inner adds of a chain `((a + b) + c)` summed as one block.
        absorbed: Vec<usize>,
        kind: JoinKind,
        branches: Vec<Vec<Tree>>,
    },
}

struct Graph<'a> {
    items: &'a [Item],
    producer: Vec<Option<usize>>,
    /// `(item, input slot)` per value.
    consumers: Vec<Vec<usize>>,
}

fn structure_error(item: &Item, reason: impl std::fmt::Display) -> ImportError {
    ImportError::Structure(format!("node '{}' ({}): {reason}", item.node, item.op))
}

/// The items of `g` as nested statements.
pub(crate) fn structure(g: &Items) -> Result<Vec<Tree>, ImportError> {
    let mut producer = vec![None; g.values];
    let mut consumers = vec![Vec::new(); g.values];
    for (k, it) in g.items.iter().enumerate() {
        producer[it.output] = Some(k);
        for &i in &it.inputs {
            consumers[i].push(k);
        }
    }
    let graph = Graph {
        items: &g.items,
        producer,
        consumers,
    };
    let tree = graph.seq(0, g.output, 0)?;
    // Every item placed once: anything else is a graph the nesting lost.
    let mut placed = vec![0usize; g.items.len()];
    count(&tree, &mut placed);
    if let Some(k) = placed.iter().position(|&n| n != 1) {
        return Err(structure_error(
            &g.items[k],
            "its place in the graph is not a sequence of layers and blocks of branches",
        ));
    }
    Ok(tree)
}

fn count(t: &[Tree], placed: &mut [usize]) {
    for s in t {
        match s {
            Tree::Layer(k) => placed[*k] += 1,
            Tree::Join {
                item,
                absorbed,
                branches,
                ..
            } => {
                placed[*item] += 1;
                for &k in absorbed {
                    placed[k] += 1;
                }
                for b in branches {
                    count(b, placed);
                }
            }
        }
    }
}

impl Graph<'_> {
    /// Values reachable from `v` (numbering is topological, so none past `to`).
    fn forward(&self, v: usize, to: usize) -> Vec<bool> {
        let mut seen = vec![false; self.producer.len()];
        seen[v] = true;
        for u in v..=to {
            if seen[u] {
                for &k in &self.consumers[u] {
                    let o = self.items[k].output;
                    if o <= to {
                        seen[o] = true;
                    }
                }
            }
        }
        seen
    }

    /// Values from which `to` is reachable, none before `v`.
    fn backward(&self, v: usize, to: usize) -> Vec<bool> {
        let mut seen = vec![false; self.producer.len()];
        seen[to] = true;
        for u in (v..=to).rev() {
            if let (true, Some(k)) = (seen[u], self.producer[u]) {
                for &i in &self.items[k].inputs {
                    if i >= v {
                        seen[i] = true;
                    }
                }
            }
        }
        seen
    }

    /// The items between `v` and `to`: reading a value reachable from `v`,
    /// writing one from which `to` is reachable.
    fn region(&self, v: usize, to: usize) -> Vec<usize> {
        if v == to {
            return Vec::new();
        }
        let (f, b) = (self.forward(v, to), self.backward(v, to));
        (v + 1..=to)
            .filter(|&u| f[u] && b[u])
            .filter_map(|u| self.producer[u])
            .collect()
    }

    /// The first value after `v` that every path from `v` to `to` passes.
    fn join_of(&self, v: usize, to: usize) -> usize {
        let (f, b) = (self.forward(v, to), self.backward(v, to));
        let inside = |u: usize| f[u] && b[u];
        let mut pd = vec![usize::MAX; self.producer.len()];
        pd[to] = to;
        for u in (v..to).rev() {
            if !inside(u) {
                continue;
            }
            let mut acc: Option<usize> = None;
            for &k in &self.consumers[u] {
                let s = self.items[k].output;
                if s > to || !inside(s) {
                    continue;
                }
                acc = Some(match acc {
                    None => s,
                    Some(mut a) => {
                        let mut c = s;
                        while a != c {
                            while a < c {
                                a = pd[a];
                            }
                            while c < a {
                                c = pd[c];
                            }
                        }
                        a
                    }
                });
            }
            pd[u] = acc.unwrap_or(to);
        }
        pd[v]
    }

    /// The statements from value `from` to value `to`.
    fn seq(&self, from: usize, to: usize, depth: usize) -> Result<Vec<Tree>, ImportError> {
        let mut out = Vec::new();
        let mut v = from;
        while v != to {
            let mut uses: Vec<usize> = self.consumers[v].clone();
            if uses.len() > 1 {
                // Inside a branch, the fork's other readers belong to the
                // sibling branches.
                let b = self.backward(v, to);
                uses.retain(|&k| self.items[k].output <= to && b[self.items[k].output]);
            }
            let &first = uses.first().ok_or_else(|| {
                ImportError::Structure(format!("value {v} does not lead to the output"))
            })?;
            let item = &self.items[first];
            if uses.len() == 1 && item.inputs.len() == 1 {
                out.push(Tree::Layer(first));
                v = item.output;
                continue;
            }
            if uses.len() == 1 {
                return Err(structure_error(
                    item,
                    "it joins a value from outside the enclosing branch (the language's joins close the fork they start from)",
                ));
            }
            if depth >= MAX_DEPTH {
                return Err(structure_error(
                    item,
                    format!("blocks nested deeper than {MAX_DEPTH}"),
                ));
            }
            let p = self.join_of(v, to);
            let Some(j) = self.producer[p] else {
                return Err(structure_error(item, "its branches never meet"));
            };
            let join = &self.items[j];
            let Kind::Join(kind) = join.kind else {
                return Err(structure_error(
                    join,
                    "branches meet here, which is not an Add, Sum or Concat",
                ));
            };
            let plain = join.inputs.clone();
            let mut flat = plain.clone();
            let mut absorbed = Vec::new();
            // ((a + b) + c): one add of three, as the language sums them.
            if kind == JoinKind::Add {
                while let Some(&x0) = flat.first() {
                    let inner =
                        self.producer[x0].filter(|_| x0 != v && self.consumers[x0].len() == 1);
                    match inner {
                        Some(k) if self.items[k].kind == Kind::Join(JoinKind::Add) => {
                            flat.splice(0..1, self.items[k].inputs.iter().copied());
                            absorbed.push(k);
                        }
                        _ => break,
                    }
                }
            }
            let whole = self.region(v, p);
            // The branches' items: disjoint, and with the joins all of the
            // items between the fork and the join.
            let fits = |inputs: &[usize], joins: &[usize]| {
                let mut seen = vec![false; self.items.len()];
                for &k in joins {
                    seen[k] = true;
                }
                let mut n = joins.len();
                for &x in inputs {
                    for k in self.region(v, x) {
                        if std::mem::replace(&mut seen[k], true) {
                            return false;
                        }
                        n += 1;
                    }
                }
                n == whole.len() && whole.iter().all(|&k| seen[k])
            };
            let mut joins = absorbed.clone();
            joins.push(j);
            let (inputs, absorbed) = if !absorbed.is_empty() && fits(&flat, &joins) {
                (flat, absorbed)
            } else if fits(&plain, &[j]) {
                (plain, Vec::new())
            } else {
                return Err(structure_error(
                    join,
                    "the branches it joins share layers (each branch of a block must be its own)",
                ));
            };
            let f = self.forward(v, p);
            if inputs.iter().any(|&x| !f[x]) {
                return Err(structure_error(
                    join,
                    "it joins a value from outside the fork",
                ));
            }
            let branches = inputs
                .iter()
                .map(|&x| self.seq(v, x, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Tree::Join {
                item: j,
                absorbed,
                kind,
                branches,
            });
            v = p;
        }
        Ok(out)
    }
}
