//! One model's statements in order: `input` first and once, the shape carried
//! from layer to layer (with the trail shown in notes), the model's totals, and
//! what is still known (image or vector) after an error.

use super::keras;
use super::resolve::Resolved;
use super::shapes::{makes_vector, Cur};
use super::show::shape_short;
use super::vocab::{activation_of, did_you_mean, LAYERS};
use super::{Checker, MAX_PARAMS};
use crate::ast::{ModelAst, Stmt, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Shape, Span};

impl Checker {
    /// Checks one model: resolves its statements, then flows the shapes through
    /// them. `None` when the model has an error.
    pub(super) fn model(&mut self, m: &ModelAst, name: String) -> Option<ir::Model> {
        let stmts = self.split_statements(&m.stmts);
        // The first statement now (it should be `input`), the others as the
        // shapes flow. A shape without `input` as the first statement is
        // reported once, as a missing input (below), not also as "not a layer".
        let resolved: Vec<Option<Resolved>> = match stmts.first() {
            Some(s) if s.head.kind != TokenKind::Dims => vec![self.resolve(s)],
            _ => vec![None],
        };

        // `input` must come first, exactly once.
        let mut cur: Option<Cur> = None;
        let mut input_shape = None;
        let mut first_input: Option<Span> = None;
        match (stmts.first(), resolved.first()) {
            (None, _) => {
                let span = if m.name.is_some() {
                    m.header_span
                } else {
                    // A bare body without statements: the file is empty (or all
                    // comments); point at its start.
                    Span::new(0, 0)
                };
                self.push(
                    Diagnostic::new(
                        Code::MissingInput,
                        format!("model `{name}` has no statements"),
                        span,
                        "empty model",
                    )
                    .with_help("add `input HxWxC` as the first statement, e.g. `input 28x28x1`"),
                );
                return None;
            }
            (Some(s), Some(r)) => {
                if s.head.text == "input" {
                    first_input = Some(s.head.span);
                    if let Some(Resolved::Input(v)) = r {
                        let [h, w, c] = v.v;
                        let shape = Shape::Image {
                            h: h as usize,
                            w: w as usize,
                            c: c as usize,
                        };
                        input_shape = Some(shape);
                        cur = Some(Cur {
                            shape,
                            origin: format!("the input on line {}", self.line(s.head.span)),
                            origin_span: v.span,
                            vector_by: "flatten",
                        });
                    }
                } else {
                    // A Keras `Input(...)`, or a first layer with Keras's
                    // `input_shape=`, has its own error, which shows the
                    // `input` statement to write.
                    let keras_input = keras::class_of(&s.head.text)
                        .is_some_and(|(_, t)| t == "input")
                        || s.args.iter().any(|a| a.text.starts_with("input_shape"));
                    let looks_like_input = s.head.kind == TokenKind::Word
                        && (did_you_mean(&s.head.text, &["input"]).is_some() || keras_input);
                    // An `input` further down is reported there ("must come first").
                    let later_input = stmts.iter().any(|t| t.head.text == "input");
                    if !looks_like_input && !later_input {
                        let input = format!("input {}", s.head.text);
                        let help = match (s.head.kind, s.head.text.split('x').count()) {
                            (TokenKind::Dims, 3) if self.valid_text(&input) => {
                                format!("add `input` before the shape: `{input}`")
                            }
                            _ => "add `input HxWxC` as the first statement, e.g. `input 28x28x1`"
                                .to_string(),
                        };
                        self.push(
                            Diagnostic::new(
                                Code::MissingInput,
                                format!("model `{name}` does not start with `input`"),
                                s.head.span,
                                "the first statement must be `input HxWxC`",
                            )
                            .with_help(help),
                        );
                    }
                }
            }
            _ => {}
        }

        let mut trail: Vec<String> = Vec::new();
        if let Some(c) = &cur {
            trail.push(format!(
                "{} (input, line {})",
                shape_short(&c.shape),
                self.line(c.origin_span)
            ));
        }
        let failed_input = input_shape.is_none();
        let top = Chain {
            path: String::new(),
            index: None,
            depth: 0,
            start: stmts[0].span,
            tail: true,
        };
        let out = self.chain(&stmts[1..], &top, cur, trail, &mut first_input);
        let mut resolved = resolved;
        resolved.truncate(1);
        resolved.extend(out.resolved);
        let (layers, failed) = (out.layers, out.failed || failed_input);
        self.warnings(&stmts, &resolved, true);

        if failed {
            return None;
        }
        let span = if m.name.is_some() {
            m.header_span
        } else {
            stmts[0].span
        };
        let (total_params, non_trainable_params, total_flops) = out.totals;
        Some(ir::Model {
            name,
            public: m.public,
            input: input_shape?,
            layers,
            total_params,
            non_trainable_params,
            total_flops,
            span,
        })
    }

    /// Checks a chain of statements (a model's after `input`, or a block's)
    /// on the shape `cur` that enters it.
    pub(super) fn chain(
        &mut self,
        stmts: &[Stmt],
        ctx: &Chain,
        mut cur: Option<Cur>,
        mut trail: Vec<String>,
        first_input: &mut Option<Span>,
    ) -> ChainOut {
        let mut layers = Vec::new();
        let mut resolved = Vec::with_capacity(stmts.len());
        let mut total_params: u64 = 0;
        let mut non_trainable_params: u64 = 0;
        let mut total_flops: u64 = 0;
        let mut failed = false;
        let mut kind: Option<Kind> = None;
        for (j, s) in stmts.iter().enumerate() {
            if self.aborted {
                failed = true;
                break;
            }
            // `x = conv ...` in a block (the top level's are split already).
            let rest;
            let s = match self.unassign(s).map(|r| r.into_iter().next()) {
                None => s,
                Some(Some(r)) => {
                    rest = r;
                    &rest
                }
                Some(None) => {
                    resolved.push(None);
                    failed = true;
                    continue;
                }
            };
            let index = ctx.index.unwrap_or(j);
            let path = format!("{}{j}", ctx.path);
            if s.head.text == "input" {
                resolved.push(None);
                failed = true;
                if ctx.depth > 0 {
                    self.push(
                        Diagnostic::new(
                            Code::MissingInput,
                            "`input` inside a block",
                            s.head.span,
                            "a block takes the shape that reaches it",
                        )
                        .with_help(
                            "a model has one `input`, as its first statement: remove this one",
                        ),
                    );
                } else if first_input.is_none() {
                    *first_input = Some(s.head.span);
                    let top = ctx.start;
                    self.push(
                        Diagnostic::new(
                            Code::MissingInput,
                            "`input` must be the first statement",
                            s.head.span,
                            "input given after other statements",
                        )
                        .with_related(top, "the model starts here")
                        .with_help(format!(
                            "move `{}` to the top, before line {}",
                            s.text(),
                            self.line(top)
                        )),
                    );
                } else {
                    let mut d = Diagnostic::new(
                        Code::MissingInput,
                        "`input` appears twice",
                        s.head.span,
                        "a second input",
                    )
                    .with_help("a model has one `input`, as its first statement: remove this one");
                    if let Some(f) = *first_input {
                        d = d.with_related(f, "the input is given here");
                    }
                    self.push(d);
                }
                continue;
            }
            if self.is_graph(s) {
                resolved.push(None);
                let sub = Chain {
                    path: format!("{path}."),
                    index: Some(index),
                    depth: ctx.depth + 1,
                    start: ctx.start,
                    tail: ctx.tail && j + 1 == stmts.len(),
                };
                kind = None;
                let Some(c) = cur.take() else {
                    failed = true;
                    self.graph_unchecked(s, &sub, first_input);
                    continue;
                };
                match self.graph(s, &sub, Some(&c), &trail, first_input) {
                    Some(layer) => {
                        cur = Some(self.after(s, &layer, &c, &mut trail));
                        failed |= !self.add_totals(
                            s,
                            &layer,
                            &mut total_params,
                            &mut non_trainable_params,
                            &mut total_flops,
                        );
                        layers.push(layer);
                    }
                    None => failed = true,
                }
                continue;
            }
            let r = self.resolve(s);
            // What kind of value (image or vector) leaves this statement, as far
            // as it is known even when the exact shape is not: lets the checker
            // still report `needs image` / `needs vector` after an earlier error.
            let before = cur.as_ref().map_or(kind.clone(), |c| {
                Some(Kind {
                    vector: matches!(c.shape, Shape::Vector { .. }),
                    origin: c.origin.clone(),
                    span: c.origin_span,
                    vector_by: c.vector_by,
                })
            });
            let word = s.head.text.as_str();
            kind = match makes_vector(word) {
                Some(vector) => Some(Kind {
                    vector,
                    origin: self.origin(s),
                    span: s.span,
                    // The layer that turns an image into a vector is the one a
                    // misplaced image layer should move before.
                    vector_by: match &before {
                        Some(b) if b.vector => b.vector_by,
                        _ => vector_word(word),
                    },
                }),
                // Activations, batchnorm, dropout and the augmentation layers
                // keep their input's kind (even when written wrongly, or on
                // a vector they cannot take); after an unknown word it is
                // unknown.
                None if activation_of(word).is_some()
                    || word == "batchnorm"
                    || word == "dropout"
                    || word.starts_with("random") && LAYERS.contains(&word) =>
                {
                    before.clone()
                }
                None => None,
            };
            if !s.groups.is_empty() {
                self.stray_block(s);
                failed = true;
            }
            let Some(r) = r else {
                resolved.push(None);
                cur = None;
                failed = true;
                continue;
            };
            let Some(c) = cur.take() else {
                failed = true;
                if let Some(b) = before {
                    self.kind_only(s, &r, b.vector, &b.origin, b.span, b.vector_by);
                }
                resolved.push(Some(r));
                continue;
            };
            match self.layer(index, &path, s, &r, &c, &trail) {
                Ok(layer) => {
                    self.count_unfolded(s);
                    cur = Some(self.after(s, &layer, &c, &mut trail));
                    failed |= !self.add_totals(
                        s,
                        &layer,
                        &mut total_params,
                        &mut non_trainable_params,
                        &mut total_flops,
                    );
                    layers.push(layer);
                }
                Err(next) => {
                    failed = true;
                    cur = next;
                }
            }
            resolved.push(Some(r));
        }
        // The top level's warnings are the model's to report (with `input`).
        if ctx.depth > 0 {
            self.warnings(stmts, &resolved, ctx.tail);
        }
        ChainOut {
            layers,
            resolved,
            cur,
            failed,
            totals: (total_params, non_trainable_params, total_flops),
        }
    }

    /// The shape leaving a checked layer, and its entry in the trail.
    fn after(&self, s: &Stmt, layer: &ir::Layer, c: &Cur, trail: &mut Vec<String>) -> Cur {
        let line = self.line(s.span);
        trail.push(format!(
            "{} ({}, line {line})",
            shape_short(&layer.output),
            s.head.text
        ));
        let vector_by = match (layer.input, layer.output) {
            (Shape::Image { .. }, Shape::Vector { .. }) => layer.op.keyword(),
            _ => c.vector_by,
        };
        Cur {
            shape: layer.output,
            origin: self.origin(s),
            origin_span: s.span,
            vector_by,
        }
    }

    /// Adds a layer to a chain's totals; false (reported) past the limits.
    fn add_totals(
        &mut self,
        s: &Stmt,
        layer: &ir::Layer,
        total_params: &mut u64,
        non_trainable_params: &mut u64,
        total_flops: &mut u64,
    ) -> bool {
        // Each layer's non-trainable part is at most its count, so this sum
        // stays below the checked total.
        *non_trainable_params += layer.non_trainable;
        let mut ok = true;
        match total_params.checked_add(layer.param_count) {
            Some(t) if t <= MAX_PARAMS => *total_params = t,
            _ => {
                self.push(
                    Diagnostic::new(
                        Code::TooLarge,
                        "too large: the model has more parameters than the runtime supports",
                        s.head.span,
                        "the total passes the limit here",
                    )
                    .with_help(format!(
                        "a model may have at most {MAX_PARAMS} (2^31) parameters: use fewer units or filters, or pool before this layer"
                    )),
                );
                ok = false;
            }
        }
        match total_flops.checked_add(layer.flops) {
            Some(t) => *total_flops = t,
            None => {
                self.push(
                    Diagnostic::new(
                        Code::TooLarge,
                        "too large: the model's FLOP count overflows 64 bits",
                        s.head.span,
                        "here",
                    )
                    .with_help("make the model smaller"),
                );
                ok = false;
            }
        }
        ok
    }
}

/// Where a chain of statements sits in its model.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    /// The path of the chain's statements up to their own index: empty at the
    /// top level, `5.1.` in the shortcut of statement 5.
    pub(super) path: String,
    /// The top-level statement the chain is inside (`None`: the top level).
    pub(super) index: Option<usize>,
    /// Blocks around the chain.
    pub(super) depth: usize,
    /// The model's first statement (where "input must come first" points).
    pub(super) start: Span,
    /// Whether nothing follows the chain's last statement in the model (for
    /// the warnings about the last layer).
    pub(super) tail: bool,
}

impl Chain {
    /// The chain of branch `k` of the graph statement this chain is inside;
    /// `last`: whether the model goes on from that branch's end (the last copy
    /// of a `repeat`, a block use) rather than from a join.
    pub(super) fn branch(&self, k: usize, last: bool) -> Chain {
        Chain {
            path: format!("{}{k}.", self.path),
            index: self.index,
            depth: self.depth + 1,
            start: self.start,
            tail: self.tail && last,
        }
    }
}

/// What a chain gives.
pub(super) struct ChainOut {
    pub(super) layers: Vec<ir::Layer>,
    /// Each statement resolved on its own (`None` for graph statements).
    pub(super) resolved: Vec<Option<Resolved>>,
    /// The shape leaving the chain, when known.
    pub(super) cur: Option<Cur>,
    pub(super) failed: bool,
    /// Parameters, of which not trainable, and FLOPs.
    pub(super) totals: (u64, u64, u64),
}

/// What leaves a statement, as far as known without its exact shape.
#[derive(Debug, Clone)]
struct Kind {
    /// A vector (or an image).
    vector: bool,
    /// "after flatten on line 3", for messages.
    origin: String,
    /// The statement it comes from.
    span: Span,
    /// See [`Cur::vector_by`].
    vector_by: &'static str,
}

/// The keyword of a statement that makes a vector, as a `'static` word.
fn vector_word(word: &str) -> &'static str {
    match word {
        "globalavgpool" => "globalavgpool",
        "globalmaxpool" => "globalmaxpool",
        _ => "flatten",
    }
}
