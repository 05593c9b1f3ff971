//! One model's statements in order: `input` first and once, the shape carried
//! from layer to layer (with the trail shown in notes), the model's totals, and
//! what is still known (image or vector) after an error.

use super::resolve::Resolved;
use super::shapes::{makes_vector, Cur};
use super::show::shape_short;
use super::vocab::{activation_of, did_you_mean};
use super::{Checker, MAX_PARAMS};
use crate::ast::{ModelAst, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Shape, Span};

impl Checker {
    /// Checks one model: resolves its statements, then flows the shapes through
    /// them. `None` when the model has an error.
    pub(super) fn model(&mut self, m: &ModelAst, name: String) -> Option<ir::Model> {
        let stmts = self.split_statements(&m.stmts);
        let resolved: Vec<Option<Resolved>> = stmts
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // A shape without `input` as the first statement is reported once,
                // as a missing input (below), not also as "not a layer".
                if i == 0 && s.head.kind == TokenKind::Dims {
                    return None;
                }
                self.resolve(s)
            })
            .collect();

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
                    let looks_like_input = s.head.kind == TokenKind::Word
                        && did_you_mean(&s.head.text, &["input"]).is_some();
                    // An `input` further down is reported there ("must come first").
                    let later_input = stmts.iter().any(|t| t.head.text == "input");
                    if !looks_like_input && !later_input {
                        let help = match (s.head.kind, s.head.text.split('x').count()) {
                            (TokenKind::Dims, 3) => {
                                format!("add `input` before the shape: `input {}`", s.head.text)
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

        let mut layers = Vec::new();
        let mut trail: Vec<String> = Vec::new();
        if let Some(c) = &cur {
            trail.push(format!(
                "{} (input, line {})",
                shape_short(&c.shape),
                self.line(c.origin_span)
            ));
        }
        let mut total_params: u64 = 0;
        let mut non_trainable_params: u64 = 0;
        let mut total_flops: u64 = 0;
        let mut failed = input_shape.is_none();
        let mut kind: Option<Kind> = None;
        for (i, (s, r)) in stmts.iter().zip(&resolved).enumerate().skip(1) {
            let index = i - 1;
            if s.head.text == "input" && first_input.is_none() {
                first_input = Some(s.head.span);
                let top = stmts[0].span;
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
                failed = true;
                continue;
            }
            if s.head.text == "input" {
                let mut d = Diagnostic::new(
                    Code::MissingInput,
                    "`input` appears twice",
                    s.head.span,
                    "a second input",
                )
                .with_help("a model has one `input`, as its first statement: remove this one");
                if let Some(f) = first_input {
                    d = d.with_related(f, "the input is given here");
                }
                self.push(d);
                failed = true;
                continue;
            }
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
                // Activations, batchnorm, dropout keep their input's kind (even
                // when written wrongly); after an unknown word it is unknown.
                None if activation_of(word).is_some()
                    || word == "batchnorm"
                    || word == "dropout" =>
                {
                    before.clone()
                }
                None => None,
            };
            let Some(r) = r else {
                cur = None;
                failed = true;
                continue;
            };
            let Some(c) = cur.take() else {
                failed = true;
                if let Some(b) = before {
                    self.kind_only(s, r, b.vector, &b.origin, b.span, b.vector_by);
                }
                continue;
            };
            match self.layer(index, s, r, &c, &trail) {
                Ok(layer) => {
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
                    cur = Some(Cur {
                        shape: layer.output,
                        origin: format!("after {} on line {line}", s.text()),
                        origin_span: s.span,
                        vector_by,
                    });
                    // Each layer's non-trainable part is at most its count, so
                    // this sum stays below the checked total.
                    non_trainable_params += layer.non_trainable;
                    match total_params.checked_add(layer.param_count) {
                        Some(t) if t <= MAX_PARAMS => total_params = t,
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
                            failed = true;
                        }
                    }
                    match total_flops.checked_add(layer.flops) {
                        Some(t) => total_flops = t,
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
                            failed = true;
                        }
                    }
                    layers.push(layer);
                }
                Err(next) => {
                    failed = true;
                    cur = next;
                }
            }
        }

        self.warnings(&stmts, &resolved);

        if failed {
            return None;
        }
        let span = if m.name.is_some() {
            m.header_span
        } else {
            stmts[0].span
        };
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
