//! The checker: [`crate::ast::File`] -> [`crate::ir::Model`]s and diagnostics.
//!
//! Two stages per model. First every statement is resolved on its own (layer name,
//! positional arguments, options, defaults): syntax-level problems are reported
//! there and the statement is dropped. Then the shapes flow through the resolved
//! statements: each layer gets its input and output shape, padding split,
//! parameter shapes and FLOPs. After a shape error the shape is unknown, so the
//! following layers are still resolved (and their own errors reported) but not
//! shape-checked: one mistake gives one error, not a cascade.
//!
//! All size arithmetic is done in `u64` with checked operations, against the
//! runtime limits below; nothing can overflow or wrap.

use crate::ast::{File, ModelAst, Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::{self, Activation, Padding, PoolKind, Shape, Span};

/// Largest value of any single number in a model: an input axis, a filter or unit
/// count, a window, a stride or a dilation (2^20).
pub const MAX_DIM: u64 = 1 << 20;
/// Largest number of values in one sample of any layer's output (2^31): the
/// runtime indexes within a sample with 32-bit integers.
pub const MAX_ELEMENTS: u64 = 1 << 31;
/// Largest number of parameters of a layer, and of a whole model (2^31, 8 GiB of f32).
pub const MAX_PARAMS: u64 = 1 << 31;

/// The layers the language has today.
pub const LAYERS: [&str; 7] = [
    "input", "conv", "maxpool", "avgpool", "minpool", "flatten", "dense",
];
/// The activations (usable as a layer option or as a statement of their own).
pub const ACTIVATIONS: [&str; 5] = ["relu", "sigmoid", "tanh", "softmax", "linear"];
/// Planned layers and activations: recognised so that the error says "not yet".
pub const PLANNED: [&str; 9] = [
    "dropout",
    "batchnorm",
    "globalavgpool",
    "globalmaxpool",
    "leaky_relu",
    "elu",
    "gelu",
    "residual",
    "upsample",
];

/// Common names from other frameworks, mapped to ours (for "did you mean").
const ALIASES: [(&str, &str); 20] = [
    ("conv2d", "conv"),
    ("convolution", "conv"),
    ("convolution2d", "conv"),
    ("maxpool2d", "maxpool"),
    ("maxpooling", "maxpool"),
    ("maxpooling2d", "maxpool"),
    ("max_pool", "maxpool"),
    ("avgpool2d", "avgpool"),
    ("averagepooling2d", "avgpool"),
    ("averagepool", "avgpool"),
    ("avg_pool", "avgpool"),
    ("avgpooling", "avgpool"),
    ("minpool2d", "minpool"),
    ("minpooling", "minpool"),
    ("fc", "dense"),
    ("fully_connected", "dense"),
    ("linear_layer", "dense"),
    ("flat", "flatten"),
    ("reshape", "flatten"),
    ("activation", "relu"),
];

fn activation_of(word: &str) -> Option<Activation> {
    Some(match word {
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        "linear" => Activation::Linear,
        _ => return None,
    })
}

const RUST_KEYWORDS: [&str; 51] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| **c == lower) {
        return Some(c);
    }
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(&lower, c);
        let limit = if c.len() <= 3 {
            1
        } else {
            (lower.len().max(c.len()) / 3).max(2)
        };
        let prefix = c.len() >= 4 && (lower.starts_with(c) || c.starts_with(lower.as_str()));
        if (d <= limit || (prefix && lower.len() >= 3)) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Maps byte offsets to 1-based line numbers.
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(src: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }
    pub(crate) fn line(&self, pos: usize) -> usize {
        match self.starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// A value and the span of the token it came from.
#[derive(Debug, Clone, Copy)]
struct Val<T> {
    v: T,
    span: Span,
}

/// A statement resolved on its own, before shapes.
#[derive(Debug, Clone)]
enum Resolved {
    Input(Val<[u64; 3]>),
    Conv {
        filters: Val<u64>,
        kernel: Val<[u64; 2]>,
        stride: Option<Val<[u64; 2]>>,
        dilation: Option<Val<[u64; 2]>>,
        padding: Option<Val<Padding>>,
        act: Option<Val<Activation>>,
    },
    Pool {
        kind: PoolKind,
        window: Val<[u64; 2]>,
        stride: Option<Val<[u64; 2]>>,
        padding: Option<Val<Padding>>,
    },
    Flatten,
    Dense {
        units: Val<u64>,
        act: Option<Val<Activation>>,
    },
    Act(Val<Activation>),
}

impl Resolved {
    fn activation(&self) -> Option<Val<Activation>> {
        match self {
            Resolved::Conv { act, .. } | Resolved::Dense { act, .. } => *act,
            Resolved::Act(a) => Some(*a),
            _ => None,
        }
    }
}

/// Where the current shape came from, for messages.
#[derive(Debug, Clone)]
struct Cur {
    shape: Shape,
    /// "after maxpool 2 on line 6" / "the input on line 1"
    origin: String,
    origin_span: Span,
}

struct Checker {
    lines: Lines,
    diags: Vec<Diagnostic>,
}

fn fmt2(v: [u64; 2]) -> String {
    format!("{}x{}", v[0], v[1])
}

fn shape_short(s: &Shape) -> String {
    match *s {
        Shape::Image { h, w, c } => format!("{h}x{w}x{c}"),
        Shape::Vector { n } => format!("{n}"),
    }
}

fn diag(
    code: Code,
    message: impl Into<String>,
    span: Span,
    label: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        severity: code.severity(),
        code,
        message: message.into(),
        span,
        label: label.into(),
        related: Vec::new(),
        notes: Vec::new(),
        help: None,
    }
}

trait With {
    fn help(self, h: impl Into<String>) -> Self;
    fn note(self, n: impl Into<String>) -> Self;
    fn related(self, s: Span, l: impl Into<String>) -> Self;
}
impl With for Diagnostic {
    fn help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
    fn note(mut self, n: impl Into<String>) -> Self {
        self.notes.push(n.into());
        self
    }
    fn related(mut self, s: Span, l: impl Into<String>) -> Self {
        self.related.push((s, l.into()));
        self
    }
}

/// Checks every model of a parsed file. Returns the models without errors and
/// all diagnostics (sorted by position).
pub(crate) fn check_file(
    src: &str,
    file: &File,
    default_name: &str,
) -> (Vec<ir::Model>, Vec<Diagnostic>) {
    let mut ck = Checker {
        lines: Lines::new(src),
        diags: Vec::new(),
    };
    let mut models = Vec::new();
    let mut seen: Vec<(String, Span)> = Vec::new();
    for m in &file.models {
        let mut ok = true;
        let name = match &m.name {
            Some((n, span)) => {
                if RUST_KEYWORDS.contains(&n.as_str()) {
                    ck.push(
                        diag(
                            Code::Syntax,
                            format!("model name `{n}` is a Rust keyword"),
                            *span,
                            "not usable as a type name",
                        )
                        .help(format!(
                            "rename the model, e.g. `model {}Net`",
                            upper_first(n)
                        )),
                    );
                    ok = false;
                }
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                    ck.push(
                        diag(
                            Code::DuplicateModel,
                            format!("duplicate model `{n}`"),
                            *span,
                            "a second model with this name",
                        )
                        .related(*first, "first defined here")
                        .help("rename one of the two models"),
                    );
                    ok = false;
                } else {
                    seen.push((n.clone(), *span));
                }
                n.clone()
            }
            None => default_name.to_string(),
        };
        let errors_before = ck.error_count();
        let model = ck.model(m, name);
        if ok && ck.error_count() == errors_before {
            if let Some(model) = model {
                models.push(model);
            }
        }
    }
    let mut diags = ck.diags;
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    (models, diags)
}

/// A user's token as shown in a message: control characters escaped, long
/// tokens cut.
fn shown(t: &str) -> String {
    abbreviate(&t.escape_debug().to_string())
}

/// Long tokens (a 10,000-digit number) are cut in messages.
fn abbreviate(t: &str) -> String {
    if t.len() <= 24 {
        return t.to_string();
    }
    let cut = (0..=20).rev().find(|i| t.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... ({} characters)", &t[..cut], t.chars().count())
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Is `word` the name of a statement (so that finding it among a statement's
/// arguments means a `;` is missing)?
fn is_statement_word(word: &str) -> bool {
    LAYERS.contains(&word) || PLANNED[..4].contains(&word)
}

impl Checker {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    fn line(&self, span: Span) -> usize {
        self.lines.line(span.start)
    }

    /// Splits statements where a layer name appears among the arguments (a
    /// forgotten `;`), reporting each split.
    fn split_statements(&mut self, stmts: &[Stmt]) -> Vec<Stmt> {
        let mut out = Vec::new();
        for s in stmts {
            let mut cur = Stmt {
                head: s.head.clone(),
                args: Vec::new(),
                span: s.span,
            };
            for a in &s.args {
                if a.kind == TokenKind::Word && is_statement_word(&a.text) {
                    self.push(
                        diag(
                            Code::Syntax,
                            format!("expected `;` before `{}`", a.text),
                            a.span,
                            "a new statement starts here",
                        )
                        .help(format!(
                            "statements are separated by `;`: write `{}; {} ...`",
                            cur.text(),
                            a.text
                        )),
                    );
                    let end = cur.args.last().map_or(cur.head.span.end, |t| t.span.end);
                    cur.span = Span::new(cur.span.start, end);
                    out.push(cur);
                    cur = Stmt {
                        head: a.clone(),
                        args: Vec::new(),
                        span: Span::new(a.span.start, s.span.end),
                    };
                } else {
                    cur.args.push(a.clone());
                }
            }
            out.push(cur);
        }
        out
    }

    fn model(&mut self, m: &ModelAst, name: String) -> Option<ir::Model> {
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
                    diag(
                        Code::MissingInput,
                        format!("model `{name}` has no statements"),
                        span,
                        "empty model",
                    )
                    .help("add `input HxWxC` as the first statement, e.g. `input 28x28x1`"),
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
                            diag(
                                Code::MissingInput,
                                format!("model `{name}` does not start with `input`"),
                                s.head.span,
                                "the first statement must be `input HxWxC`",
                            )
                            .help(help),
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
        let mut total_flops: u64 = 0;
        let mut failed = input_shape.is_none();
        let mut kind: Option<(bool, String, Span)> = None;
        for (i, (s, r)) in stmts.iter().zip(&resolved).enumerate().skip(1) {
            let index = i - 1;
            if s.head.text == "input" && first_input.is_none() {
                first_input = Some(s.head.span);
                let top = stmts[0].span;
                self.push(
                    diag(
                        Code::MissingInput,
                        "`input` must be the first statement",
                        s.head.span,
                        "input given after other statements",
                    )
                    .related(top, "the model starts here")
                    .help(format!(
                        "move `{}` to the top, before line {}",
                        s.text(),
                        self.line(top)
                    )),
                );
                failed = true;
                continue;
            }
            if s.head.text == "input" {
                let mut d = diag(
                    Code::MissingInput,
                    "`input` appears twice",
                    s.head.span,
                    "a second input",
                )
                .help("a model has one `input`, as its first statement: remove this one");
                if let Some(f) = first_input {
                    d = d.related(f, "the input is given here");
                }
                self.push(d);
                failed = true;
                continue;
            }
            // What kind of value (image or vector) leaves this statement, as far
            // as it is known even when the exact shape is not: lets the checker
            // still report `needs image` / `needs vector` after an earlier error.
            let before = cur.as_ref().map_or(kind.clone(), |c| {
                Some((
                    matches!(c.shape, Shape::Vector { .. }),
                    c.origin.clone(),
                    c.origin_span,
                ))
            });
            let after = match s.head.text.as_str() {
                "flatten" | "dense" => Some((true, self.origin(s), s.span)),
                "conv" | "maxpool" | "avgpool" | "minpool" => Some((false, self.origin(s), s.span)),
                w if activation_of(w).is_some() => before.clone(),
                _ => None,
            };
            kind = after;
            let Some(r) = r else {
                cur = None;
                failed = true;
                continue;
            };
            let Some(c) = cur.take() else {
                failed = true;
                if let Some((is_vector, origin, origin_span)) = before {
                    self.kind_only(s, r, is_vector, &origin, origin_span);
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
                    cur = Some(Cur {
                        shape: layer.output,
                        origin: format!("after {} on line {line}", s.text()),
                        origin_span: s.span,
                    });
                    match total_params.checked_add(layer.param_count) {
                        Some(t) if t <= MAX_PARAMS => total_params = t,
                        _ => {
                            self.push(
                                diag(
                                    Code::TooLarge,
                                    "too large: the model has more parameters than the runtime supports",
                                    s.head.span,
                                    "the total passes the limit here",
                                )
                                .help(format!(
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
                                diag(
                                    Code::TooLarge,
                                    "too large: the model's FLOP count overflows 64 bits",
                                    s.head.span,
                                    "here",
                                )
                                .help("make the model smaller"),
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
            total_flops,
            span,
        })
    }

    fn warnings(&mut self, stmts: &[Stmt], resolved: &[Option<Resolved>]) {
        let n = stmts.len();
        for (i, r) in resolved.iter().enumerate() {
            let Some(r) = r else { continue };
            let Some(act) = r.activation() else { continue };
            if act.v == Activation::Softmax && i + 1 < n {
                self.push(
                    diag(
                        Code::SoftmaxNotLast,
                        "softmax is not on the last layer",
                        act.span,
                        "softmax here squashes the values the next layers see",
                    )
                    .help("softmax belongs on the output layer: use relu here, or remove the layers after it"),
                );
            }
            if let (Resolved::Act(_), Some(Some(prev))) =
                (r, i.checked_sub(1).map(|j| &resolved[j]))
            {
                if let Some(p) = prev.activation() {
                    if p.v != Activation::Linear && act.v != Activation::Linear {
                        self.push(
                            diag(
                                Code::DoubleActivation,
                                format!(
                                    "two activations in a row: {} then {}",
                                    p.v.keyword(),
                                    act.v.keyword()
                                ),
                                act.span,
                                "applied on top of the previous activation",
                            )
                            .related(p.span, "the previous activation")
                            .help("keep only one of them"),
                        );
                    }
                }
            }
        }
    }

    fn origin(&self, s: &Stmt) -> String {
        format!("after {} on line {}", s.text(), self.line(s.span))
    }

    /// After an earlier error the exact shape is unknown, but whether it is an
    /// image or a vector may be: report `needs image` / `needs vector` then.
    fn kind_only(&mut self, s: &Stmt, r: &Resolved, is_vector: bool, origin: &str, from: Span) {
        let kw = s.head.span;
        let kwt = s.head.text.as_str();
        match r {
            Resolved::Conv { .. } | Resolved::Pool { .. } if is_vector => self.push(
                diag(
                    Code::NeedsImage,
                    format!("`{kwt}` needs an image HxWxC, but it gets a vector"),
                    kw,
                    "this layer needs HxWxC",
                )
                .related(from, "the input becomes a vector here")
                .help(format!(
                    "this layer needs HxWxC; it gets a vector ({origin}): move it before the flatten"
                )),
            ),
            Resolved::Dense { .. } if !is_vector => self.push(
                diag(
                    Code::NeedsVector,
                    "`dense` needs a vector, but it gets an image",
                    kw,
                    "this layer needs a flat vector",
                )
                .related(from, "the image comes from here")
                .help("insert `flatten;` before this layer"),
            ),
            _ => {}
        }
    }

    /// Computes one layer from its input shape. On error returns the shape to
    /// continue with (when one is known, e.g. dense on an image continues as if
    /// flattened) so that later layers are still checked.
    fn layer(
        &mut self,
        index: usize,
        s: &Stmt,
        r: &Resolved,
        cur: &Cur,
        trail: &[String],
    ) -> Result<ir::Layer, Option<Cur>> {
        let trail_note = || {
            let start = trail.len().saturating_sub(6);
            let prefix = if start > 0 { "... -> " } else { "" };
            format!("shapes so far: {prefix}{}", trail[start..].join(" -> "))
        };
        let kw = s.head.span;
        let kwt = s.head.text.as_str();
        let mk = |op: ir::Op,
                  output: Shape,
                  params: Option<ir::ParamShapes>,
                  param_count: u64,
                  flops: u64| ir::Layer {
            index,
            op,
            input: cur.shape,
            output,
            params,
            param_count,
            flops,
            span: s.span,
            keyword_span: kw,
        };
        match r {
            Resolved::Input(_) => Err(None),
            Resolved::Conv { .. } | Resolved::Pool { .. } => {
                let Shape::Image { h, w, c } = cur.shape else {
                    let n = cur.shape.len();
                    self.push(
                        diag(
                            Code::NeedsImage,
                            format!("`{kwt}` needs an image HxWxC, but it gets a vector of {n}"),
                            kw,
                            "this layer needs HxWxC",
                        )
                        .related(cur.origin_span, "the input becomes a vector here")
                        .note(trail_note())
                        .help(format!(
                            "this layer needs HxWxC; it gets a vector of {n} ({}): move it before the flatten",
                            cur.origin
                        )),
                    );
                    return Err(None);
                };
                let (window, stride, dilation, padding) = match r {
                    Resolved::Conv {
                        kernel,
                        stride,
                        dilation,
                        padding,
                        ..
                    } => (*kernel, *stride, *dilation, *padding),
                    Resolved::Pool {
                        window,
                        stride,
                        padding,
                        ..
                    } => (*window, *stride, None, *padding),
                    _ => return Err(None),
                };
                let is_pool = matches!(r, Resolved::Pool { .. });
                let st = stride.map_or(if is_pool { window.v } else { [1, 1] }, |v| v.v);
                let dl = dilation.map_or([1, 1], |v| v.v);
                let pad = padding.map_or(Padding::Valid, |v| v.v);
                let n = [h as u64, w as u64];
                let mut out = [0u64; 2];
                let mut before = [0u64; 2];
                let mut after = [0u64; 2];
                let mut eff = [0u64; 2];
                let mut too_big = false;
                for ax in 0..2 {
                    // k, d <= 2^20, so e <= 2^40: no overflow.
                    let e = (window.v[ax] - 1) * dl[ax] + 1;
                    eff[ax] = e;
                    match pad {
                        Padding::Valid => {
                            if n[ax] < e {
                                too_big = true;
                            } else {
                                out[ax] = (n[ax] - e) / st[ax] + 1;
                            }
                        }
                        Padding::Same => {
                            out[ax] = n[ax].div_ceil(st[ax]);
                            let p = ((out[ax] - 1) * st[ax] + e).saturating_sub(n[ax]);
                            before[ax] = p / 2;
                            after[ax] = p - p / 2;
                        }
                    }
                }
                if too_big {
                    let what = if is_pool { "pool window" } else { "kernel" };
                    let covers = if dl != [1, 1] {
                        format!(
                            "with dilation {}, this {} {what} covers {}",
                            fmt2(dl),
                            fmt2(window.v),
                            fmt2(eff)
                        )
                    } else {
                        format!(
                            "this {} window needs an input of at least {}",
                            fmt2(window.v),
                            fmt2(eff)
                        )
                    };
                    let fit = [eff[0].min(n[0]), eff[1].min(n[1])];
                    self.push(
                        diag(
                            Code::WindowTooBig,
                            format!(
                                "window too big: the {} {what} does not fit its {}x{} input",
                                fmt2(window.v),
                                h,
                                w
                            ),
                            window.span,
                            covers,
                        )
                        .related(cur.origin_span, format!("the {} input comes from here", shape_short(&cur.shape)))
                        .note(trail_note())
                        .help(format!(
                            "the input here is {} ({}); use `same` padding or a window of at most {}",
                            shape_short(&cur.shape),
                            cur.origin,
                            fmt2(fit)
                        )),
                    );
                    return Err(None);
                }
                let pad2 = ir::Pad2 {
                    top: before[0] as usize,
                    bottom: after[0] as usize,
                    left: before[1] as usize,
                    right: after[1] as usize,
                };
                let ch = match r {
                    Resolved::Conv { filters, .. } => filters.v,
                    _ => c as u64,
                };
                let elems = self
                    .elements(out[0], out[1], ch, kw, kwt)
                    .map_err(|d| self.push((*d).note(trail_note())))
                    .map_err(|_| None)?;
                let window_cells = window.v[0] * window.v[1];
                match r {
                    Resolved::Conv { filters, act, .. } => {
                        let f = filters.v;
                        let per_filter = window_cells.checked_mul(c as u64);
                        let params = per_filter
                            .and_then(|p| p.checked_mul(f))
                            .and_then(|p| p.checked_add(f));
                        let Some(params) = params.filter(|p| *p <= MAX_PARAMS) else {
                            self.push(
                                diag(
                                    Code::TooLarge,
                                    format!(
                                        "too large: this conv has more than {MAX_PARAMS} parameters"
                                    ),
                                    kw,
                                    format!(
                                        "{}x{}x{c}x{f} kernel",
                                        window.v[0], window.v[1]
                                    ),
                                )
                                .note(trail_note())
                                .help(format!(
                                    "a layer may have at most {MAX_PARAMS} (2^31) parameters: use fewer filters or a smaller kernel"
                                )),
                            );
                            return Err(None);
                        };
                        // elems <= 2^31 and per_filter <= params <= 2^31: fits in u64.
                        let flops = per_filter
                            .and_then(|p| p.checked_mul(elems))
                            .and_then(|p| p.checked_mul(2))
                            .unwrap_or(u64::MAX);
                        let op = ir::Op::Conv(ir::Conv {
                            filters: f as usize,
                            kernel: [window.v[0] as usize, window.v[1] as usize],
                            stride: [st[0] as usize, st[1] as usize],
                            dilation: [dl[0] as usize, dl[1] as usize],
                            padding: pad,
                            pad: pad2,
                            activation: act.map_or(Activation::Linear, |a| a.v),
                        });
                        let shapes = ir::ParamShapes {
                            kernel: vec![window.v[0] as usize, window.v[1] as usize, c, f as usize],
                            bias: vec![f as usize],
                        };
                        Ok(mk(
                            op,
                            Shape::Image {
                                h: out[0] as usize,
                                w: out[1] as usize,
                                c: f as usize,
                            },
                            Some(shapes),
                            params,
                            flops,
                        ))
                    }
                    Resolved::Pool { kind, .. } => {
                        let flops = elems.saturating_mul(window_cells);
                        let op = ir::Op::Pool(ir::Pool {
                            kind: *kind,
                            window: [window.v[0] as usize, window.v[1] as usize],
                            stride: [st[0] as usize, st[1] as usize],
                            padding: pad,
                            pad: pad2,
                        });
                        Ok(mk(
                            op,
                            Shape::Image {
                                h: out[0] as usize,
                                w: out[1] as usize,
                                c,
                            },
                            None,
                            0,
                            flops,
                        ))
                    }
                    _ => Err(None),
                }
            }
            Resolved::Flatten => {
                let out = Shape::Vector { n: cur.shape.len() };
                Ok(mk(ir::Op::Flatten, out, None, 0, 0))
            }
            Resolved::Dense { units, act } => {
                let n_in = cur.shape.len() as u64;
                let mut err = false;
                if let Shape::Image { .. } = cur.shape {
                    self.push(
                        diag(
                            Code::NeedsVector,
                            format!(
                                "`dense` needs a vector, but it gets the image {}",
                                shape_short(&cur.shape)
                            ),
                            kw,
                            "this layer needs a flat vector",
                        )
                        .related(cur.origin_span, format!("the {} image comes from here", shape_short(&cur.shape)))
                        .note(trail_note())
                        .help(format!(
                            "insert `flatten;` before this layer (it turns {} into a vector of {n_in})",
                            shape_short(&cur.shape)
                        )),
                    );
                    err = true;
                }
                let u = units.v;
                let params = n_in
                    .checked_mul(u)
                    .and_then(|p| p.checked_add(u))
                    .filter(|p| *p <= MAX_PARAMS);
                let Some(params) = params else {
                    self.push(
                        diag(
                            Code::TooLarge,
                            format!("too large: this dense layer has more than {MAX_PARAMS} parameters"),
                            kw,
                            format!("{n_in} inputs x {u} units"),
                        )
                        .note(trail_note())
                        .help(format!(
                            "a layer may have at most {MAX_PARAMS} (2^31) parameters: use fewer units, or pool before flattening"
                        )),
                    );
                    return Err(None);
                };
                let out = Shape::Vector { n: u as usize };
                if err {
                    // Continue as if flattened, to check the layers after.
                    return Err(Some(Cur {
                        shape: out,
                        origin: format!("after {} on line {}", s.text(), self.line(s.span)),
                        origin_span: s.span,
                    }));
                }
                let op = ir::Op::Dense(ir::Dense {
                    units: u as usize,
                    activation: act.map_or(Activation::Linear, |a| a.v),
                });
                let shapes = ir::ParamShapes {
                    kernel: vec![n_in as usize, u as usize],
                    bias: vec![u as usize],
                };
                // n_in * u <= params <= 2^31.
                Ok(mk(op, out, Some(shapes), params, 2 * n_in * u))
            }
            Resolved::Act(a) => Ok(mk(
                ir::Op::Activation(a.v),
                cur.shape,
                None,
                0,
                cur.shape.len() as u64,
            )),
        }
    }

    /// Checks an output size against the runtime's limit; returns the element count.
    /// Checks an output size against the runtime's limit; returns the element
    /// count, or the diagnostic for the caller to complete and push.
    fn elements(
        &self,
        h: u64,
        w: u64,
        c: u64,
        span: Span,
        kw: &str,
    ) -> Result<u64, Box<Diagnostic>> {
        match h.checked_mul(w).and_then(|x| x.checked_mul(c)) {
            Some(n) if n <= MAX_ELEMENTS => Ok(n),
            _ => Err(Box::new(diag(
                Code::TooLarge,
                format!(
                    "too large: the output of this {kw} ({h}x{w}x{c}) has more values than the runtime supports"
                ),
                span,
                "output too large",
            )
            .help(format!(
                "a layer's output may hold at most {MAX_ELEMENTS} (2^31) values per sample: use fewer filters or a larger stride"
            )))),
        }
    }

    // ---------------------------------------------------------------- resolve

    /// Resolves one statement on its own; reports its syntax-level problems.
    fn resolve(&mut self, s: &Stmt) -> Option<Resolved> {
        if s.head.kind != TokenKind::Word {
            let help = match (s.head.kind, s.head.text.split('x').count()) {
                (TokenKind::Dims, 3) => format!("did you mean `input {}`?", s.head.text),
                _ => "a statement starts with a layer such as conv, maxpool, dense".to_string(),
            };
            self.push(
                diag(
                    Code::Syntax,
                    format!(
                        "expected a layer such as conv, maxpool, dense, found `{}`",
                        shown(&s.head.text)
                    ),
                    s.head.span,
                    "not a layer",
                )
                .help(help),
            );
            return None;
        }
        let kw = s.head.text.as_str();
        match kw {
            "input" => self.resolve_input(s),
            "conv" => self.resolve_window_layer(s, None),
            "maxpool" => self.resolve_window_layer(s, Some(PoolKind::Max)),
            "avgpool" => self.resolve_window_layer(s, Some(PoolKind::Avg)),
            "minpool" => self.resolve_window_layer(s, Some(PoolKind::Min)),
            "flatten" => {
                self.no_args(s)?;
                Some(Resolved::Flatten)
            }
            "dense" => self.resolve_dense(s),
            _ => {
                if let Some(a) = activation_of(kw) {
                    self.no_args(s)?;
                    return Some(Resolved::Act(Val {
                        v: a,
                        span: s.head.span,
                    }));
                }
                self.unknown_layer(&s.head);
                None
            }
        }
    }

    fn unknown_layer(&mut self, t: &Token) {
        let word = t.text.as_str();
        if PLANNED.contains(&word) {
            self.push(
                diag(
                    Code::Syntax,
                    format!("`{word}` is not supported yet"),
                    t.span,
                    "planned, not implemented",
                )
                .help(format!(
                    "remove `{word}` for now; the layers are: {}",
                    LAYERS[1..].join(", ")
                )),
            );
            return;
        }
        if ["same", "valid", "stride", "dilation"].contains(&word) {
            self.push(
                diag(
                    Code::Syntax,
                    format!("`{word}` is an option, not a layer"),
                    t.span,
                    "an option on its own",
                )
                .help(format!(
                    "put it after the layer it belongs to, e.g. `conv 32 3x3 {word}{}`",
                    if word == "stride" || word == "dilation" {
                        " 2"
                    } else {
                        ""
                    }
                )),
            );
            return;
        }
        let mut candidates: Vec<&str> = LAYERS.to_vec();
        candidates.extend(ACTIVATIONS);
        let lower = word.to_ascii_lowercase();
        let alias = ALIASES.iter().find(|(a, _)| *a == lower).map(|(_, b)| *b);
        let suggestion = alias.or_else(|| did_you_mean(word, &candidates));
        let help = match suggestion {
            Some(sug) if lower == sug => format!("keywords are lowercase: write `{sug}`"),
            Some(sug) => format!("did you mean `{sug}`?"),
            None => format!(
                "the layers are {}, and the activations {}",
                LAYERS.join(", "),
                ACTIVATIONS.join(", ")
            ),
        };
        let message = match suggestion {
            Some(sug) if lower == sug => format!("unknown layer `{word}`: keywords are lowercase"),
            _ => format!("unknown layer `{word}`"),
        };
        self.push(diag(Code::Syntax, message, t.span, "unknown layer").help(help));
    }

    fn no_args(&mut self, s: &Stmt) -> Option<()> {
        let mut ok = true;
        for a in &s.args {
            self.unexpected(s, a, &format!("`{}` takes no arguments", s.head.text));
            ok = false;
        }
        ok.then_some(())
    }

    /// Reports a token that has no place here.
    fn unexpected(&mut self, s: &Stmt, a: &Token, help: &str) {
        if a.kind == TokenKind::Bad {
            self.bad_token(a);
            return;
        }
        self.push(
            diag(
                Code::Syntax,
                format!("unexpected `{}` in `{}`", a.text, s.head.text),
                a.span,
                "not expected here",
            )
            .help(help.to_string()),
        );
    }

    fn bad_token(&mut self, a: &Token) {
        let t = a.text.as_str();
        let starts_digit = t.starts_with(|c: char| c.is_ascii_digit());
        let (message, help) = if t.starts_with('-')
            && t[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            (
                format!("bad number `{}`", shown(t)),
                "sizes are positive integers".to_string(),
            )
        } else if starts_digit && t.contains('x') {
            (
                format!("bad dimension `{}`", shown(t)),
                "write dimensions as positive integers joined by `x`, e.g. `3x3` or `28x28x1`"
                    .to_string(),
            )
        } else if starts_digit {
            (
                format!("bad number `{}`", shown(t)),
                "write a positive integer such as `32`, or a dimension such as `3x3`".to_string(),
            )
        } else {
            (
                format!("unexpected `{}`", shown(t)),
                "arguments are separated by spaces, statements by `;`".to_string(),
            )
        };
        self.push(diag(Code::Syntax, message, a.span, "not a valid token").help(help));
    }

    /// Parses a non-negative integer token; reports `too large`.
    fn uint(&mut self, t: &str, span: Span, what: &str) -> Option<u64> {
        let v: Option<u64> = t.parse().ok();
        match v {
            Some(v) if v <= MAX_DIM => Some(v),
            _ => {
                self.push(
                    diag(
                        Code::TooLarge,
                        format!("too large: {what} {}", abbreviate(t)),
                        span,
                        "number too large",
                    )
                    .help(format!(
                        "every size, count, window, stride and dilation is at most {MAX_DIM} (2^20)"
                    )),
                );
                None
            }
        }
    }

    /// Parses a `3x3` / `28x28x1` token into its numbers.
    fn dims(&mut self, t: &Token, what: &str) -> Option<Vec<u64>> {
        let mut out = Vec::new();
        let mut ok = true;
        for part in t.text.split('x') {
            match self.uint(part, t.span, what) {
                Some(v) => out.push(v),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        ok.then_some(out)
    }

    fn zero(&mut self, span: Span, message: String, help: &str) {
        self.push(diag(Code::ZeroOrEmpty, message, span, "zero here").help(help.to_string()));
    }

    fn resolve_input(&mut self, s: &Stmt) -> Option<Resolved> {
        let Some(t) = s.args.first() else {
            self.push(
                diag(
                    Code::Syntax,
                    "`input` needs a shape HxWxC",
                    s.head.span,
                    "no shape given",
                )
                .help("write the image size and channels, e.g. `input 28x28x1`"),
            );
            return None;
        };
        let mut ok = true;
        for extra in &s.args[1..] {
            self.unexpected(
                s,
                extra,
                "`input` takes one shape HxWxC, e.g. `input 28x28x1`",
            );
            ok = false;
        }
        let v = match t.kind {
            TokenKind::Dims => self.dims(t, "input size")?,
            TokenKind::Int => vec![self.uint(&t.text, t.span, "input size")?],
            TokenKind::Bad => {
                self.bad_token(t);
                return None;
            }
            _ => {
                self.push(
                    diag(
                        Code::Syntax,
                        format!("`input` needs a shape HxWxC, found `{}`", t.text),
                        t.span,
                        "expected HxWxC",
                    )
                    .help("write the image size and channels, e.g. `input 28x28x1`"),
                );
                return None;
            }
        };
        if v.len() != 3 {
            let help = if v.len() == 2 {
                format!(
                    "add the channel count: `input {}x1` for one channel, `x3` for RGB",
                    t.text
                )
            } else {
                "write three numbers HxWxC, e.g. `input 28x28x1`".to_string()
            };
            self.push(
                diag(
                    Code::Syntax,
                    format!(
                        "bad dimension: `input` needs three numbers HxWxC, found `{}`",
                        t.text
                    ),
                    t.span,
                    "expected HxWxC",
                )
                .help(help),
            );
            return None;
        }
        if v.contains(&0) {
            self.zero(
                t.span,
                format!("zero or empty: input `{}` has an axis of size 0", t.text),
                "every input axis needs at least one cell",
            );
            return None;
        }
        let n = v[0].checked_mul(v[1]).and_then(|x| x.checked_mul(v[2]));
        if n.is_none_or(|n| n > MAX_ELEMENTS) {
            self.push(
                diag(
                    Code::TooLarge,
                    format!(
                        "too large: an input of {} has more values than the runtime supports",
                        t.text
                    ),
                    t.span,
                    "input too large",
                )
                .help(format!(
                    "an input may hold at most {MAX_ELEMENTS} (2^31) values per sample"
                )),
            );
            return None;
        }
        ok.then_some(Resolved::Input(Val {
            v: [v[0], v[1], v[2]],
            span: t.span,
        }))
    }

    /// A window (`3` or `3x5`) or a stride/dilation value.
    fn pair(&mut self, t: &Token, what: &str, example: &str) -> Option<Val<[u64; 2]>> {
        let v = match t.kind {
            TokenKind::Int => {
                let v = self.uint(&t.text, t.span, what)?;
                [v, v]
            }
            TokenKind::Dims => {
                let v = self.dims(t, what)?;
                if v.len() != 2 {
                    self.push(
                        diag(
                            Code::Syntax,
                            format!("bad dimension: a {what} has two axes, found `{}`", t.text),
                            t.span,
                            format!("expected {what} as N or NxM"),
                        )
                        .help(format!("write e.g. `{example}`")),
                    );
                    return None;
                }
                [v[0], v[1]]
            }
            TokenKind::Bad => {
                self.bad_token(t);
                return None;
            }
            _ => {
                self.push(
                    diag(
                        Code::Syntax,
                        format!("expected the {what}, found `{}`", t.text),
                        t.span,
                        format!("expected the {what}"),
                    )
                    .help(format!("write e.g. `{example}`")),
                );
                return None;
            }
        };
        if v.contains(&0) {
            self.zero(
                t.span,
                format!("zero or empty: a {what} of `{}`", t.text),
                &format!("a {what} is at least 1"),
            );
            return None;
        }
        Some(Val { v, span: t.span })
    }

    /// A count (filters, units): one positive integer.
    fn count(&mut self, s: &Stmt, idx: usize, what: &str, example: &str) -> Option<Val<u64>> {
        let Some(t) = s.args.get(idx) else {
            self.push(
                diag(
                    Code::Syntax,
                    format!("`{}` needs the {what}", s.head.text),
                    s.head.span,
                    format!("the {what} is missing"),
                )
                .help(format!("write e.g. `{example}`")),
            );
            return None;
        };
        match t.kind {
            TokenKind::Int => {
                let v = self.uint(&t.text, t.span, what)?;
                if v == 0 {
                    self.zero(
                        t.span,
                        format!(
                            "zero or empty: `{}` with 0 {}",
                            s.head.text,
                            what.trim_start_matches("number of ")
                        ),
                        &format!("use at least one, e.g. `{example}`"),
                    );
                    return None;
                }
                Some(Val { v, span: t.span })
            }
            TokenKind::Bad => {
                self.bad_token(t);
                None
            }
            _ => {
                self.push(
                    diag(
                        Code::Syntax,
                        format!("expected the {what} (one number), found `{}`", t.text),
                        t.span,
                        format!("expected the {what}"),
                    )
                    .help(format!("write e.g. `{example}`")),
                );
                None
            }
        }
    }

    fn resolve_dense(&mut self, s: &Stmt) -> Option<Resolved> {
        let units = self.count(s, 0, "number of units", "dense 128 relu");
        let mut act: Option<Val<Activation>> = None;
        let mut ok = units.is_some();
        for t in s.args.iter().skip(1) {
            if t.kind == TokenKind::Word {
                if let Some(a) = activation_of(&t.text) {
                    ok &= self.set_act(&mut act, a, t);
                    continue;
                }
            }
            ok = false;
            self.bad_option(s, t, &ACTIVATIONS, "dense N [ACTIVATION]");
        }
        if !ok {
            return None;
        }
        Some(Resolved::Dense { units: units?, act })
    }

    fn set_act(&mut self, slot: &mut Option<Val<Activation>>, a: Activation, t: &Token) -> bool {
        if let Some(prev) = slot {
            self.push(
                diag(
                    Code::OptionTwice,
                    format!(
                        "two activations: `{}` and `{}`",
                        prev.v.keyword(),
                        a.keyword()
                    ),
                    t.span,
                    "a second activation",
                )
                .related(prev.span, "the first activation")
                .help("a layer has at most one activation: keep one"),
            );
            return false;
        }
        *slot = Some(Val { v: a, span: t.span });
        true
    }

    /// Reports an argument that is not a valid option of the statement.
    fn bad_option(&mut self, s: &Stmt, t: &Token, options: &[&str], form: &str) {
        let kw = s.head.text.as_str();
        match t.kind {
            TokenKind::Bad => self.bad_token(t),
            TokenKind::Word => {
                let w = t.text.as_str();
                if PLANNED.contains(&w) {
                    self.push(
                        diag(
                            Code::Syntax,
                            format!("`{w}` is not supported yet"),
                            t.span,
                            "planned, not implemented",
                        )
                        .help(format!("use one of {}", ACTIVATIONS.join(", "))),
                    );
                } else if activation_of(w).is_some() {
                    self.push(
                        diag(
                            Code::Syntax,
                            format!("`{kw}` takes no activation"),
                            t.span,
                            "not an option of this layer",
                        )
                        .help(format!(
                            "write the activation as its own statement: `{}; {w}`",
                            s.text().replace(&format!(" {w}"), "")
                        )),
                    );
                } else {
                    let sug = did_you_mean(w, options);
                    let message = match sug {
                        Some(sug) if ACTIVATIONS.contains(&sug) => {
                            format!("unknown activation `{w}`")
                        }
                        _ => format!("unknown option `{w}` of `{kw}`"),
                    };
                    let help = match sug {
                        Some(sug) => format!("did you mean `{sug}`?"),
                        None => format!("`{kw}` is written `{form}`"),
                    };
                    let label = if message.starts_with("unknown activation") {
                        "unknown activation"
                    } else {
                        "unknown option"
                    };
                    self.push(diag(Code::Syntax, message, t.span, label).help(help));
                }
            }
            _ => {
                self.push(
                    diag(
                        Code::Syntax,
                        format!("unexpected `{}` in `{kw}`", t.text),
                        t.span,
                        "not expected here",
                    )
                    .help(format!("`{kw}` is written `{form}`")),
                );
            }
        }
    }

    /// `conv F K [stride S] [same|valid] [dilation D] [ACT]` (pool = None), or
    /// `maxpool|avgpool|minpool P [stride S] [same|valid]`.
    fn resolve_window_layer(&mut self, s: &Stmt, pool: Option<PoolKind>) -> Option<Resolved> {
        let kw = s.head.text.as_str();
        let (form, example) = match pool {
            None => (
                "conv F K [stride S] [same|valid] [dilation D] [ACTIVATION]",
                "conv 32 3x3",
            ),
            Some(_) => ("POOL P [stride S] [same|valid]", "maxpool 2"),
        };
        let form = form.replace("POOL", kw);
        let mut ok = true;
        let mut pos = 0;
        let filters = if pool.is_none() {
            pos = 1;
            // `conv 3x3` with the count forgotten: the window check below would
            // only repeat the same problem, so stop here.
            Some(self.count(s, 0, "number of filters", "conv 32 3x3")?)
        } else {
            None
        };
        let what = if pool.is_some() {
            "pool window"
        } else {
            "kernel size"
        };
        let window = match s.args.get(pos) {
            Some(t) => self.pair(t, what, example),
            None => {
                self.push(
                    diag(
                        Code::Syntax,
                        format!("`{kw}` needs a {what}"),
                        s.head.span,
                        format!("the {what} is missing"),
                    )
                    .help(format!("write e.g. `{} 3x3`", s.text())),
                );
                return None;
            }
        };
        ok &= window.is_some();
        let mut stride: Option<Val<[u64; 2]>> = None;
        let mut dilation: Option<Val<[u64; 2]>> = None;
        let mut padding: Option<Val<Padding>> = None;
        let mut act: Option<Val<Activation>> = None;
        let mut options: Vec<&str> = vec!["stride", "same", "valid"];
        if pool.is_none() {
            options.push("dilation");
            options.extend(ACTIVATIONS);
        }
        let mut i = pos + 1;
        while i < s.args.len() {
            let t = &s.args[i];
            i += 1;
            let w = if t.kind == TokenKind::Word {
                t.text.as_str()
            } else {
                ""
            };
            match w {
                "stride" | "dilation" if w == "stride" || pool.is_none() => {
                    let Some(v) = s.args.get(i).filter(|v| v.kind != TokenKind::Word) else {
                        self.push(
                            diag(
                                Code::Syntax,
                                format!("`{w}` needs a value"),
                                t.span,
                                "no value given",
                            )
                            .help(format!("write e.g. `{w} 2` or `{w} 2x1`")),
                        );
                        ok = false;
                        continue;
                    };
                    i += 1;
                    let val = self.pair(v, w, &format!("{w} 2"));
                    let slot = if w == "stride" {
                        &mut stride
                    } else {
                        &mut dilation
                    };
                    if let Some(prev) = slot {
                        let first = prev.span;
                        self.push(
                            diag(
                                Code::OptionTwice,
                                format!("`{w}` given twice"),
                                t.span,
                                "given again here",
                            )
                            .related(first, "first given here")
                            .help(format!("give `{w}` once")),
                        );
                        ok = false;
                    } else if let Some(val) = val {
                        *slot = Some(val);
                    } else {
                        ok = false;
                    }
                }
                "same" | "valid" => {
                    let p = if w == "same" {
                        Padding::Same
                    } else {
                        Padding::Valid
                    };
                    if let Some(prev) = padding {
                        let message = if prev.v == p {
                            format!("`{w}` given twice")
                        } else {
                            "`same` and `valid` together".to_string()
                        };
                        self.push(
                            diag(Code::OptionTwice, message, t.span, "padding given again")
                                .related(prev.span, "padding first given here")
                                .help("choose one padding: `same` or `valid`"),
                        );
                        ok = false;
                    } else {
                        padding = Some(Val { v: p, span: t.span });
                    }
                }
                _ => match activation_of(w) {
                    Some(a) if pool.is_none() => ok &= self.set_act(&mut act, a, t),
                    _ => {
                        ok = false;
                        if pool.is_some() && w == "dilation" {
                            if s.args
                                .get(i)
                                .is_some_and(|v| matches!(v.kind, TokenKind::Int | TokenKind::Dims))
                            {
                                i += 1;
                            }
                            self.push(
                                diag(
                                    Code::Syntax,
                                    format!("`{kw}` takes no dilation"),
                                    t.span,
                                    "not an option of pools",
                                )
                                .help(format!("`{kw}` is written `{form}`")),
                            );
                        } else {
                            self.bad_option(s, t, &options, &form);
                        }
                    }
                },
            }
        }
        if !ok {
            return None;
        }
        let window = window?;
        // Warning: a stride larger than the (effective) window skips input cells.
        if let Some(st) = stride {
            let d = dilation.map_or([1, 1], |d| d.v);
            let eff = [(window.v[0] - 1) * d[0] + 1, (window.v[1] - 1) * d[1] + 1];
            if st.v[0] > eff[0] || st.v[1] > eff[1] {
                self.push(
                    diag(
                        Code::StrideSkipsInput,
                        format!(
                            "stride {} is larger than the {} window: some input cells are never read",
                            if st.v[0] == st.v[1] {
                                st.v[0].to_string()
                            } else {
                                fmt2(st.v)
                            },
                            fmt2(eff)
                        ),
                        st.span,
                        "this stride skips input cells",
                    )
                    .related(window.span, "the window")
                    .help(format!(
                        "use a stride of at most {} or a larger window",
                        fmt2(eff)
                    )),
                );
            }
        }
        Some(match pool {
            None => Resolved::Conv {
                filters: filters?,
                kernel: window,
                stride,
                dilation,
                padding,
                act,
            },
            Some(kind) => Resolved::Pool {
                kind,
                window,
                stride,
                padding,
            },
        })
    }
}
