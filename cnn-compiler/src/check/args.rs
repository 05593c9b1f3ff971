//! The values of a statement's arguments: numbers, `NxM` pairs, counts,
//! decimals, an activation option, and the messages for a token that is none
//! of these.

use super::show::{a, abbreviate, shown};
use super::vocab::{did_you_mean, ACTIVATIONS};
use super::{Checker, MAX_DIM};
use crate::ast::{Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Activation, Span};

/// A value and the span of the token it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Val<T> {
    /// The value.
    pub(super) v: T,
    /// Its token, for the caret of a message about it.
    pub(super) span: Span,
}

impl Checker {
    /// Reports every argument of a statement that takes none.
    pub(super) fn no_args(&mut self, s: &Stmt) -> Option<()> {
        let mut ok = true;
        for a in &s.args {
            self.unexpected(s, a, &format!("`{}` takes no arguments", s.head.text));
            ok = false;
        }
        ok.then_some(())
    }

    /// Reports a token that has no place here.
    pub(super) fn unexpected(&mut self, s: &Stmt, a: &Token, help: &str) {
        if a.kind == TokenKind::Bad {
            self.bad_token(a);
            return;
        }
        self.syntax(
            format!("unexpected `{}` in `{}`", a.text, s.head.text),
            a.span,
            "not expected here",
            help.to_string(),
        );
    }

    /// A token that is not what the statement needs: a bad token is reported
    /// as such, any other gets the syntax error described.
    pub(super) fn wrong_token<T>(
        &mut self,
        t: &Token,
        message: String,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Option<T> {
        if t.kind == TokenKind::Bad {
            self.bad_token(t);
        } else {
            self.syntax(message, t.span, label, help);
        }
        None
    }

    /// Reports a token the grammar kept as `Bad` (`-3`, `3x`, `3.5`, ...).
    pub(super) fn bad_token(&mut self, a: &Token) {
        let t = a.text.as_str();
        let starts_digit = t.starts_with(|c: char| c.is_ascii_digit());
        let negative = t.starts_with('-') && t[1..].starts_with(|c: char| c.is_ascii_digit());
        let (message, help) = if negative && t.contains(['.', 'e', 'E']) {
            (
                format!("bad number `{}`", shown(t)),
                "no decimal of the language is negative: rates, momenta, epsilons and slopes are at least 0"
                    .to_string(),
            )
        } else if negative {
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
        } else if starts_digit && t.contains(['.', 'e', 'E']) {
            (
                format!("bad number `{}`", shown(t)),
                "write a decimal such as `0.5`, `1e-3` or `1.001e-5`".to_string(),
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
        self.syntax(message, a.span, "not a valid token", help);
    }

    /// Parses a non-negative integer token; reports `too large`.
    pub(super) fn uint(&mut self, t: &str, span: Span, what: &str) -> Option<u64> {
        let v: Option<u64> = t.parse().ok();
        match v {
            Some(v) if v <= MAX_DIM => Some(v),
            _ => {
                self.push(
                    Diagnostic::new(
                        Code::TooLarge,
                        format!("too large: {what} {}", abbreviate(t)),
                        span,
                        "number too large",
                    )
                    .with_help(format!(
                        "every size, count, window, stride and dilation is at most {MAX_DIM} (2^20)"
                    )),
                );
                None
            }
        }
    }

    /// Parses a `3x3` / `28x28x1` token into its numbers.
    pub(super) fn dims(&mut self, t: &Token, what: &str) -> Option<Vec<u64>> {
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

    /// A count option's value (`groups 2`, `multiplier 3`): one positive integer.
    pub(super) fn positive(&mut self, t: &Token, what: &str, example: &str) -> Option<Val<u64>> {
        if t.kind != TokenKind::Int {
            let message = format!("expected the {what} (one number), found `{}`", t.text);
            let label = format!("expected the {what}");
            return self.wrong_token(t, message, label, format!("write e.g. `{example}`"));
        }
        let v = self.uint(&t.text, t.span, what)?;
        if v == 0 {
            self.zero(
                t.span,
                format!("zero or empty: {} of `0`", a(what)),
                &format!("{} is at least 1, e.g. `{example}`", a(what)),
            );
            return None;
        }
        Some(Val { v, span: t.span })
    }

    /// Padding cells (`pad 1`, `pad 1x2`, `zeropad 0x1x0x1`): `axes` numbers
    /// (or one, meaning all of them), zeros allowed. `forms` lists the
    /// accepted counts other than 1 (`[2]` for `pad`, `[2, 4]` for `zeropad`).
    pub(super) fn cells(
        &mut self,
        t: &Token,
        what: &str,
        forms: &[usize],
        example: &str,
    ) -> Option<Val<Vec<u64>>> {
        let v = match t.kind {
            TokenKind::Int => vec![self.uint(&t.text, t.span, what)?],
            TokenKind::Dims => self.dims(t, what)?,
            _ => {
                let message = format!("expected the {what}, found `{}`", t.text);
                let label = format!("expected the {what}");
                return self.wrong_token(t, message, label, format!("write e.g. `{example}`"));
            }
        };
        if v.len() != 1 && !forms.contains(&v.len()) {
            let mut counts: Vec<String> = vec!["1".to_string()];
            counts.extend(forms.iter().map(|n| n.to_string()));
            let last = counts.pop().unwrap_or_default();
            self.syntax(
                format!(
                    "bad dimension: {} has {} or {last} numbers, found `{}`",
                    a(what),
                    counts.join(", "),
                    t.text
                ),
                t.span,
                format!("expected the {what}"),
                format!("write e.g. `{example}`"),
            );
            return None;
        }
        Some(Val { v, span: t.span })
    }

    /// A decimal value (`0.5`, `1.001e-5`, or an integer such as `0`), as the
    /// `f32` the runtime will use. Its range is the caller's to check.
    pub(super) fn decimal(&mut self, t: &Token, what: &str, example: &str) -> Option<Val<f32>> {
        if !matches!(t.kind, TokenKind::Decimal | TokenKind::Int) {
            let message = format!("expected the {what} (a decimal number), found `{}`", t.text);
            let label = format!("expected the {what}");
            return self.wrong_token(t, message, label, format!("write e.g. `{example}`"));
        }
        // The grammar only lets digits, one `.` and an exponent through, which
        // `f32` parsing accepts; a huge exponent gives infinity, which the range
        // checks reject.
        let v = t.text.parse::<f32>().unwrap_or(f32::INFINITY);
        Some(Val { v, span: t.span })
    }

    /// Reports a decimal outside its range (E012): `range` says what is
    /// allowed ("in [0, 1)"), `help` the way out.
    pub(super) fn out_of_range(
        &mut self,
        t: Val<f32>,
        text: &str,
        what: &str,
        range: &str,
        help: &str,
    ) {
        // A value written as non-zero that is 0 or infinite as an f32 is
        // explained, since the user's text looks fine.
        let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
        let label = if !t.v.is_finite() {
            "too large for a 32-bit float".to_string()
        } else if t.v == 0.0 && mantissa.contains(|c: char| ('1'..='9').contains(&c)) {
            "0 as a 32-bit float".to_string()
        } else {
            format!("not {range}")
        };
        self.push(
            Diagnostic::new(
                Code::OutOfRange,
                format!("out of range: {what} {} must be {range}", abbreviate(text)),
                t.span,
                label,
            )
            .with_help(help.to_string()),
        );
    }

    /// Reports a zero where at least 1 is needed.
    pub(super) fn zero(&mut self, span: Span, message: String, help: &str) {
        self.push(
            Diagnostic::new(Code::ZeroOrEmpty, message, span, "zero here")
                .with_help(help.to_string()),
        );
    }

    /// A window (`3` or `3x5`) or a stride/dilation value.
    pub(super) fn pair(&mut self, t: &Token, what: &str, example: &str) -> Option<Val<[u64; 2]>> {
        let v = match t.kind {
            TokenKind::Int => {
                let v = self.uint(&t.text, t.span, what)?;
                [v, v]
            }
            TokenKind::Dims => {
                let v = self.dims(t, what)?;
                if v.len() != 2 {
                    self.syntax(
                        format!(
                            "bad dimension: {} has two axes, found `{}`",
                            a(what),
                            t.text
                        ),
                        t.span,
                        format!("expected {what} as N or NxM"),
                        format!("write e.g. `{example}`"),
                    );
                    return None;
                }
                [v[0], v[1]]
            }
            _ => {
                let message = format!("expected the {what}, found `{}`", t.text);
                let label = format!("expected the {what}");
                return self.wrong_token(t, message, label, format!("write e.g. `{example}`"));
            }
        };
        if v.contains(&0) {
            self.zero(
                t.span,
                format!("zero or empty: {} of `{}`", a(what), t.text),
                &format!("{} is at least 1", a(what)),
            );
            return None;
        }
        Some(Val { v, span: t.span })
    }

    /// A count (filters, units): one positive integer.
    pub(super) fn count(
        &mut self,
        s: &Stmt,
        idx: usize,
        what: &str,
        example: &str,
    ) -> Option<Val<u64>> {
        let Some(t) = s.args.get(idx) else {
            self.syntax(
                format!("`{}` needs the {what}", s.head.text),
                s.head.span,
                format!("the {what} is missing"),
                format!("write e.g. `{example}`"),
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
            _ => {
                let message = format!("expected the {what} (one number), found `{}`", t.text);
                let label = format!("expected the {what}");
                self.wrong_token(t, message, label, format!("write e.g. `{example}`"))
            }
        }
    }

    /// Puts an activation option in its slot, or reports a second one.
    pub(super) fn set_act(
        &mut self,
        slot: &mut Option<Val<Activation>>,
        a: Activation,
        t: &Token,
    ) -> bool {
        if let Some(prev) = slot {
            self.push(
                Diagnostic::new(
                    Code::OptionTwice,
                    format!(
                        "two activations: `{}` and `{}`",
                        prev.v.keyword(),
                        a.keyword()
                    ),
                    t.span,
                    "a second activation",
                )
                .with_related(prev.span, "the first activation")
                .with_help("a layer has at most one activation: keep one"),
            );
            return false;
        }
        *slot = Some(Val { v: a, span: t.span });
        true
    }

    /// Reports an argument that is not an option of the statement: an unknown
    /// word (with the closest of `options` as a suggestion) or any other token.
    /// (Known options and activations are told apart by the options loop.)
    pub(super) fn bad_option(&mut self, s: &Stmt, t: &Token, options: &[&str], form: &str) {
        let kw = s.head.text.as_str();
        match t.kind {
            TokenKind::Bad => self.bad_token(t),
            TokenKind::Word => {
                let w = t.text.as_str();
                let sug = did_you_mean(w, options);
                let (message, label) = match sug {
                    Some(sug) if ACTIVATIONS.contains(&sug) => {
                        (format!("unknown activation `{w}`"), "unknown activation")
                    }
                    _ => (format!("unknown option `{w}` of `{kw}`"), "unknown option"),
                };
                let help = match sug {
                    Some(sug) => format!("did you mean `{sug}`?"),
                    None => format!("`{kw}` is written `{form}`"),
                };
                self.syntax(message, t.span, label, help);
            }
            _ => {
                self.syntax(
                    format!("unexpected `{}` in `{kw}`", t.text),
                    t.span,
                    "not expected here",
                    format!("`{kw}` is written `{form}`"),
                );
            }
        }
    }
}
