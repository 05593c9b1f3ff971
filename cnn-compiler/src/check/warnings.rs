//! Warnings: the model compiles, but something in it is likely a mistake
//! (W001 softmax not last, W002 two activations in a row, W003 a stride that
//! skips input).

use super::resolve::Resolved;
use super::show::fmt2;
use super::Checker;
use crate::ast::Stmt;
use crate::diag::{Code, Diagnostic};
use crate::ir::Activation;

impl Checker {
    /// Reports the warnings of one model's resolved statements.
    pub(super) fn warnings(&mut self, stmts: &[Stmt], resolved: &[Option<Resolved>]) {
        let n = stmts.len();
        for (i, r) in resolved.iter().enumerate() {
            let Some(r) = r else { continue };
            self.stride_skips_input(r);
            let Some(act) = r.activation() else { continue };
            if act.v == Activation::Softmax && i + 1 < n {
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

    /// W003: a stride longer than the (effective) window, given explicitly.
    fn stride_skips_input(&mut self, r: &Resolved) {
        let (Resolved::Conv {
            stride: Some(st), ..
        }
        | Resolved::Pool {
            stride: Some(st), ..
        }) = r
        else {
            return;
        };
        let Some((window, geom)) = r.window() else {
            return;
        };
        if !geom.skips_input() {
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
