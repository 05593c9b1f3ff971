//! Warnings: the model compiles, but something in it is likely a mistake
//! (W001 softmax not last, W002 two activations in a row, W003 a stride that
//! skips input, W004 a dropout, batchnorm or augmentation that has no effect).

use super::options::Opts;
use super::resolve::{Resolved, WindowKind};
use super::show::fmt2;
use super::Checker;
use crate::ast::Stmt;
use crate::diag::{Code, Diagnostic};
use crate::ir::Activation;

impl Checker {
    /// Reports the warnings of one chain's resolved statements (a model's, or
    /// a branch's); `tail`: nothing follows the chain in the model.
    pub(super) fn warnings(&mut self, stmts: &[Stmt], resolved: &[Option<Resolved>], tail: bool) {
        for (i, r) in resolved.iter().enumerate() {
            let Some(r) = r else { continue };
            self.stride_skips_input(r);
            self.no_effect(stmts, resolved, i, tail);
            let Some(act) = r.activation() else { continue };
            // Layers after it, not counting dropouts: a dropout after the
            // softmax is W004's to report (it is the one out of place).
            let later_layers = !tail
                || stmts
                    .get(i + 1..)
                    .is_some_and(|rest| rest.iter().any(|s| s.head.text != "dropout"));
            if act.v == Activation::Softmax && later_layers {
                self.push(
                    Diagnostic::new(
                        Code::SoftmaxNotLast,
                        "softmax is not on the last layer",
                        act.span,
                        "softmax here squashes the values the next layers see",
                    )
                    .with_help("softmax belongs on the output layer: use relu here, or remove the layers after it"),
                );
            }
            if let (Resolved::Act(_), Some(Some(prev))) =
                (r, i.checked_sub(1).map(|j| &resolved[j]))
            {
                if let Some(p) = prev.activation() {
                    if p.v != Activation::Linear && act.v != Activation::Linear {
                        self.push(
                            Diagnostic::new(
                                Code::DoubleActivation,
                                format!(
                                    "two activations in a row: {} then {}",
                                    p.v.keyword(),
                                    act.v.keyword()
                                ),
                                act.span,
                                "applied on top of the previous activation",
                            )
                            .with_related(p.span, "the previous activation")
                            .with_help("keep only one of them"),
                        );
                    }
                }
            }
        }
    }

    /// W004: a `dropout` that drops nothing (rate 0) or whose dropped values
    /// no layer after it sees (the last statement); a `batchnorm` right after
    /// another (it normalises what is already normalised).
    fn no_effect(&mut self, stmts: &[Stmt], resolved: &[Option<Resolved>], i: usize, tail: bool) {
        let (Some(s), Some(Some(r))) = (stmts.get(i), resolved.get(i)) else {
            return;
        };
        let last = tail && i + 1 == stmts.len();
        let prev = i.checked_sub(1).and_then(|j| resolved.get(j)?.as_ref());
        match r {
            Resolved::Dropout(rate) if rate.v == 0.0 => self.push(
                Diagnostic::new(
                    Code::NoEffect,
                    "`dropout` with rate 0 has no effect",
                    rate.span,
                    "drops nothing",
                )
                .with_help("remove the statement, or give a rate above 0, e.g. `dropout 0.5`"),
            ),
            Resolved::Dropout(_) if last => self.push(
                Diagnostic::new(
                    Code::NoEffect,
                    "`dropout` as the last layer has no effect on what the model learns",
                    s.head.span,
                    "no layer after it learns from the dropped values",
                )
                .with_help(
                    "dropout regularises the layers after it: move it before the last layer that has weights, or remove it",
                ),
            ),
            Resolved::Augment { kind, factors }
                if !factors.is_empty() && factors.iter().all(|f| f.v == 0.0) =>
            {
                let kw = kind.keyword();
                self.push(
                    Diagnostic::new(
                        Code::NoEffect,
                        format!("`{kw}` by 0 has no effect"),
                        factors[0].span,
                        "moves no image",
                    )
                    .with_help(format!(
                        "remove the statement, or give a factor above 0, e.g. `{kw} 0.1`"
                    )),
                )
            }
            Resolved::BatchNorm(_) if matches!(prev, Some(Resolved::BatchNorm(_))) => {
                let first = stmts[i - 1].span;
                self.push(
                    Diagnostic::new(
                        Code::NoEffect,
                        "`batchnorm` right after `batchnorm` has no effect",
                        s.head.span,
                        "normalises what is already normalised",
                    )
                    .with_related(first, "the previous batchnorm")
                    .with_help("remove one of the two: one batchnorm normalises the values once"),
                );
            }
            _ => {}
        }
    }

    /// W003: a stride longer than the (effective) window, given explicitly.
    /// Not for a 1x1 conv with stride 2: that is how ResNet halves the image
    /// on a projection shortcut, on purpose.
    fn stride_skips_input(&mut self, r: &Resolved) {
        let Resolved::Window {
            kind,
            opts: Opts {
                stride: Some(st), ..
            },
            ..
        } = r
        else {
            return;
        };
        let Some((window, geom)) = r.window() else {
            return;
        };
        let projection =
            *kind == WindowKind::Conv && geom.effective() == [1, 1] && st.v.iter().all(|&s| s <= 2);
        if !geom.skips_input() || projection {
            return;
        }
        let eff = geom.effective();
        let stride = if st.v[0] == st.v[1] {
            st.v[0].to_string()
        } else {
            fmt2(st.v)
        };
        self.push(
            Diagnostic::new(
                Code::StrideSkipsInput,
                format!(
                    "stride {stride} is larger than the {} window: some input cells are never read",
                    fmt2(eff)
                ),
                st.span,
                "this stride skips input cells",
            )
            .with_related(window.span, "the window")
            .with_help(format!(
                "use a stride of at most {} or a larger window",
                fmt2(eff)
            )),
        );
    }
}
