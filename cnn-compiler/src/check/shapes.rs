//! The shape rule of each layer: its output shape, parameter tensors and
//! FLOPs from its input shape, or the error that says why not. This file
//! dispatches and holds the layers without a window; `conv_shapes` has the
//! convolutions and pools.

use super::params::{self, Params};
use super::resolve::{Resolved, WindowKind};
use super::show::shape_short;
use super::{Checker, MAX_ELEMENTS};
use crate::ast::Stmt;
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Activation, Interpolation, Pad2, Real, Shape, Span};

/// Where the current shape came from, for messages.
#[derive(Debug, Clone)]
pub(super) struct Cur {
    /// The shape entering the next layer.
    pub(super) shape: Shape,
    /// "after maxpool 2 on line 6" / "the input on line 1"
    pub(super) origin: String,
    /// The statement (or input shape) it came from.
    pub(super) origin_span: Span,
    /// For a vector: the keyword of the layer that made the image a vector
    /// (`flatten`, `globalavgpool`, ...), named by "move it before the ...".
    pub(super) vector_by: &'static str,
}

/// What a shape rule gives: the op, its output, its tensors and its FLOPs.
pub(super) struct Built {
    pub(super) op: ir::Op,
    pub(super) output: Shape,
    pub(super) params: Params,
    pub(super) flops: u64,
}

impl Built {
    /// A layer without parameters.
    fn plain(op: ir::Op, output: Shape, flops: u64) -> Built {
        Built {
            op,
            output,
            params: Params::default(),
            flops,
        }
    }
}

/// The result of a shape rule: on error, the shape to continue with, when one
/// is known (e.g. dense on an image continues as if flattened), so that later
/// layers are still checked.
pub(super) type Rule = Result<Built, Option<Cur>>;

/// Whether a statement's output is a vector (`Some(true)`), an image
/// (`Some(false)`) or of its input's kind (`None`), by its word alone: known
/// even when the statement or an earlier one has an error.
pub(super) fn makes_vector(word: &str) -> Option<bool> {
    match word {
        "flatten" | "dense" | "globalavgpool" | "globalmaxpool" => Some(true),
        "conv" | "dwconv" | "sepconv" | "deconv" | "maxpool" | "avgpool" | "minpool"
        | "zeropad" | "upsample" => Some(false),
        _ => None,
    }
}

/// Whether a resolved statement needs an image HxWxC.
fn needs_image(r: &Resolved) -> bool {
    matches!(
        r,
        Resolved::Window { .. }
            | Resolved::Deconv { .. }
            | Resolved::GlobalPool(_)
            | Resolved::ZeroPad(_)
            | Resolved::Upsample { .. }
            | Resolved::Augment { .. }
    )
}

impl Checker {
    /// After an earlier error the exact shape is unknown, but whether it is an
    /// image or a vector may be: report `needs image` / `needs vector` then.
    /// `vector_by` is the layer that made the vector (when `is_vector`).
    pub(super) fn kind_only(
        &mut self,
        s: &Stmt,
        r: &Resolved,
        is_vector: bool,
        origin: &str,
        from: Span,
        vector_by: &str,
    ) {
        let kw = s.head.span;
        let kwt = s.head.text.as_str();
        if is_vector && needs_image(r) {
            self.push(
                Diagnostic::new(
                    Code::NeedsImage,
                    format!("`{kwt}` needs an image HxWxC, but it gets a vector"),
                    kw,
                    "this layer needs HxWxC",
                )
                .with_related(from, "the input becomes a vector here")
                .with_help(format!(
                    "this layer needs HxWxC; it gets a vector ({origin}): move it before the {vector_by}"
                )),
            );
        } else if !is_vector && matches!(r, Resolved::Dense { .. }) {
            self.push(
                Diagnostic::new(
                    Code::NeedsVector,
                    "`dense` needs a vector, but it gets an image",
                    kw,
                    "this layer needs a flat vector",
                )
                .with_related(from, "the image comes from here")
                .with_help("insert `flatten;` before this layer"),
            );
        }
    }

    /// Computes one layer from its input shape. On error returns the shape to
    /// continue with, when one is known.
    pub(super) fn layer(
        &mut self,
        index: usize,
        path: &str,
        s: &Stmt,
        r: &Resolved,
        cur: &Cur,
        trail: &[String],
    ) -> Result<ir::Layer, Option<Cur>> {
        let note = || {
            let start = trail.len().saturating_sub(6);
            let prefix = if start > 0 { "... -> " } else { "" };
            format!("shapes so far: {prefix}{}", trail[start..].join(" -> "))
        };
        let built = self.rule(s, r, cur, &note)?;
        Ok(ir::Layer {
            index,
            path: path.to_string(),
            op: built.op,
            input: cur.shape,
            output: built.output,
            params: built.params.tensors,
            param_count: built.params.count,
            non_trainable: built.params.non_trainable,
            flops: built.flops,
            span: s.span,
            keyword_span: s.head.span,
        })
    }

    /// The shape rule of `r` on `cur`.
    fn rule(&mut self, s: &Stmt, r: &Resolved, cur: &Cur, note: &dyn Fn() -> String) -> Rule {
        let len = cur.shape.len() as u64;
        match r {
            Resolved::Input(_) => Err(None),
            Resolved::Window {
                kind,
                filters,
                opts,
                ..
            } => {
                let (h, w, c) = self.image(s, cur, note)?;
                let Some((size, geom)) = r.window() else {
                    return Err(None);
                };
                let image = [h, w, c].map(|d| d as u64);
                match kind {
                    WindowKind::Pool(kind) => self.pool(s, *kind, size, geom, image, cur, note),
                    _ => {
                        let conv = super::conv_shapes::ConvArgs {
                            kind: *kind,
                            filters: filters.map(|f| f.v),
                            size,
                            geom,
                            opts,
                        };
                        self.conv(s, &conv, image, cur, note)
                    }
                }
            }
            Resolved::Deconv {
                filters,
                kernel,
                opts,
            } => {
                let (h, w, c) = self.image(s, cur, note)?;
                let image = [h, w, c].map(|d| d as u64);
                self.deconv(s, filters.v, *kernel, opts, image, note)
            }
            Resolved::Flatten => Ok(Built::plain(
                ir::Op::Flatten,
                Shape::Vector { n: cur.shape.len() },
                0,
            )),
            Resolved::Dense { units, opts } => self.dense(s, units.v, opts, cur, note),
            Resolved::Act(a) => Ok(Built::plain(ir::Op::Activation(a.v), cur.shape, len)),
            Resolved::BatchNorm(o) => {
                // Over the last axis: the channels of an image, the features of a vector.
                let ch = match cur.shape {
                    Shape::Image { c, .. } => c as u64,
                    Shape::Vector { n } => n as u64,
                };
                let mut tensors = Vec::new();
                if o.noscale.is_none() {
                    tensors.push(params::trainable("gamma", vec![ch]));
                }
                if o.nocenter.is_none() {
                    tensors.push(params::trainable("beta", vec![ch]));
                }
                tensors.push(("moving_mean", vec![ch], false));
                tensors.push(("moving_variance", vec![ch], false));
                // At most 4 x 2^31 values: the count cannot overflow, only pass the limit.
                let label = format!("{} x {ch} values", tensors.len());
                let Some(params) = params::count(tensors) else {
                    self.too_many_params(
                        s.head.span,
                        "batchnorm",
                        label,
                        "normalise fewer features",
                        note(),
                    );
                    return Err(None);
                };
                let op = ir::Op::BatchNorm(ir::BatchNorm {
                    momentum: Real::new(o.momentum.map_or(0.99, |v| v.v)),
                    epsilon: Real::new(o.epsilon.map_or(0.001, |v| v.v)),
                    scale: o.noscale.is_none(),
                    center: o.nocenter.is_none(),
                });
                Ok(Built {
                    op,
                    output: cur.shape,
                    params,
                    flops: len,
                })
            }
            Resolved::Dropout(rate) => Ok(Built::plain(
                ir::Op::Dropout(Real::new(rate.v)),
                cur.shape,
                len,
            )),
            Resolved::GlobalPool(kind) => {
                let (_, _, c) = self.image(s, cur, note)?;
                let out = Shape::Vector { n: c };
                Ok(Built::plain(ir::Op::GlobalPool(*kind), out, len))
            }
            Resolved::ZeroPad(p) => {
                let (h, w, c) = self.image(s, cur, note)?;
                let [top, bottom, left, right] = p.v;
                // h, w <= 2^31 and each side <= 2^20: no overflow.
                let (oh, ow) = (h as u64 + top + bottom, w as u64 + left + right);
                self.elements(oh, ow, c as u64, s, note)?;
                let pad = Pad2 {
                    top: top as usize,
                    bottom: bottom as usize,
                    left: left as usize,
                    right: right as usize,
                };
                Ok(Built::plain(
                    ir::Op::ZeroPad(pad),
                    image(oh, ow, c as u64),
                    0,
                ))
            }
            Resolved::Augment { kind, .. } => {
                self.image(s, cur, note)?;
                Ok(Built::plain(ir::Op::Augment(*kind), cur.shape, len))
            }
            Resolved::Upsample { size, opts } => {
                let (h, w, c) = self.image(s, cur, note)?;
                // h, w <= 2^31 and the size <= 2^20: no overflow.
                let (oh, ow) = (h as u64 * size.v[0], w as u64 * size.v[1]);
                let elems = self.elements(oh, ow, c as u64, s, note)?;
                let op = ir::Op::Upsample {
                    size: size.v.map(|v| v as usize),
                    interpolation: opts.interpolation.map_or(Interpolation::Nearest, |v| v.v),
                };
                Ok(Built::plain(op, image(oh, ow, c as u64), elems))
            }
        }
    }

    /// The input as an image, or the `needs image` error.
    pub(super) fn image(
        &mut self,
        s: &Stmt,
        cur: &Cur,
        note: &dyn Fn() -> String,
    ) -> Result<(usize, usize, usize), Option<Cur>> {
        if let Shape::Image { h, w, c } = cur.shape {
            return Ok((h, w, c));
        }
        let n = cur.shape.len();
        self.push(
            Diagnostic::new(
                Code::NeedsImage,
                format!(
                    "`{}` needs an image HxWxC, but it gets a vector of {n}",
                    s.head.text
                ),
                s.head.span,
                "this layer needs HxWxC",
            )
            .with_related(cur.origin_span, "the input becomes a vector here")
            .with_note(note())
            .with_help(format!(
                "this layer needs HxWxC; it gets a vector of {n} ({}): move it before the {}",
                cur.origin, cur.vector_by
            )),
        );
        Err(None)
    }

    /// `dense N`: needs a vector; on an image, reports it and continues as if
    /// flattened.
    fn dense(
        &mut self,
        s: &Stmt,
        u: u64,
        opts: &super::options::Opts,
        cur: &Cur,
        note: &dyn Fn() -> String,
    ) -> Rule {
        let kw = s.head.span;
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
                .with_related(
                    cur.origin_span,
                    format!("the {} image comes from here", shape_short(&cur.shape)),
                )
                .with_note(note())
                .with_help(format!(
                    "insert `flatten;` before this layer (it turns {} into a vector of {n_in})",
                    shape_short(&cur.shape)
                )),
            );
            err = true;
        }
        let bias = opts.nobias.is_none();
        let mut tensors = vec![params::trainable("kernel", vec![n_in, u])];
        if bias {
            tensors.push(params::trainable("bias", vec![u]));
        }
        let Some(params) = params::count(tensors) else {
            let label = format!("{n_in} inputs x {u} units");
            let fix = "use fewer units, or pool before flattening";
            self.too_many_params(kw, "dense layer", label, fix, note());
            return Err(None);
        };
        let out = Shape::Vector { n: u as usize };
        if err {
            return Err(Some(Cur {
                shape: out,
                origin: self.origin(s),
                origin_span: s.span,
                vector_by: "flatten",
            }));
        }
        let op = ir::Op::Dense(ir::Dense {
            units: u as usize,
            bias,
            activation: opts.act.map_or(Activation::Linear, |a| a.v),
        });
        // n_in * u <= params <= 2^31.
        Ok(Built {
            op,
            output: out,
            params,
            flops: 2 * n_in * u,
        })
    }

    /// Checks an output size against the runtime's limit; returns the element
    /// count, or reports `too large`.
    pub(super) fn elements(
        &mut self,
        h: u64,
        w: u64,
        c: u64,
        s: &Stmt,
        note: &dyn Fn() -> String,
    ) -> Result<u64, Option<Cur>> {
        self.fits(h, w, c, s, "the output", note)
    }

    /// [`Checker::elements`] for any image of the layer (`what`: "the
    /// output", "the padded input", ...).
    pub(super) fn fits(
        &mut self,
        h: u64,
        w: u64,
        c: u64,
        s: &Stmt,
        what: &str,
        note: &dyn Fn() -> String,
    ) -> Result<u64, Option<Cur>> {
        match h.checked_mul(w).and_then(|x| x.checked_mul(c)) {
            Some(n) if n <= MAX_ELEMENTS => Ok(n),
            _ => {
                let kw = &s.head.text;
                self.push(
                    Diagnostic::new(
                        Code::TooLarge,
                        format!(
                            "too large: {what} of this {kw} ({h}x{w}x{c}) has more values than the runtime supports"
                        ),
                        s.head.span,
                        "output too large",
                    )
                    .with_note(note())
                    .with_help(format!(
                        "a layer's output may hold at most {MAX_ELEMENTS} (2^31) values per sample: use fewer filters or a larger stride"
                    )),
                );
                Err(None)
            }
        }
    }
}

/// An image shape from checked sizes (each at most `MAX_ELEMENTS`).
pub(super) fn image(h: u64, w: u64, c: u64) -> Shape {
    Shape::Image {
        h: h as usize,
        w: w as usize,
        c: c as usize,
    }
}
