//! The shape rule of each layer: its output shape, padding split, parameter
//! shapes and FLOPs from its input shape, or the error that says why not.

use super::resolve::Resolved;
use super::show::{fmt2, shape_short};
use super::{Checker, MAX_ELEMENTS, MAX_PARAMS};
use crate::ast::Stmt;
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Activation, Shape, Span};

/// Where the current shape came from, for messages.
#[derive(Debug, Clone)]
pub(super) struct Cur {
    /// The shape entering the next layer.
    pub(super) shape: Shape,
    /// "after maxpool 2 on line 6" / "the input on line 1"
    pub(super) origin: String,
    /// The statement (or input shape) it came from.
    pub(super) origin_span: Span,
}

impl Checker {
    /// After an earlier error the exact shape is unknown, but whether it is an
    /// image or a vector may be: report `needs image` / `needs vector` then.
    pub(super) fn kind_only(
        &mut self,
        s: &Stmt,
        r: &Resolved,
        is_vector: bool,
        origin: &str,
        from: Span,
    ) {
        let kw = s.head.span;
        let kwt = s.head.text.as_str();
        match r {
            Resolved::Conv { .. } | Resolved::Pool { .. } if is_vector => self.push(
                Diagnostic::new(
                    Code::NeedsImage,
                    format!("`{kwt}` needs an image HxWxC, but it gets a vector"),
                    kw,
                    "this layer needs HxWxC",
                )
                .with_related(from, "the input becomes a vector here")
                .with_help(format!(
                    "this layer needs HxWxC; it gets a vector ({origin}): move it before the flatten"
                )),
            ),
            Resolved::Dense { .. } if !is_vector => self.push(
                Diagnostic::new(
                    Code::NeedsVector,
                    "`dense` needs a vector, but it gets an image",
                    kw,
                    "this layer needs a flat vector",
                )
                .with_related(from, "the image comes from here")
                .with_help("insert `flatten;` before this layer"),
            ),
            _ => {}
        }
    }

    /// Computes one layer from its input shape. On error returns the shape to
    /// continue with (when one is known, e.g. dense on an image continues as if
    /// flattened) so that later layers are still checked.
    pub(super) fn layer(
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
                        Diagnostic::new(
                            Code::NeedsImage,
                            format!("`{kwt}` needs an image HxWxC, but it gets a vector of {n}"),
                            kw,
                            "this layer needs HxWxC",
                        )
                        .with_related(cur.origin_span, "the input becomes a vector here")
                        .with_note(trail_note())
                        .with_help(format!(
                            "this layer needs HxWxC; it gets a vector of {n} ({}): move it before the flatten",
                            cur.origin
                        )),
                    );
                    return Err(None);
                };
                let Some((window, geom)) = r.window() else {
                    return Err(None);
                };
                let is_pool = matches!(r, Resolved::Pool { .. });
                let (st, dl, pad) = (geom.stride, geom.dilation, geom.padding);
                let n = [h as u64, w as u64];
                let Some(placed) = geom.place(n) else {
                    let eff = geom.effective();
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
                        Diagnostic::new(
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
                        .with_related(cur.origin_span, format!("the {} input comes from here", shape_short(&cur.shape)))
                        .with_note(trail_note())
                        .with_help(format!(
                            "the input here is {} ({}); use `same` padding or a window of at most {}",
                            shape_short(&cur.shape),
                            cur.origin,
                            fmt2(fit)
                        )),
                    );
                    return Err(None);
                };
                let (out, pad2) = (placed.out, placed.pad);
                let ch = match r {
                    Resolved::Conv { filters, .. } => filters.v,
                    _ => c as u64,
                };
                let elems = self
                    .elements(out[0], out[1], ch, kw, kwt)
                    .map_err(|d| self.push((*d).with_note(trail_note())))
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
                                Diagnostic::new(
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
                                .with_note(trail_note())
                                .with_help(format!(
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
                        Diagnostic::new(
                            Code::NeedsVector,
                            format!(
                                "`dense` needs a vector, but it gets the image {}",
                                shape_short(&cur.shape)
                            ),
                            kw,
                            "this layer needs a flat vector",
                        )
                        .with_related(cur.origin_span, format!("the {} image comes from here", shape_short(&cur.shape)))
                        .with_note(trail_note())
                        .with_help(format!(
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
                        Diagnostic::new(
                            Code::TooLarge,
                            format!("too large: this dense layer has more than {MAX_PARAMS} parameters"),
                            kw,
                            format!("{n_in} inputs x {u} units"),
                        )
                        .with_note(trail_note())
                        .with_help(format!(
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
            _ => Err(Box::new(Diagnostic::new(
                Code::TooLarge,
                format!(
                    "too large: the output of this {kw} ({h}x{w}x{c}) has more values than the runtime supports"
                ),
                span,
                "output too large",
            )
            .with_help(format!(
                "a layer's output may hold at most {MAX_ELEMENTS} (2^31) values per sample: use fewer filters or a larger stride"
            )))),
        }
    }
}
