//! The options after a statement's positional arguments, read by one loop for
//! every statement: which options the statement takes, their values, an option
//! given twice or clashing with another, and the messages for anything else.
//! One loop, so that `stride 2` means the same and gets the same messages in
//! `conv`, `dwconv` and `maxpool`, and options come in any order everywhere.

use super::args::Val;
use super::vocab::{activation_of, Accepts, ACTIVATIONS, FLAGS, VALUE_OPTIONS};
use super::Checker;
use crate::ast::{Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Activation, Interpolation, Padding, Real, Span};

/// The options of one statement as written (`None`: not given, the layer's
/// default applies).
#[derive(Debug, Clone, Default)]
pub(super) struct Opts {
    pub(super) stride: Option<Val<[u64; 2]>>,
    pub(super) dilation: Option<Val<[u64; 2]>>,
    pub(super) padding: Option<Val<Padding>>,
    pub(super) groups: Option<Val<u64>>,
    pub(super) multiplier: Option<Val<u64>>,
    /// `pad P`: cells on both sides of each axis, `[PH, PW]`; the span covers
    /// both tokens.
    pub(super) pad: Option<Val<[u64; 2]>>,
    /// The `nobias` token.
    pub(super) nobias: Option<Span>,
    pub(super) act: Option<Val<Activation>>,
    pub(super) momentum: Option<Val<f32>>,
    pub(super) epsilon: Option<Val<f32>>,
    pub(super) noscale: Option<Span>,
    pub(super) nocenter: Option<Span>,
    pub(super) interpolation: Option<Val<Interpolation>>,
    /// `randomflip`'s axes.
    pub(super) horizontal: Option<Span>,
    pub(super) vertical: Option<Span>,
}

impl Checker {
    /// Reads the options of `s` from argument `from` on. `None` when any of
    /// them is wrong (each problem reported).
    pub(super) fn options(&mut self, s: &Stmt, from: usize, acc: &Accepts) -> Option<Opts> {
        let mut o = Opts::default();
        let mut ok = true;
        let mut i = from;
        while i < s.args.len() {
            let at = i;
            let t = &s.args[at];
            i += 1;
            let w = if t.kind == TokenKind::Word {
                t.text.as_str()
            } else {
                ""
            };
            if VALUE_OPTIONS.contains(&w) {
                // The value is the next token unless that is a word (`stride same`
                // has forgotten the value; `same` is read on its own next).
                let v = s.args.get(i).filter(|v| v.kind != TokenKind::Word);
                i += usize::from(v.is_some());
                if !acc.options.contains(&w) {
                    self.not_an_option(s, t, acc);
                    ok = false;
                    continue;
                }
                let Some(v) = v else {
                    let example = match w {
                        "momentum" => "momentum 0.9".to_string(),
                        "epsilon" => "epsilon 1e-5".to_string(),
                        "groups" | "multiplier" => format!("{w} 2"),
                        "pad" => "pad 1` or `pad 1x2".to_string(),
                        _ => format!("{w} 2` or `{w} 2x1"),
                    };
                    self.syntax(
                        format!("`{w}` needs a value"),
                        t.span,
                        "no value given",
                        format!("write e.g. `{example}`"),
                    );
                    ok = false;
                    continue;
                };
                ok &= self.value_option(&mut o, t, v);
            } else if FLAGS.contains(&w) {
                if !acc.options.contains(&w) {
                    self.not_an_option(s, t, acc);
                    ok = false;
                    continue;
                }
                ok &= self.flag(&mut o, t);
            } else if let Some(mut a) = activation_of(w) {
                // `leaky_relu 0.1`: the slope is the number right after the word.
                let slope = s
                    .args
                    .get(i)
                    .filter(|v| matches!(v.kind, TokenKind::Decimal | TokenKind::Int))
                    .filter(|_| matches!(a, Activation::LeakyRelu(_)));
                i += usize::from(slope.is_some());
                if !acc.activation {
                    self.no_activation(s, at, i);
                    ok = false;
                    continue;
                }
                if let Some(v) = slope {
                    match self.slope(v) {
                        Some(r) => a = Activation::LeakyRelu(r),
                        None => {
                            ok = false;
                            continue;
                        }
                    }
                }
                ok &= self.set_act(&mut o.act, a, t);
            } else {
                let mut candidates: Vec<&str> = acc.options.to_vec();
                if acc.activation {
                    candidates.extend(ACTIVATIONS);
                }
                self.bad_option(s, t, &candidates, acc.form);
                ok = false;
            }
        }
        ok.then_some(o)
    }

    /// `leaky_relu`'s slope: a number of at least 0 (Keras rejects a negative
    /// one; the grammar cannot even write it).
    pub(super) fn slope(&mut self, t: &Token) -> Option<Real> {
        let v = self.decimal(t, "slope", "leaky_relu 0.1")?;
        if !v.v.is_finite() || v.v < 0.0 {
            let help = "the slope for negative inputs is a finite number of at least 0, e.g. `leaky_relu 0.1` (0.3 when left out)";
            self.out_of_range(
                v,
                &t.text,
                "the slope",
                "a finite number of at least 0",
                help,
            );
            return None;
        }
        Some(Real::new(v.v))
    }

    /// An option word this statement does not take (`maxpool 2 dilation 2`).
    fn not_an_option(&mut self, s: &Stmt, t: &Token, acc: &Accepts) {
        let kw = s.head.text.as_str();
        let label = if kw.ends_with("pool") {
            "not an option of pools".to_string()
        } else {
            format!("not an option of `{kw}`")
        };
        self.syntax(
            format!("`{kw}` takes no `{}`", t.text),
            t.span,
            label,
            format!("`{kw}` is written `{}`", acc.form),
        );
    }

    /// An activation on a statement that takes none: argument `start` is the
    /// activation, `i` the index after it (and after its slope).
    fn no_activation(&mut self, s: &Stmt, start: usize, i: usize) {
        let kw = s.head.text.as_str();
        let t = &s.args[start];
        let act: Vec<&str> = s.args[start..i.min(s.args.len())]
            .iter()
            .map(|a| a.text.as_str())
            .collect();
        // The statement without the activation (and its slope), then the
        // activation as its own statement; shown only as valid text (the
        // rest may hold another mistake), and not built for a statement of
        // thousands of tokens (one per activation in it would be quadratic).
        let mut text = s.head.text.clone();
        if s.args.len() <= 16 {
            for (j, a) in s.args.iter().enumerate() {
                if j < start || j >= i {
                    text.push(' ');
                    text.push_str(&a.text);
                }
            }
            text = format!("{text}; {}", act.join(" "));
        }
        let help = if s.args.len() <= 16 && self.valid_text(&text) {
            format!("write the activation as its own statement: `{text}`")
        } else {
            format!(
                "write the activation as its own statement after this one: `{}`",
                act.join(" ")
            )
        };
        self.syntax(
            format!("`{kw}` takes no activation"),
            t.span,
            "not an option of this layer",
            help,
        );
    }

    /// Reports an option given a second time (`t`), first given at `first`.
    fn twice(&mut self, message: String, t: &Token, first: Span, help: String) {
        self.push(
            Diagnostic::new(Code::OptionTwice, message, t.span, "given again here")
                .with_related(first, "first given here")
                .with_help(help),
        );
    }

    /// Reads the value `v` of the option word `t` into its slot.
    fn value_option(&mut self, o: &mut Opts, t: &Token, v: &Token) -> bool {
        let w = t.text.as_str();
        let first = match w {
            "stride" => o.stride.map(|x| x.span),
            "dilation" => o.dilation.map(|x| x.span),
            "groups" => o.groups.map(|x| x.span),
            "multiplier" => o.multiplier.map(|x| x.span),
            "pad" => o.pad.map(|x| x.span),
            "momentum" => o.momentum.map(|x| x.span),
            _ => o.epsilon.map(|x| x.span),
        };
        if let Some(first) = first {
            self.twice(
                format!("`{w}` given twice"),
                t,
                first,
                format!("give `{w}` once"),
            );
            return false;
        }
        match w {
            "stride" | "dilation" => {
                let Some(val) = self.pair(v, w, &format!("{w} 2")) else {
                    return false;
                };
                if w == "stride" {
                    o.stride = Some(val);
                } else {
                    o.dilation = Some(val);
                }
            }
            "groups" | "multiplier" => {
                let what = if w == "groups" {
                    "group count"
                } else {
                    "depth multiplier"
                };
                let Some(val) = self.positive(v, what, &format!("{w} 2")) else {
                    return false;
                };
                if w == "groups" {
                    o.groups = Some(val);
                } else {
                    o.multiplier = Some(val);
                }
            }
            "pad" => {
                let Some(val) = self.cells(v, "padding", &[2], "pad 1` or `pad 1x2") else {
                    return false;
                };
                let p = match val.v[..] {
                    [p] => [p, p],
                    [ph, pw, ..] => [ph, pw],
                    [] => return false,
                };
                // The whole `pad P`, for the messages about it.
                let span = Span::new(t.span.start, val.span.end);
                o.pad = Some(Val { v: p, span });
            }
            "momentum" => {
                let Some(val) = self.decimal(v, "momentum", "momentum 0.9") else {
                    return false;
                };
                if !(0.0..=1.0).contains(&val.v) {
                    let help = "the momentum of the moving statistics is in [0, 1], e.g. `momentum 0.9` (0.99 when left out)";
                    self.out_of_range(val, &v.text, "the momentum", "in [0, 1]", help);
                    return false;
                }
                o.momentum = Some(val);
            }
            _ => {
                let Some(val) = self.decimal(v, "epsilon", "epsilon 1e-5") else {
                    return false;
                };
                if !(val.v.is_finite() && val.v > 0.0) {
                    let help = "epsilon keeps the division away from zero: use a small positive number, e.g. `epsilon 1e-5` (0.001 when left out)";
                    self.out_of_range(val, &v.text, "epsilon", "a positive finite number", help);
                    return false;
                }
                o.epsilon = Some(val);
            }
        }
        true
    }

    /// Reads a flag (`same`, `nobias`, `bilinear`, ...) into its slot.
    fn flag(&mut self, o: &mut Opts, t: &Token) -> bool {
        let w = t.text.as_str();
        let span = t.span;
        match w {
            "same" | "valid" => {
                let p = if w == "same" {
                    Padding::Same
                } else {
                    Padding::Valid
                };
                if let Some(prev) = o.padding {
                    let message = if prev.v == p {
                        format!("`{w}` given twice")
                    } else {
                        "`same` and `valid` together".to_string()
                    };
                    self.push(
                        Diagnostic::new(Code::OptionTwice, message, span, "padding given again")
                            .with_related(prev.span, "padding first given here")
                            .with_help("choose one padding: `same` or `valid`"),
                    );
                    return false;
                }
                o.padding = Some(Val { v: p, span });
            }
            "nearest" | "bilinear" => {
                let v = if w == "nearest" {
                    Interpolation::Nearest
                } else {
                    Interpolation::Bilinear
                };
                if let Some(prev) = o.interpolation {
                    let message = if prev.v == v {
                        format!("`{w}` given twice")
                    } else {
                        "`nearest` and `bilinear` together".to_string()
                    };
                    self.push(
                        Diagnostic::new(
                            Code::OptionTwice,
                            message,
                            span,
                            "interpolation given again",
                        )
                        .with_related(prev.span, "interpolation first given here")
                        .with_help("choose one interpolation: `nearest` or `bilinear`"),
                    );
                    return false;
                }
                o.interpolation = Some(Val { v, span });
            }
            _ => {
                let slot = match w {
                    "nobias" => &mut o.nobias,
                    "noscale" => &mut o.noscale,
                    "horizontal" => &mut o.horizontal,
                    "vertical" => &mut o.vertical,
                    _ => &mut o.nocenter,
                };
                if let Some(first) = *slot {
                    self.twice(
                        format!("`{w}` given twice"),
                        t,
                        first,
                        format!("give `{w}` once"),
                    );
                    return false;
                }
                *slot = Some(span);
            }
        }
        true
    }
}
