//! Graph statements: `residual`, `add`, `concat`, `repeat`, and the
//! definitions and uses of named blocks. Each branch is a chain checked by
//! [`Checker::chain`] on the shape that enters the statement; the join then
//! checks that the branches' shapes fit together (E013), naming each one and
//! where it came from. A block use is its definition with the values put in
//! token by token, checked where it is used, so that an error inside a block
//! says which use caused it.

use super::flow::{Chain, ChainOut};
use super::shapes::Cur;
use super::show::{shape_short, shown};
use super::vocab::{
    activation_of, did_you_mean, is_option_word, is_statement_word, ACTIVATIONS, GRAPH, LAYERS,
};
use super::{Checker, MAX_DIM, MAX_ELEMENTS};
use crate::ast::{Group, Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Graph, GraphKind, Shape, Span};

/// Most layers a model may unfold into (every `repeat` and block use
/// written out; each copy of a `repeat` counts too): far beyond real
/// networks (ResNet-152 has about 500), and small enough that checking
/// stays well under a second.
pub const MAX_UNFOLDED: u64 = 100_000;

/// A `block NAME P1 P2 ... { ... }` definition.
#[derive(Debug, Clone)]
pub(super) struct BlockDef {
    pub(super) name: String,
    /// The name's token.
    pub(super) span: Span,
    pub(super) params: Vec<String>,
    pub(super) body: Vec<Stmt>,
}

impl Checker {
    /// Reads the block definitions of a file (before any model is checked,
    /// so that a model may use a block defined after another block).
    pub(super) fn definitions(&mut self, defs: &[Stmt]) {
        for d in defs {
            let Some(name) = d.args.first().filter(|t| t.kind == TokenKind::Word) else {
                let at = d.args.first().map_or(d.head.span, |t| t.span);
                self.syntax(
                    "expected a block name after `block`",
                    at,
                    "a name such as `basic`",
                    "define a block as `block NAME P1 P2 { ... }`, e.g. `block basic f s { conv f 3x3 stride s same }`",
                );
                continue;
            };
            let word = name.text.as_str();
            if LAYERS.contains(&word) || ACTIVATIONS.contains(&word) || GRAPH.contains(&word) {
                self.syntax(
                    format!("`{word}` is a word of the language, not a block name"),
                    name.span,
                    "already a statement",
                    format!("name the block otherwise, e.g. `{word}_block`"),
                );
                continue;
            }
            if let Some(first) = self.blocks.iter().find(|b| b.name == word) {
                let first = first.span;
                self.push(
                    Diagnostic::new(
                        Code::Syntax,
                        format!("block `{word}` is defined twice"),
                        name.span,
                        "a second definition",
                    )
                    .with_related(first, "first defined here")
                    .with_help("rename one of the two blocks"),
                );
                continue;
            }
            let mut params: Vec<String> = Vec::new();
            let mut ok = true;
            for p in &d.args[1..] {
                let w = p.text.as_str();
                let bad = if p.kind != TokenKind::Word {
                    Some(format!("a block parameter is a name, not `{}`", shown(w)))
                } else if LAYERS.contains(&w)
                    || activation_of(w).is_some()
                    || is_option_word(w)
                    || GRAPH.contains(&w)
                {
                    Some(format!(
                        "`{w}` is a word of the language, not a parameter name"
                    ))
                } else if params.iter().any(|q| q == w) {
                    Some(format!("parameter `{w}` is named twice"))
                } else {
                    None
                };
                if let Some(message) = bad {
                    self.syntax(
                        message,
                        p.span,
                        "not a parameter",
                        "parameters are short names that stand for numbers: `block basic f s { conv f 3x3 stride s }`",
                    );
                    ok = false;
                }
                params.push(w.to_string());
            }
            let body = match d.groups.as_slice() {
                [g] if g.label.is_none() => g.stmts.clone(),
                _ => {
                    self.syntax(
                        format!("block `{word}` needs one `{{ ... }}` body"),
                        d.head.span,
                        "its statements go in one pair of braces",
                        format!("write `block {word} {} {{ ... }}`", params.join(" ")),
                    );
                    continue;
                }
            };
            // Registered even with a bad parameter: its uses are then not
            // also reported as unknown.
            self.blocks.push(BlockDef {
                name: word.to_string(),
                span: name.span,
                params: if ok { params } else { Vec::new() },
                body,
            });
        }
    }

    /// Whether `s` is a graph statement (or a block use, or what is most
    /// likely a misspelt one).
    pub(super) fn is_graph(&self, s: &Stmt) -> bool {
        let w = s.head.text.as_str();
        if s.head.kind != TokenKind::Word {
            return false;
        }
        if GRAPH.contains(&w) || self.blocks.iter().any(|b| b.name == w) {
            return true;
        }
        // An unknown word closer to a block's name than to any layer's.
        let names: Vec<&str> = self.blocks.iter().map(|b| b.name.as_str()).collect();
        !LAYERS.contains(&w)
            && activation_of(w).is_none()
            && did_you_mean(w, &names).is_some()
            && did_you_mean(w, &LAYERS).is_none()
    }

    /// Counts one layer towards [`MAX_UNFOLDED`]; past it, reports E017 once
    /// and stops the checking of the model.
    pub(super) fn count_unfolded(&mut self, s: &Stmt) {
        self.unfolded += 1;
        if self.unfolded > MAX_UNFOLDED && !self.aborted {
            self.aborted = true;
            self.push(
                Diagnostic::new(
                    Code::TooDeep,
                    format!("the model unfolds into more than {MAX_UNFOLDED} layers"),
                    s.head.span,
                    "the limit is passed here",
                )
                .with_help("use fewer `repeat` copies or block uses: real networks have at most a few thousand layers"),
            );
        }
    }

    /// Reports braces after a statement that takes none.
    pub(super) fn stray_block(&mut self, s: &Stmt) {
        let g = &s.groups[0];
        self.syntax(
            format!("`{}` takes no block", shown(&s.head.text)),
            g.span,
            "unexpected `{ ... }`",
            "only `residual`, `add`, `concat`, `repeat` and `block` take blocks; end the statement with `;`",
        );
    }

    /// Checks a graph statement on `cur` (`None`: the shape is unknown after
    /// an earlier error, so only the branches' own statements are checked).
    pub(super) fn graph(
        &mut self,
        s: &Stmt,
        ctx: &Chain,
        cur: Option<&Cur>,
        trail: &[String],
        first_input: &mut Option<Span>,
    ) -> Option<ir::Layer> {
        let word = s.head.text.as_str();
        let kind = match word {
            "residual" => {
                self.no_values(s)?;
                match s.groups.as_slice() {
                    [body] if body.label.is_none() => GraphKind::Residual { shortcut: false },
                    [body, short]
                        if body.label.is_none()
                            && short.label.as_ref().is_some_and(|l| l.text == "shortcut") =>
                    {
                        GraphKind::Residual { shortcut: true }
                    }
                    _ => {
                        self.syntax(
                            "`residual` takes a body and an optional shortcut",
                            s.head.span,
                            "written `residual { A }` or `residual { A } shortcut { B }`",
                            "e.g. `residual { conv 16 3x3 same relu; conv 16 3x3 same } shortcut { conv 16 1x1 }`",
                        );
                        return None;
                    }
                }
            }
            "add" | "concat" => {
                self.no_values(s)?;
                if let Some(l) = s.groups.iter().find_map(|g| g.label.as_ref()) {
                    self.syntax(
                        format!("`shortcut` belongs to `residual`, not `{word}`"),
                        l.span,
                        "not a branch of this statement",
                        format!("write the branches of `{word}` one after the other: `{word} {{ A }} {{ B }}`"),
                    );
                    return None;
                }
                if s.groups.len() < 2 {
                    self.push(
                        Diagnostic::new(
                            Code::BranchesDoNotJoin,
                            format!("`{word}` needs two or more branches, found {}", s.groups.len()),
                            s.head.span,
                            "nothing to join",
                        )
                        .with_help(format!(
                            "give each branch its braces, e.g. `{word} {{ }} {{ conv 16 3x3 same }}` (`{{ }}` is the input itself)"
                        )),
                    );
                    return None;
                }
                if word == "add" {
                    GraphKind::Add
                } else {
                    GraphKind::Concat
                }
            }
            "repeat" => {
                let n = self.repeat_count(s)?;
                GraphKind::Repeat(n)
            }
            "block" => {
                self.syntax(
                    "block definitions come first in a file, before its models",
                    s.head.span,
                    "a definition inside a model",
                    "move this `block NAME ... { ... }` above the first `model` (or above `input` in a bare body)",
                );
                return None;
            }
            "shortcut" => {
                self.syntax(
                    "`shortcut { ... }` follows the body of a `residual`",
                    s.head.span,
                    "no `residual` before it",
                    "write `residual { A } shortcut { B }`, with no `;` between the two",
                );
                return None;
            }
            _ => return self.block_use(s, ctx, cur, trail, first_input),
        };
        let groups: Vec<&[Stmt]> = s.groups.iter().map(|g| g.stmts.as_slice()).collect();
        let short_trail = &trail[trail.len().saturating_sub(6)..];
        let branches: Vec<ChainOut> = match kind {
            GraphKind::Repeat(n) => {
                let mut outs = Vec::with_capacity(n);
                let mut at = cur.cloned();
                for k in 0..n {
                    // A copy counts towards the limit even when its block is
                    // empty (`repeat 1000000 { }` nested is no free loop).
                    self.count_unfolded(s);
                    if self.aborted {
                        break;
                    }
                    let sub = ctx.branch(k, k + 1 == n);
                    let out = self.chain(
                        groups[0],
                        &sub,
                        at.take(),
                        short_trail.to_vec(),
                        first_input,
                    );
                    at = out.cur.clone();
                    let stop = out.failed || self.aborted;
                    outs.push(out);
                    if stop {
                        break;
                    }
                }
                outs
            }
            _ => groups
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    // A join follows every branch.
                    let sub = ctx.branch(k, false);
                    self.chain(g, &sub, cur.cloned(), short_trail.to_vec(), first_input)
                })
                .collect(),
        };
        let mut branches = branches;
        if matches!(kind, GraphKind::Residual { shortcut: false }) {
            // The identity shortcut.
            branches.push(ChainOut {
                layers: Vec::new(),
                resolved: Vec::new(),
                cur: cur.cloned(),
                failed: false,
                totals: (0, 0, 0),
            });
        }
        let cur = cur?;
        if branches.iter().any(|b| b.failed) {
            return None;
        }
        let output = match kind {
            GraphKind::Repeat(_) => branches
                .last()
                .and_then(|b| b.cur.as_ref())
                .map_or(cur.shape, |c| c.shape),
            _ => self.join(s, &kind, cur, &branches)?,
        };
        Some(graph_layer(s, ctx, kind, cur.shape, output, branches))
    }

    /// A graph statement when the shape entering it is unknown.
    pub(super) fn graph_unchecked(
        &mut self,
        s: &Stmt,
        ctx: &Chain,
        first_input: &mut Option<Span>,
    ) {
        let _ = self.graph(s, ctx, None, &[], first_input);
    }

    /// Reports values written after `residual`, `add` or `concat`.
    fn no_values(&mut self, s: &Stmt) -> Option<()> {
        let Some(t) = s.args.first() else {
            return Some(());
        };
        self.syntax(
            format!(
                "`{}` takes no values, found `{}`",
                s.head.text,
                shown(&t.text)
            ),
            t.span,
            "unexpected here",
            format!(
                "write the branches right after the word: `{} {{ ... }}`",
                s.head.text
            ),
        );
        None
    }

    /// `repeat N { ... }`: N and the one block.
    fn repeat_count(&mut self, s: &Stmt) -> Option<usize> {
        let n = match s.args.as_slice() {
            [t] if t.kind == TokenKind::Int => t
                .text
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_DIM).contains(n)),
            _ => None,
        };
        let one_block = matches!(s.groups.as_slice(), [g] if g.label.is_none());
        match (n, one_block) {
            (Some(n), true) => Some(n as usize),
            _ => {
                let at = s.args.first().map_or(s.head.span, |t| t.span);
                self.syntax(
                    "`repeat` takes a count and one block",
                    at,
                    "expected `repeat N { ... }`",
                    format!(
                        "write e.g. `repeat 3 {{ conv 16 3x3 same relu }}` (N from 1 to {MAX_DIM})"
                    ),
                );
                None
            }
        }
    }

    /// The shape two or more branches join into, or E013.
    fn join(
        &mut self,
        s: &Stmt,
        kind: &GraphKind,
        cur: &Cur,
        branches: &[ChainOut],
    ) -> Option<Shape> {
        let shapes: Vec<Shape> = branches
            .iter()
            .map(|b| b.cur.as_ref().map_or(cur.shape, |c| c.shape))
            .collect();
        let origin = |k: usize| -> String {
            match &branches[k].cur {
                Some(c) if !branches[k].layers.is_empty() => c.origin.clone(),
                _ => "the input of the block".to_string(),
            }
        };
        let word = s.head.text.as_str();
        // One note per branch: its shape and where it came from.
        let listing = |mut d: Diagnostic| -> Diagnostic {
            for (k, sh) in shapes.iter().enumerate() {
                d = d.with_note(format!(
                    "branch {k} gives {} ({})",
                    shape_short(sh),
                    origin(k)
                ));
            }
            d
        };
        match kind {
            GraphKind::Concat => {
                let hw = |sh: &Shape| match *sh {
                    Shape::Image { h, w, .. } => Some((h, w)),
                    Shape::Vector { .. } => None,
                };
                let first = hw(&shapes[0]);
                let fits = first.is_some() && shapes.iter().all(|x| hw(x) == first);
                if fits {
                    let (h, w) = first?;
                    let c: u64 = shapes
                        .iter()
                        .map(|x| match *x {
                            Shape::Image { c, .. } => c as u64,
                            Shape::Vector { n } => n as u64,
                        })
                        .sum();
                    if c > MAX_DIM || (h as u64) * (w as u64) * c > MAX_ELEMENTS {
                        self.push(
                            Diagnostic::new(Code::TooLarge, "too large: the concat has too many channels", s.head.span, "joined here")
                                .with_help(format!("a layer has at most {MAX_DIM} channels: give the branches fewer filters")),
                        );
                        return None;
                    }
                    return Some(Shape::Image {
                        h,
                        w,
                        c: c as usize,
                    });
                }
                let help = if first.is_none() || shapes.iter().any(|x| hw(x).is_none()) {
                    "`concat` joins images on the channel axis: concatenate before `flatten` or the global pool".to_string()
                } else {
                    "every branch must keep the same height and width: use `same` padding, or pool (or upsample) the branches alike".to_string()
                };
                self.push(
                    listing(Diagnostic::new(
                        Code::BranchesDoNotJoin,
                        "the branches of `concat` differ in height and width",
                        s.head.span,
                        "joined here",
                    ))
                    .with_help(help),
                );
                None
            }
            _ => {
                if shapes.iter().all(|x| *x == shapes[0]) {
                    return Some(shapes[0]);
                }
                let mut d = listing(Diagnostic::new(
                    Code::BranchesDoNotJoin,
                    format!("the branches of `{word}` give different shapes"),
                    s.head.span,
                    "summed here",
                ));
                let fix = match kind {
                    GraphKind::Residual { shortcut: false } => shortcut_fix(cur.shape, shapes[0]),
                    _ => None,
                };
                d = match fix {
                    Some(fix) => d.with_help(format!("give the residual a shortcut that makes {}: `{word} {{ ... }} {fix}`", shape_short(&shapes[0]))),
                    None => d.with_help(format!(
                        "every branch of `{word}` must give the same shape (no broadcasting): change the filters, strides or padding so that they agree"
                    )),
                };
                self.push(d);
                None
            }
        }
    }

    /// `NAME V1 V2 ...`: the block's statements with the values put in.
    fn block_use(
        &mut self,
        s: &Stmt,
        ctx: &Chain,
        cur: Option<&Cur>,
        trail: &[String],
        first_input: &mut Option<Span>,
    ) -> Option<ir::Layer> {
        let word = s.head.text.as_str();
        let Some(def) = self.blocks.iter().find(|b| b.name == word).cloned() else {
            let names: Vec<&str> = self.blocks.iter().map(|b| b.name.as_str()).collect();
            let help = match did_you_mean(word, &names) {
                Some(n) => format!("did you mean the block `{n}`?"),
                None => "define it at the top of the file: `block NAME P... { ... }`".to_string(),
            };
            self.push(
                Diagnostic::new(
                    Code::UnknownBlock,
                    format!("unknown block `{}`", shown(word)),
                    s.head.span,
                    "not a layer or a defined block",
                )
                .with_help(help),
            );
            return None;
        };
        if let Some(g) = s.groups.first() {
            self.syntax(
                format!("a use of block `{word}` takes values, not a block"),
                g.span,
                "unexpected `{ ... }`",
                // The parameters' names are no values: an example is.
                match def.params.len() {
                    0 => format!("write `{word}`: it takes no values"),
                    n => format!(
                        "write a whole number for each of its parameters ({}), e.g. `{word} {}`",
                        def.params.join(", "),
                        vec!["1"; n].join(" ")
                    ),
                },
            );
            return None;
        }
        let mut values = Vec::with_capacity(s.args.len());
        for t in &s.args {
            let statement = t.kind == TokenKind::Word
                && (is_statement_word(&t.text) || self.blocks.iter().any(|b| b.name == t.text));
            if statement {
                self.syntax(
                    format!("expected `;` before `{}`", t.text),
                    t.span,
                    "a new statement starts here",
                    format!(
                        "statements are separated by `;`: write `{word} ...; {} ...`",
                        t.text
                    ),
                );
                return None;
            }
            match t.text.parse::<u64>() {
                Ok(v) if t.kind == TokenKind::Int => values.push(v),
                _ => {
                    self.push(
                        Diagnostic::new(
                            Code::BlockValues,
                            format!(
                                "block `{word}` takes whole numbers, found `{}`",
                                shown(&t.text)
                            ),
                            t.span,
                            "not a whole number",
                        )
                        .with_related(def.span, "defined here")
                        .with_help(format!(
                            "a parameter stands for a number: `{word} {}` with one integer each",
                            def.params.join(" ")
                        )),
                    );
                    return None;
                }
            }
        }
        if values.len() != def.params.len() {
            let at = s.args.get(def.params.len()).map_or(s.head.span, |t| t.span);
            self.push(
                Diagnostic::new(
                    Code::BlockValues,
                    format!(
                        "block `{word}` takes {} values, found {}",
                        def.params.len(),
                        values.len()
                    ),
                    at,
                    "wrong number of values",
                )
                .with_related(def.span, "defined here")
                .with_help(format!(
                    "give one value per parameter: `{word} {}`",
                    def.params.join(" ")
                )),
            );
            return None;
        }
        if let Some(k) = self.uses.iter().position(|u| u == word) {
            let mut cycle: Vec<&str> = self.uses[k..].iter().map(|u| u.as_str()).collect();
            cycle.push(word);
            self.push(
                Diagnostic::new(
                    Code::RecursiveBlock,
                    format!("block `{word}` uses itself ({})", cycle.join(" -> ")),
                    s.head.span,
                    "this use never ends",
                )
                .with_related(def.span, "defined here")
                .with_help(
                    "a block cannot contain itself: repeat it with `repeat N { ... }` instead",
                ),
            );
            return None;
        }
        // A use counts towards the limit even when its block is empty.
        self.count_unfolded(s);
        if self.aborted {
            return None;
        }
        let body = substitute(&def.body, &def.params, &values);
        let line = self.line(s.span);
        let shown_use = s.text();
        let before = self.diags.len();
        self.uses.push(word.to_string());
        let sub = ctx.branch(0, true);
        let short_trail = trail[trail.len().saturating_sub(6)..].to_vec();
        let out = self.chain(&body, &sub, cur.cloned(), short_trail, first_input);
        self.uses.pop();
        // An error inside the block says which use (the values) caused it.
        let values_note = def
            .params
            .iter()
            .zip(&values)
            .map(|(p, v)| format!("{p} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let note = if values_note.is_empty() {
            format!("in the use `{shown_use}` on line {line}")
        } else {
            format!("in the use `{shown_use}` on line {line} ({values_note})")
        };
        for d in &mut self.diags[before..] {
            d.notes.push(note.clone());
        }
        let cur = cur?;
        if out.failed {
            return None;
        }
        let output = out.cur.as_ref().map_or(cur.shape, |c| c.shape);
        let kind = GraphKind::Use {
            block: word.to_string(),
            values,
        };
        Some(graph_layer(s, ctx, kind, cur.shape, output, vec![out]))
    }
}

/// The layer of a checked graph statement: its branches' layers and totals.
fn graph_layer(
    s: &Stmt,
    ctx: &Chain,
    kind: GraphKind,
    input: Shape,
    output: Shape,
    branches: Vec<ChainOut>,
) -> ir::Layer {
    let mut params = 0u64;
    let mut non_trainable = 0u64;
    let mut flops = 0u64;
    for b in &branches {
        params = params.saturating_add(b.totals.0);
        non_trainable = non_trainable.saturating_add(b.totals.1);
        flops = flops.saturating_add(b.totals.2);
    }
    // A sum adds each extra branch once per value (as the plan counts it).
    if matches!(kind, GraphKind::Residual { .. } | GraphKind::Add) {
        let n = branches.len() as u64;
        flops = flops.saturating_add(n.saturating_sub(1) * output.len() as u64);
    }
    let branches: Vec<Vec<ir::Layer>> = branches.into_iter().map(|b| b.layers).collect();
    ir::Layer {
        index: ctx.index.unwrap_or(0),
        path: ctx.path.trim_end_matches('.').to_string(),
        op: ir::Op::Graph(Graph { kind, branches }),
        input,
        output,
        params: Vec::new(),
        param_count: params,
        non_trainable,
        flops,
        span: s.span,
        keyword_span: s.head.span,
    }
}

/// The 1x1 shortcut that takes `input` to `want`: `shortcut { conv F 1x1
/// stride S }`, when one stride gives both axes.
fn shortcut_fix(input: Shape, want: Shape) -> Option<String> {
    let (Shape::Image { h, w, .. }, Shape::Image { h: oh, w: ow, c }) = (input, want) else {
        return None;
    };
    // A valid 1x1 conv of stride s gives (n - 1) / s + 1 cells.
    let s = (1..=h.max(w)).find(|&s| (h - 1) / s + 1 == oh && (w - 1) / s + 1 == ow)?;
    Some(if s == 1 {
        format!("shortcut {{ conv {c} 1x1 }}")
    } else {
        format!("shortcut {{ conv {c} 1x1 stride {s} }}")
    })
}

/// A block's statements with each parameter token replaced by its value
/// (the spans stay those of the definition, where the errors point).
fn substitute(stmts: &[Stmt], params: &[String], values: &[u64]) -> Vec<Stmt> {
    let tok = |t: &Token| -> Token {
        match params.iter().position(|p| *p == t.text) {
            Some(k) if t.kind == TokenKind::Word => Token {
                kind: TokenKind::Int,
                text: values[k].to_string(),
                span: t.span,
            },
            _ => t.clone(),
        }
    };
    stmts
        .iter()
        .map(|s| Stmt {
            head: tok(&s.head),
            args: s.args.iter().map(tok).collect(),
            groups: s
                .groups
                .iter()
                .map(|g| Group {
                    label: g.label.clone(),
                    stmts: substitute(&g.stmts, params, values),
                    span: g.span,
                })
                .collect(),
            span: s.span,
        })
        .collect()
}
