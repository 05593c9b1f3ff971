//! Each statement resolved on its own, before any shape is known: which layer
//! it is, its positional arguments, options and defaults. A statement with a
//! problem is reported here and dropped (`None`), so that the shape flow only
//! sees well-formed layers. This file dispatches on the statement's word and
//! reads `input`; `layers` reads every other statement.

use super::args::Val;
use super::keras;
use super::options::Opts;
use super::show::shown;
use super::vocab::{activation_of, alias_of, did_you_mean, is_option_word};
use super::vocab::{is_statement_word, statement_words};
use super::vocab::{ACTIVATIONS, GRAPH, LAYERS};
use super::window::Window;
use super::{Checker, MAX_ELEMENTS};
use crate::ast::{Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Activation, Padding, PoolKind, Span};

/// The layers that slide a window over the image (and share its arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WindowKind {
    Conv,
    DwConv,
    SepConv,
    Pool(PoolKind),
}

/// A statement resolved on its own, before shapes.
#[derive(Debug, Clone)]
pub(super) enum Resolved {
    Input(Val<[u64; 3]>),
    /// `conv`, `dwconv`, `sepconv` and the pools; `filters` for conv and sepconv.
    Window {
        kind: WindowKind,
        filters: Option<Val<u64>>,
        size: Val<[u64; 2]>,
        opts: Opts,
    },
    Deconv {
        filters: Val<u64>,
        kernel: Val<[u64; 2]>,
        opts: Opts,
    },
    Flatten,
    Dense {
        units: Val<u64>,
        opts: Opts,
    },
    Act(Val<Activation>),
    BatchNorm(Opts),
    /// The rate, checked to be in [0, 1).
    Dropout(Val<f32>),
    GlobalPool(PoolKind),
    /// `[top, bottom, left, right]`
    ZeroPad(Val<[u64; 4]>),
    Upsample {
        size: Val<[u64; 2]>,
        opts: Opts,
    },
    /// An augmentation layer, with the factors as written (none for a flip).
    Augment {
        kind: crate::ir::Augment,
        factors: Vec<Val<f32>>,
    },
}

impl Resolved {
    /// The activation of the statement: its option, or the statement itself.
    pub(super) fn activation(&self) -> Option<Val<Activation>> {
        match self {
            Resolved::Window { opts, .. }
            | Resolved::Deconv { opts, .. }
            | Resolved::Dense { opts, .. } => opts.act,
            Resolved::Act(a) => Some(*a),
            _ => None,
        }
    }

    /// The window of a conv-like layer or pool, with the defaults the language
    /// gives: stride 1 for the convolutions and the window itself for pools,
    /// dilation 1, `valid`, no explicit padding.
    pub(super) fn window(&self) -> Option<(Val<[u64; 2]>, Window)> {
        let Resolved::Window {
            kind, size, opts, ..
        } = self
        else {
            return None;
        };
        let default_stride = match kind {
            WindowKind::Pool(_) => size.v,
            _ => [1, 1],
        };
        let window = Window {
            size: size.v,
            stride: opts.stride.map_or(default_stride, |v| v.v),
            dilation: opts.dilation.map_or([1, 1], |v| v.v),
            padding: opts.padding.map_or(Padding::Valid, |v| v.v),
            explicit: opts.pad.map_or([0, 0], |v| v.v),
        };
        Some((*size, window))
    }
}

impl Checker {
    /// Splits statements where a layer name appears among the arguments (a
    /// forgotten `;`), reporting each split.
    pub(super) fn split_statements(&mut self, stmts: &[Stmt]) -> Vec<Stmt> {
        let mut out = Vec::new();
        for s in stmts {
            // `x = conv ...`: reported, and the statement after `=` goes on.
            let parts = self.unassign(s);
            for s in parts.as_deref().unwrap_or(std::slice::from_ref(s)) {
                self.split_statement(s, &mut out);
            }
        }
        out
    }

    /// [`Checker::split_statements`] of one statement, into `out`.
    fn split_statement(&mut self, s: &Stmt, out: &mut Vec<Stmt>) {
        let mut cur = Stmt {
            head: s.head.clone(),
            args: Vec::new(),
            groups: Vec::new(),
            span: s.span,
        };
        // A graph statement's arguments are its own (its checker reports them).
        let graph = GRAPH.contains(&s.head.text.as_str()) || !s.groups.is_empty();
        for a in &s.args {
            // A Keras class among the arguments is a next statement too
            // (Python needs no `;` at the end of a line).
            let next = is_statement_word(&a.text) || keras::class_of(&a.text).is_some();
            if !graph && a.kind == TokenKind::Word && next {
                // The statement so far is shown only when it is valid text.
                let help = if self.valid_text(&cur.text()) {
                    format!(
                        "statements are separated by `;`: write `{}; {} ...`",
                        cur.text(),
                        a.text
                    )
                } else {
                    format!(
                        "statements are separated by `;`: put one before `{}`",
                        a.text
                    )
                };
                self.syntax(
                    format!("expected `;` before `{}`", a.text),
                    a.span,
                    "a new statement starts here",
                    help,
                );
                let end = cur.args.last().map_or(cur.head.span.end, |t| t.span.end);
                cur.span = Span::new(cur.span.start, end);
                out.push(cur);
                cur = Stmt {
                    head: a.clone(),
                    args: Vec::new(),
                    groups: Vec::new(),
                    span: Span::new(a.span.start, s.span.end),
                };
            } else {
                cur.args.push(a.clone());
            }
        }
        cur.groups = s.groups.clone();
        out.push(cur);
    }

    /// Resolves one statement on its own; reports its syntax-level problems.
    pub(super) fn resolve(&mut self, s: &Stmt) -> Option<Resolved> {
        if s.head.kind != TokenKind::Word {
            let input = format!("input {}", s.head.text);
            let help = match (s.head.kind, s.head.text.split('x').count()) {
                (TokenKind::Dims, 3) if self.valid_text(&input) => {
                    format!("did you mean `{input}`?")
                }
                _ => "a statement starts with a layer such as conv, maxpool, dense".to_string(),
            };
            self.syntax(
                format!(
                    "expected a layer such as conv, maxpool, dense, found `{}`",
                    shown(&s.head.text)
                ),
                s.head.span,
                "not a layer",
                help,
            );
            return None;
        }
        let kw = s.head.text.as_str();
        if (LAYERS.contains(&kw) || activation_of(kw).is_some()) && self.keras_habits(s) {
            return None;
        }
        match kw {
            "input" => self.resolve_input(s),
            "conv" => self.resolve_window(s, WindowKind::Conv),
            "dwconv" => self.resolve_window(s, WindowKind::DwConv),
            "sepconv" => self.resolve_window(s, WindowKind::SepConv),
            "maxpool" => self.resolve_window(s, WindowKind::Pool(PoolKind::Max)),
            "avgpool" => self.resolve_window(s, WindowKind::Pool(PoolKind::Avg)),
            "minpool" => self.resolve_window(s, WindowKind::Pool(PoolKind::Min)),
            "deconv" => self.resolve_deconv(s),
            "flatten" => {
                self.no_args(s)?;
                Some(Resolved::Flatten)
            }
            "dense" => self.resolve_dense(s),
            "batchnorm" => self.resolve_batchnorm(s),
            "dropout" => self.resolve_dropout(s),
            "globalavgpool" | "globalmaxpool" => {
                self.no_args(s)?;
                let kind = if kw == "globalmaxpool" {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                };
                Some(Resolved::GlobalPool(kind))
            }
            "zeropad" => self.resolve_zeropad(s),
            "upsample" => self.resolve_upsample(s),
            "randomflip" | "randomtranslate" | "randomrotate" | "randomzoom" => {
                self.resolve_augment(s)
            }
            _ => {
                if let Some(a) = self.resolve_activation(s) {
                    return a;
                }
                if !self.keras_class(s) {
                    self.unknown_layer(&s.head);
                }
                None
            }
        }
    }

    /// Reports a statement head that is not a layer, with the likeliest meaning.
    fn unknown_layer(&mut self, t: &Token) {
        let word = t.text.as_str();
        if is_option_word(word) {
            let example = match word {
                "stride" | "dilation" | "groups" => format!("conv 32 3x3 {word} 2"),
                "pad" => "conv 32 3x3 pad 1".to_string(),
                "nobias" | "same" | "valid" => format!("conv 32 3x3 {word}"),
                "multiplier" => "dwconv 3x3 multiplier 2".to_string(),
                "momentum" => "batchnorm momentum 0.9".to_string(),
                "epsilon" => "batchnorm epsilon 1e-5".to_string(),
                "nearest" | "bilinear" => format!("upsample 2 {word}"),
                _ => format!("batchnorm {word}"),
            };
            self.syntax(
                format!("`{word}` is an option, not a layer"),
                t.span,
                "an option on its own",
                format!("put it after the layer it belongs to, e.g. `{example}`"),
            );
            return;
        }
        let candidates = statement_words();
        let lower = word.to_ascii_lowercase();
        let alias = alias_of(&lower);
        let suggestion = alias.or_else(|| did_you_mean(word, &candidates));
        let help = match suggestion {
            Some(sug) if lower == sug => format!("keywords are lowercase: write `{sug}`"),
            Some(sug) => format!("did you mean `{sug}`?"),
            None => format!(
                "the layers are {}, the graph statements {}, and the activations {}",
                LAYERS.join(", "),
                GRAPH
                    .iter()
                    .filter(|w| **w != "shortcut")
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                ACTIVATIONS.join(", ")
            ),
        };
        let message = match suggestion {
            Some(sug) if lower == sug => format!("unknown layer `{word}`: keywords are lowercase"),
            _ => format!("unknown layer `{word}`"),
        };
        self.syntax(message, t.span, "unknown layer", help);
    }

    /// `input HxWxC`.
    fn resolve_input(&mut self, s: &Stmt) -> Option<Resolved> {
        let Some(t) = s.args.first() else {
            self.syntax(
                "`input` needs a shape HxWxC",
                s.head.span,
                "no shape given",
                "write the image size and channels, e.g. `input 28x28x1`",
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
            _ => {
                let message = format!("`input` needs a shape HxWxC, found `{}`", t.text);
                let help = "write the image size and channels, e.g. `input 28x28x1`";
                return self.wrong_token(t, message, "expected HxWxC", help);
            }
        };
        if v.len() != 3 {
            let one = format!("input {}x1", t.text);
            let help = if v.len() == 2 && self.valid_text(&one) {
                format!("add the channel count: `{one}` for one channel, `x3` for RGB")
            } else {
                "write three numbers HxWxC, e.g. `input 28x28x1`".to_string()
            };
            self.syntax(
                format!(
                    "bad dimension: `input` needs three numbers HxWxC, found `{}`",
                    t.text
                ),
                t.span,
                "expected HxWxC",
                help,
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
                Diagnostic::new(
                    Code::TooLarge,
                    format!(
                        "too large: an input of {} has more values than the runtime supports",
                        t.text
                    ),
                    t.span,
                    "input too large",
                )
                .with_help(format!(
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
}
