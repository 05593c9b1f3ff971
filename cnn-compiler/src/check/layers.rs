//! Every layer statement but `input`, resolved on its own: its positional
//! arguments, its options (read by the one loop of `options`), and the rules
//! that need no shape (`pad` with `same`, a pool padded by more than half its
//! window, a dropout rate outside [0, 1)).

use super::args::Val;
use super::options::Opts;
use super::resolve::{Resolved, WindowKind};
use super::show::{a, fmt2};
use super::vocab::{accepts, activation_of};
use super::Checker;
use crate::ast::{Stmt, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::ir::{Activation, Augment, Padding, Real};

impl Checker {
    /// `conv`, `dwconv`, `sepconv`, `maxpool`, `avgpool`, `minpool`: an optional
    /// filter count, the window, then options.
    pub(super) fn resolve_window(&mut self, s: &Stmt, kind: WindowKind) -> Option<Resolved> {
        let kw = s.head.text.as_str();
        let example = match kind {
            WindowKind::Conv => "conv 32 3x3",
            WindowKind::DwConv => "dwconv 3x3",
            WindowKind::SepConv => "sepconv 32 3x3",
            WindowKind::Pool(_) => "maxpool 2",
        };
        let is_pool = matches!(kind, WindowKind::Pool(_));
        let filters = if matches!(kind, WindowKind::Conv | WindowKind::SepConv) {
            // `conv 3x3` with the count forgotten: the window check below would
            // only repeat the same problem, so stop here.
            Some(self.count(s, 0, "number of filters", example)?)
        } else {
            None
        };
        let pos = usize::from(filters.is_some());
        let what = if is_pool {
            "pool window"
        } else {
            "kernel size"
        };
        let size = match s.args.get(pos) {
            Some(t) => self.pair(t, what, example),
            None => {
                self.syntax(
                    format!("`{kw}` needs {}", a(what)),
                    s.head.span,
                    format!("the {what} is missing"),
                    format!("write e.g. `{} 3x3`", s.text()),
                );
                return None;
            }
        };
        let opts = self.options(s, pos + 1, &accepts(kw)?);
        let (size, opts) = (size?, opts?);
        let mut ok = self.pad_not_with_same(&opts);
        if let (WindowKind::Pool(_), Some(pad)) = (kind, opts.pad) {
            // A window made only of padding would have nothing to take the max,
            // min or mean of. At most half the window (PyTorch's rule) keeps a
            // real cell in every window, wherever the stride puts it.
            let most = size.v.map(|k| k / 2);
            if pad.v[0] > most[0] || pad.v[1] > most[1] {
                let help = if most == [0, 0] {
                    "a window of one cell cannot be padded: remove the `pad`".to_string()
                } else {
                    format!(
                        "a pool's padding is at most half its window, so that every window holds a real cell: use `pad {}` or a larger window",
                        pair_text(most)
                    )
                };
                self.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        format!(
                            "out of range: `pad {}` is more than half the {} pool window",
                            pair_text(pad.v),
                            fmt2(size.v)
                        ),
                        pad.span,
                        format!("at most {} here", pair_text(most)),
                    )
                    .with_related(size.span, "the window")
                    .with_help(help),
                );
                ok = false;
            }
        }
        ok.then_some(Resolved::Window {
            kind,
            filters,
            size,
            opts,
        })
    }

    /// E011: `pad P` asks for explicit padding before a `valid` window; with
    /// `same` the two paddings would add up, which no framework means.
    fn pad_not_with_same(&mut self, o: &Opts) -> bool {
        let (Some(pad), Some(padding)) = (o.pad, o.padding) else {
            return true;
        };
        if padding.v != Padding::Same {
            return true;
        }
        let pad_text = format!("pad {}", pair_text(pad.v));
        // The caret goes on the later of the two, as for an option given twice.
        let (here, label, there, there_label) = if pad.span.start > padding.span.start {
            (
                pad.span,
                "explicit padding",
                padding.span,
                "`same` given here",
            )
        } else {
            (padding.span, "`same` padding", pad.span, "`pad` given here")
        };
        self.push(
            Diagnostic::new(Code::PadWithSame, "`pad` together with `same`", here, label)
                .with_related(there, there_label)
                .with_help(format!(
                    "`{pad_text}` pads the input before a `valid` window: remove `same`, or remove `{pad_text}` to let `same` choose the padding"
                )),
        );
        false
    }

    /// `deconv F K [stride S] [same|valid] [nobias] [ACTIVATION]`.
    pub(super) fn resolve_deconv(&mut self, s: &Stmt) -> Option<Resolved> {
        let example = "deconv 16 3x3 stride 2";
        let filters = self.count(s, 0, "number of filters", example)?;
        let kernel = match s.args.get(1) {
            Some(t) => self.pair(t, "kernel size", example),
            None => {
                self.syntax(
                    "`deconv` needs a kernel size",
                    s.head.span,
                    "the kernel size is missing",
                    format!("write e.g. `{} 3x3`", s.text()),
                );
                return None;
            }
        };
        let acc = accepts("deconv")?;
        let opts = self.options(s, 2, &acc);
        Some(Resolved::Deconv {
            filters,
            kernel: kernel?,
            opts: opts?,
        })
    }

    /// `dense N [ACTIVATION] [nobias]`.
    pub(super) fn resolve_dense(&mut self, s: &Stmt) -> Option<Resolved> {
        let units = self.count(s, 0, "number of units", "dense 128 relu");
        let acc = accepts("dense")?;
        // The options are checked even without a unit count, to report them too.
        let opts = self.options(s, 1, &acc);
        Some(Resolved::Dense {
            units: units?,
            opts: opts?,
        })
    }

    /// `batchnorm [momentum M] [epsilon E] [noscale] [nocenter]`.
    pub(super) fn resolve_batchnorm(&mut self, s: &Stmt) -> Option<Resolved> {
        let acc = accepts("batchnorm")?;
        Some(Resolved::BatchNorm(self.options(s, 0, &acc)?))
    }

    /// `dropout R`, `0 <= R < 1`.
    pub(super) fn resolve_dropout(&mut self, s: &Stmt) -> Option<Resolved> {
        let help = "write the fraction of values dropped in training, e.g. `dropout 0.5`";
        let Some(t) = s.args.first() else {
            self.syntax(
                "`dropout` needs a rate",
                s.head.span,
                "the rate is missing",
                help,
            );
            return None;
        };
        let mut ok = true;
        for extra in &s.args[1..] {
            self.unexpected(s, extra, "`dropout` takes one rate, e.g. `dropout 0.5`");
            ok = false;
        }
        let rate = self.decimal(t, "rate", "dropout 0.5")?;
        // `!(0 <= r < 1)` also catches a NaN, which parsing never gives anyway.
        if !(rate.v >= 0.0 && rate.v < 1.0) {
            let help = "the rate is the fraction of values zeroed in training: at least 0 and below 1 (1 would zero everything), e.g. `dropout 0.5`";
            self.out_of_range(rate, &t.text, "the dropout rate", "in [0, 1)", help);
            return None;
        }
        ok.then_some(Resolved::Dropout(rate))
    }

    /// `zeropad P`: `P` on every side, `PHxPW`, or `TxBxLxR`.
    pub(super) fn resolve_zeropad(&mut self, s: &Stmt) -> Option<Resolved> {
        let example = "zeropad 1` or `zeropad 0x1x0x1";
        let Some(t) = s.args.first() else {
            self.syntax(
                "`zeropad` needs the padding",
                s.head.span,
                "the padding is missing",
                "write e.g. `zeropad 1` (every side), `zeropad 1x2` (rows x columns) or `zeropad 0x1x0x1` (top x bottom x left x right)",
            );
            return None;
        };
        let mut ok = true;
        for extra in &s.args[1..] {
            self.unexpected(
                s,
                extra,
                "`zeropad` takes one padding, e.g. `zeropad 1` or `zeropad 0x1x0x1`",
            );
            ok = false;
        }
        let v = self.cells(t, "padding", &[2, 4], example)?;
        let p = match v.v[..] {
            [p] => [p, p, p, p],
            [ph, pw] => [ph, ph, pw, pw],
            [top, bottom, left, right] => [top, bottom, left, right],
            _ => return None,
        };
        ok.then_some(Resolved::ZeroPad(Val { v: p, span: v.span }))
    }

    /// `upsample S [nearest|bilinear]`.
    pub(super) fn resolve_upsample(&mut self, s: &Stmt) -> Option<Resolved> {
        let example = "upsample 2";
        let size = match s.args.first() {
            Some(t) => self.pair(t, "upsampling size", example),
            None => {
                self.syntax(
                    "`upsample` needs a size",
                    s.head.span,
                    "the size is missing",
                    "write how many times each row and column is repeated, e.g. `upsample 2` or `upsample 2x1`",
                );
                return None;
            }
        };
        let acc = accepts("upsample")?;
        let opts = self.options(s, 1, &acc);
        Some(Resolved::Upsample {
            size: size?,
            opts: opts?,
        })
    }

    /// `randomflip [horizontal] [vertical]`, `randomtranslate F [G]`,
    /// `randomrotate F` (`0 <= F <= 1`), `randomzoom F` (`0 <= F < 1`).
    pub(super) fn resolve_augment(&mut self, s: &Stmt) -> Option<Resolved> {
        let kw = s.head.text.as_str();
        let acc = accepts(kw)?;
        if kw == "randomflip" {
            let o = self.options(s, 0, &acc)?;
            // Neither word: both axes, as Keras's default mode.
            let both = o.horizontal.is_none() && o.vertical.is_none();
            let kind = Augment::Flip {
                horizontal: both || o.horizontal.is_some(),
                vertical: both || o.vertical.is_some(),
            };
            return Some(Resolved::Augment {
                kind,
                factors: vec![],
            });
        }
        let (what, example, most, range, help) = match kw {
            "randomtranslate" => (
                "largest shift",
                "randomtranslate 0.1",
                2,
                "in [0, 1]",
                "the largest shift as a fraction of the height (and, if it differs, of the width), e.g. `randomtranslate 0.1` (up to a tenth either way) or `randomtranslate 0 0.1` (sideways only)",
            ),
            "randomrotate" => (
                "largest turn",
                "randomrotate 0.05",
                1,
                "in [0, 1]",
                "the largest turn as a fraction of a full turn, e.g. `randomrotate 0.05` (up to 18 degrees either way)",
            ),
            _ => (
                "largest zoom",
                "randomzoom 0.1",
                1,
                "in [0, 1)",
                "the largest zoom as a fraction of the size, e.g. `randomzoom 0.1` (from 90% to 110%); 1 could shrink the image to a point",
            ),
        };
        if s.args.is_empty() {
            self.syntax(
                format!("`{kw}` needs the {what}"),
                s.head.span,
                format!("the {what} is missing"),
                format!("write {help}"),
            );
            return None;
        }
        let mut ok = true;
        for extra in s.args.iter().skip(most) {
            let takes = if most == 1 {
                "one number"
            } else {
                "at most two numbers"
            };
            self.unexpected(s, extra, &format!("`{kw}` takes {takes}, e.g. `{example}`"));
            ok = false;
        }
        let kind_of = |f: &[Real]| match kw {
            "randomtranslate" => Augment::Translate {
                height: f[0],
                width: *f.get(1).unwrap_or(&f[0]),
            },
            "randomrotate" => Augment::Rotate(f[0]),
            _ => Augment::Zoom(f[0]),
        };
        let mut factors = Vec::new();
        for t in s.args.iter().take(most) {
            let Some(f) = self.decimal(t, what, example) else {
                ok = false;
                continue;
            };
            if !kind_of(&[Real::new(f.v)]).plan().valid() {
                let subject = format!("the {what}");
                self.out_of_range(f, &t.text, &subject, range, &format!("write {help}"));
                ok = false;
                continue;
            }
            factors.push(f);
        }
        if !ok {
            return None;
        }
        let reals: Vec<Real> = factors.iter().map(|f| Real::new(f.v)).collect();
        Some(Resolved::Augment {
            kind: kind_of(&reals),
            factors,
        })
    }

    /// An activation statement: `None` when the word is no activation,
    /// `Some(None)` when it is one with a problem. Only `leaky_relu` takes an
    /// argument, its optional slope.
    pub(super) fn resolve_activation(&mut self, s: &Stmt) -> Option<Option<Resolved>> {
        let kw = s.head.text.as_str();
        let mut a = activation_of(kw)?;
        let mut rest = &s.args[..];
        let mut ok = true;
        if matches!(a, Activation::LeakyRelu(_)) {
            let slope = s
                .args
                .first()
                .filter(|t| matches!(t.kind, TokenKind::Decimal | TokenKind::Int));
            if let Some(t) = slope {
                rest = &s.args[1..];
                match self.slope(t) {
                    Some(r) => a = Activation::LeakyRelu(r),
                    None => ok = false,
                }
            }
        }
        let help = if matches!(a, Activation::LeakyRelu(_)) {
            "`leaky_relu` takes at most its slope, e.g. `leaky_relu 0.1`".to_string()
        } else {
            format!("`{kw}` takes no arguments")
        };
        for t in rest {
            self.unexpected(s, t, &help);
            ok = false;
        }
        Some(ok.then_some(Resolved::Act(Val {
            v: a,
            span: s.head.span,
        })))
    }
}

/// A pair as the language writes it: `1` when square, `1x2` otherwise.
pub(super) fn pair_text(p: [u64; 2]) -> String {
    if p[0] == p[1] {
        p[0].to_string()
    } else {
        fmt2(p)
    }
}
