//! Each statement resolved on its own, before any shape is known: which layer
//! it is, its positional arguments, options and defaults. A statement with a
//! problem is reported here and dropped (`None`), so that the shape flow only
//! sees well-formed layers.

use super::args::Val;
use super::show::shown;
use super::vocab::{activation_of, alias_of, did_you_mean, is_statement_word};
use super::vocab::{ACTIVATIONS, LAYERS, PLANNED};
use super::window::Window;
use super::{Checker, MAX_ELEMENTS};
use crate::ast::{Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Activation, Padding, PoolKind, Span};

/// A statement resolved on its own, before shapes.
#[derive(Debug, Clone)]
pub(super) enum Resolved {
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
    /// The activation of the statement: its option, or the statement itself.
    pub(super) fn activation(&self) -> Option<Val<Activation>> {
        match self {
            Resolved::Conv { act, .. } | Resolved::Dense { act, .. } => *act,
            Resolved::Act(a) => Some(*a),
            _ => None,
        }
    }

    /// The window of a conv or pool, with the defaults the language gives:
    /// stride 1 for conv and the window itself for pools, dilation 1, `valid`.
    pub(super) fn window(&self) -> Option<(Val<[u64; 2]>, Window)> {
        let (size, stride, dilation, padding, default_stride) = match self {
            Resolved::Conv {
                kernel,
                stride,
                dilation,
                padding,
                ..
            } => (*kernel, *stride, *dilation, *padding, [1, 1]),
            Resolved::Pool {
                window,
                stride,
                padding,
                ..
            } => (*window, *stride, None, *padding, window.v),
            _ => return None,
        };
        let window = Window {
            size: size.v,
            stride: stride.map_or(default_stride, |v| v.v),
            dilation: dilation.map_or([1, 1], |v| v.v),
            padding: padding.map_or(Padding::Valid, |v| v.v),
        };
        Some((size, window))
    }
}

impl Checker {
    /// Splits statements where a layer name appears among the arguments (a
    /// forgotten `;`), reporting each split.
    pub(super) fn split_statements(&mut self, stmts: &[Stmt]) -> Vec<Stmt> {
        let mut out = Vec::new();
        for s in stmts {
            let mut cur = Stmt {
                head: s.head.clone(),
                args: Vec::new(),
                span: s.span,
            };
            for a in &s.args {
                if a.kind == TokenKind::Word && is_statement_word(&a.text) {
                    self.syntax(
                        format!("expected `;` before `{}`", a.text),
                        a.span,
                        "a new statement starts here",
                        format!(
                            "statements are separated by `;`: write `{}; {} ...`",
                            cur.text(),
                            a.text
                        ),
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

    /// Resolves one statement on its own; reports its syntax-level problems.
    pub(super) fn resolve(&mut self, s: &Stmt) -> Option<Resolved> {
        if s.head.kind != TokenKind::Word {
            let help = match (s.head.kind, s.head.text.split('x').count()) {
                (TokenKind::Dims, 3) => format!("did you mean `input {}`?", s.head.text),
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

    /// Reports a statement head that is not a layer, with the likeliest meaning.
    fn unknown_layer(&mut self, t: &Token) {
        let word = t.text.as_str();
        if PLANNED.contains(&word) {
            let layers = LAYERS[1..].join(", ");
            self.planned(
                t,
                format!("remove `{word}` for now; the layers are: {layers}"),
            );
            return;
        }
        if ["same", "valid", "stride", "dilation"].contains(&word) {
            self.syntax(
                format!("`{word}` is an option, not a layer"),
                t.span,
                "an option on its own",
                format!(
                    "put it after the layer it belongs to, e.g. `conv 32 3x3 {word}{}`",
                    if word == "stride" || word == "dilation" {
                        " 2"
                    } else {
                        ""
                    }
                ),
            );
            return;
        }
        let mut candidates: Vec<&str> = LAYERS.to_vec();
        candidates.extend(ACTIVATIONS);
        let lower = word.to_ascii_lowercase();
        let alias = alias_of(&lower);
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
            let help = if v.len() == 2 {
                format!(
                    "add the channel count: `input {}x1` for one channel, `x3` for RGB",
                    t.text
                )
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

    /// `dense N [ACTIVATION]`.
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
                self.syntax(
                    format!("`{kw}` needs a {what}"),
                    s.head.span,
                    format!("the {what} is missing"),
                    format!("write e.g. `{} 3x3`", s.text()),
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
                        self.syntax(
                            format!("`{w}` needs a value"),
                            t.span,
                            "no value given",
                            format!("write e.g. `{w} 2` or `{w} 2x1`"),
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
                            Diagnostic::new(
                                Code::OptionTwice,
                                format!("`{w}` given twice"),
                                t.span,
                                "given again here",
                            )
                            .with_related(first, "first given here")
                            .with_help(format!("give `{w}` once")),
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
                            Diagnostic::new(
                                Code::OptionTwice,
                                message,
                                t.span,
                                "padding given again",
                            )
                            .with_related(prev.span, "padding first given here")
                            .with_help("choose one padding: `same` or `valid`"),
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
                            self.syntax(
                                format!("`{kw}` takes no dilation"),
                                t.span,
                                "not an option of pools",
                                format!("`{kw}` is written `{form}`"),
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
