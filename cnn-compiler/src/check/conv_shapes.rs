//! The shape rules of the layers with a window: `conv` (grouped or not),
//! `dwconv`, `sepconv` and the pools slide it over the (explicitly padded)
//! input; `deconv` runs it the other way. Output sizes, padding splits,
//! Keras's tensors, FLOPs, and the errors (window too big, groups not
//! dividing the channels, sizes past the runtime's limits).

use super::args::Val;
use super::options::Opts;
use super::params::{self, trainable};
use super::resolve::WindowKind;
use super::shapes::{image, Built, Cur, Rule};
use super::show::{fmt2, shape_short};
use super::window::{Placement, Window};
use super::Checker;
use crate::ast::Stmt;
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Activation, Padding, PoolKind};

/// A resolved `conv`, `dwconv` or `sepconv`, defaults applied to its window.
pub(super) struct ConvArgs<'a> {
    pub(super) kind: WindowKind,
    /// `conv` and `sepconv`.
    pub(super) filters: Option<u64>,
    pub(super) size: Val<[u64; 2]>,
    pub(super) geom: Window,
    pub(super) opts: &'a Opts,
}

/// `[a, b]` of checked sizes as `[usize; 2]`.
fn us(v: [u64; 2]) -> [usize; 2] {
    v.map(|x| x as usize)
}

impl Checker {
    /// Where the window lands on `image` (`[H, W, C]`), or the error: the
    /// padded input too large, or a `valid` window that does not fit it.
    fn placed(
        &mut self,
        s: &Stmt,
        size: Val<[u64; 2]>,
        geom: &Window,
        image: [u64; 3],
        cur: &Cur,
        note: &dyn Fn() -> String,
    ) -> Result<Placement, Option<Cur>> {
        let [h, w, c] = image;
        let n = geom.padded([h, w]);
        if geom.explicit != [0, 0] {
            // The padded input is as real as an output: it must fit the runtime too.
            self.fits(n[0], n[1], c, s, "the padded input", note)?;
        }
        if let Some(p) = geom.place([h, w]) {
            return Ok(p);
        }
        let eff = geom.effective();
        let dl = geom.dilation;
        let what = if s.head.text.ends_with("pool") {
            "pool window"
        } else {
            "kernel"
        };
        let covers = if dl != [1, 1] {
            format!(
                "with dilation {}, this {} {what} covers {}",
                fmt2(dl),
                fmt2(size.v),
                fmt2(eff)
            )
        } else {
            format!(
                "this {} window needs an input of at least {}",
                fmt2(size.v),
                fmt2(eff)
            )
        };
        let fit = [eff[0].min(n[0]), eff[1].min(n[1])];
        let shape = shape_short(&cur.shape);
        let (padded, help) = if geom.explicit == [0, 0] {
            (
                String::new(),
                format!(
                    "the input here is {shape} ({}); use `same` padding or a window of at most {}",
                    cur.origin,
                    fmt2(fit)
                ),
            )
        } else {
            (
                format!(" padded to {}", fmt2(n)),
                format!(
                    "the input here is {shape} ({}), {} with its `pad`; use a larger `pad` or a window of at most {}",
                    cur.origin,
                    fmt2(n),
                    fmt2(fit)
                ),
            )
        };
        self.push(
            Diagnostic::new(
                Code::WindowTooBig,
                format!(
                    "window too big: the {} {what} does not fit its {h}x{w} input{padded}",
                    fmt2(size.v)
                ),
                size.span,
                covers,
            )
            .with_related(
                cur.origin_span,
                format!("the {shape} input comes from here"),
            )
            .with_note(note())
            .with_help(help),
        );
        Err(None)
    }

    /// `maxpool`, `avgpool`, `minpool`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pool(
        &mut self,
        s: &Stmt,
        kind: PoolKind,
        size: Val<[u64; 2]>,
        geom: Window,
        img: [u64; 3],
        cur: &Cur,
        note: &dyn Fn() -> String,
    ) -> Rule {
        let placed = self.placed(s, size, &geom, img, cur, note)?;
        let out = placed.out;
        let elems = self.elements(out[0], out[1], img[2], s, note)?;
        let op = ir::Op::Pool(ir::Pool {
            kind,
            window: us(size.v),
            stride: us(geom.stride),
            padding: geom.padding,
            pad: placed.pad,
            explicit_pad: us(geom.explicit),
        });
        let flops = elems.saturating_mul(size.v[0] * size.v[1]);
        Ok(Built {
            op,
            output: image(out[0], out[1], img[2]),
            params: Default::default(),
            flops,
        })
    }

    /// `conv`, `dwconv`, `sepconv` on `image` (`[H, W, C]`).
    pub(super) fn conv(
        &mut self,
        s: &Stmt,
        a: &ConvArgs<'_>,
        img: [u64; 3],
        cur: &Cur,
        note: &dyn Fn() -> String,
    ) -> Rule {
        let placed = self.placed(s, a.size, &a.geom, img, cur, note)?;
        let [oh, ow] = placed.out;
        let c = img[2];
        let [kh, kw] = a.size.v;
        let kernel = us(a.size.v);
        let (stride, dilation) = (us(a.geom.stride), us(a.geom.dilation));
        let bias = a.opts.nobias.is_none();
        let activation = a.opts.act.map_or(Activation::Linear, |v| v.v);
        let multiplier = a.opts.multiplier.map_or(1, |v| v.v);
        let fix = "use fewer filters or a smaller kernel";
        match a.kind {
            WindowKind::DwConv => {
                // c <= 2^31 and multiplier <= 2^20: no overflow.
                let ch = c * multiplier;
                let elems = self.elements(oh, ow, ch, s, note)?;
                let mut tensors = vec![trainable("depthwise_kernel", vec![kh, kw, c, multiplier])];
                if bias {
                    tensors.push(trainable("bias", vec![ch]));
                }
                let Some(params) = params::count(tensors) else {
                    let label = format!("{kh}x{kw}x{c}x{multiplier} kernel");
                    self.too_many_params(s.head.span, "dwconv", label, fix, note());
                    return Err(None);
                };
                // elems <= 2^31 and kh * kw <= params <= 2^31: fits.
                let flops = 2 * elems * kh * kw;
                let op = ir::Op::DwConv(ir::DwConv {
                    kernel,
                    stride,
                    dilation,
                    padding: a.geom.padding,
                    pad: placed.pad,
                    explicit_pad: us(a.geom.explicit),
                    multiplier: multiplier as usize,
                    bias,
                    activation,
                });
                Ok(Built {
                    op,
                    output: image(oh, ow, ch),
                    params,
                    flops,
                })
            }
            WindowKind::SepConv => {
                let f = a.filters.unwrap_or(1);
                let ch = c * multiplier;
                // The depthwise result is a real intermediate image.
                let dw = self.fits(oh, ow, ch, s, "the depthwise output", note)?;
                self.elements(oh, ow, f, s, note)?;
                let mut tensors = vec![
                    trainable("depthwise_kernel", vec![kh, kw, c, multiplier]),
                    trainable("pointwise_kernel", vec![1, 1, ch, f]),
                ];
                if bias {
                    tensors.push(trainable("bias", vec![f]));
                }
                let Some(params) = params::count(tensors) else {
                    let label = format!("{kh}x{kw}x{c}x{multiplier} and 1x1x{ch}x{f} kernels");
                    self.too_many_params(s.head.span, "sepconv", label, fix, note());
                    return Err(None);
                };
                // dw <= 2^31, kh * kw and f <= params <= 2^31: each term fits;
                // their sum saturates (the model total then reports it).
                let flops = (2 * dw * kh * kw).saturating_add(2 * dw * f);
                let op = ir::Op::SepConv(ir::SepConv {
                    filters: f as usize,
                    kernel,
                    stride,
                    dilation,
                    padding: a.geom.padding,
                    pad: placed.pad,
                    multiplier: multiplier as usize,
                    bias,
                    activation,
                });
                Ok(Built {
                    op,
                    output: image(oh, ow, f),
                    params,
                    flops,
                })
            }
            _ => {
                let f = a.filters.unwrap_or(1);
                let groups_ok = self.groups_divide(a.opts.groups, c, f, cur);
                let elems = self.elements(oh, ow, f, s, note)?;
                if !groups_ok {
                    // The output shape does not depend on the groups: go on with it.
                    return Err(Some(Cur {
                        shape: image(oh, ow, f),
                        origin: self.origin(s),
                        origin_span: s.span,
                        vector_by: cur.vector_by,
                    }));
                }
                let g = a.opts.groups.map_or(1, |v| v.v);
                let cin = c / g;
                let mut tensors = vec![trainable("kernel", vec![kh, kw, cin, f])];
                if bias {
                    tensors.push(trainable("bias", vec![f]));
                }
                let Some(params) = params::count(tensors) else {
                    let label = format!("{kh}x{kw}x{cin}x{f} kernel");
                    self.too_many_params(s.head.span, "conv", label, fix, note());
                    return Err(None);
                };
                // elems <= 2^31 and kh * kw * cin <= params <= 2^31: fits.
                let flops = 2 * elems * kh * kw * cin;
                let op = ir::Op::Conv(ir::Conv {
                    filters: f as usize,
                    kernel,
                    stride,
                    dilation,
                    padding: a.geom.padding,
                    pad: placed.pad,
                    explicit_pad: us(a.geom.explicit),
                    groups: g as usize,
                    bias,
                    activation,
                });
                Ok(Built {
                    op,
                    output: image(oh, ow, f),
                    params,
                    flops,
                })
            }
        }
    }

    /// E010: each group of a grouped conv reads `C / G` channels and writes
    /// `F / G` filters, so `G` divides both. Reports when not, on `G`.
    fn groups_divide(&mut self, groups: Option<Val<u64>>, c: u64, f: u64, cur: &Cur) -> bool {
        let Some(g) = groups else {
            return true;
        };
        let (by_c, by_f) = (c.is_multiple_of(g.v), f.is_multiple_of(g.v));
        if by_c && by_f {
            return true;
        }
        let message = match (by_c, by_f) {
            (false, false) => format!(
                "`groups {}` divides neither the {c} input channels nor the {f} filters",
                g.v
            ),
            (false, true) => format!("`groups {}` does not divide the {c} input channels", g.v),
            _ => format!("`groups {}` does not divide the {f} filters", g.v),
        };
        let common = gcd(c, f);
        let help = if common == 1 {
            format!(
                "each group reads C/G channels and writes F/G filters, but {c} channels and {f} filters have no common divisor above 1: remove `groups`, or change the number of filters"
            )
        } else {
            format!(
                "each group reads C/G channels and writes F/G filters, so G must divide both the {c} channels and the {f} filters: use e.g. `groups {}`",
                divisor_near(common, g.v)
            )
        };
        let mut d = Diagnostic::new(
            Code::GroupsNotDividing,
            message,
            g.span,
            format!("not a divisor of {}", if by_c { f } else { c }),
        );
        if !by_c {
            d = d.with_related(cur.origin_span, format!("the {c} channels come from here"));
        }
        self.push(d.with_help(help));
        false
    }

    /// `deconv F K` on `image` (`[H, W, C]`): out `n * s` (`same`) or
    /// `(n - 1) * s + max(k, s)` (`valid`, as Keras computes it).
    pub(super) fn deconv(
        &mut self,
        s: &Stmt,
        f: u64,
        kernel: Val<[u64; 2]>,
        opts: &Opts,
        img: [u64; 3],
        note: &dyn Fn() -> String,
    ) -> Rule {
        let [h, w, c] = img;
        let st = opts.stride.map_or([1, 1], |v| v.v);
        let padding = opts.padding.map_or(Padding::Valid, |v| v.v);
        let k = kernel.v;
        let n = [h, w];
        // n <= 2^31, k and s <= 2^20: at most 2^51, no overflow.
        let out = [0, 1].map(|ax| match padding {
            Padding::Same => n[ax] * st[ax],
            Padding::Valid => (n[ax] - 1) * st[ax] + k[ax].max(st[ax]),
        });
        // `same` keeps `n * s` of the full `(n - 1) * s + k` cells, the odd
        // cropped cell after (as conv's `same` pads the odd cell after).
        let crop = [0, 1].map(|ax| match padding {
            Padding::Same => (k[ax].saturating_sub(st[ax]) / 2) as usize,
            Padding::Valid => 0,
        });
        self.elements(out[0], out[1], f, s, note)?;
        let bias = opts.nobias.is_none();
        let mut tensors = vec![trainable("kernel", vec![k[0], k[1], f, c])];
        if bias {
            tensors.push(trainable("bias", vec![f]));
        }
        let Some(params) = params::count(tensors) else {
            let label = format!("{}x{}x{f}x{c} kernel", k[0], k[1]);
            let fix = "use fewer filters or a smaller kernel";
            self.too_many_params(s.head.span, "deconv", label, fix, note());
            return Err(None);
        };
        // Every input cell meets every tap: h * w <= 2^31 and
        // k * k * f * c <= params <= 2^31, so this fits.
        let flops = 2 * h * w * (k[0] * k[1] * f * c);
        let op = ir::Op::Deconv(ir::Deconv {
            filters: f as usize,
            kernel: us(k),
            stride: us(st),
            padding,
            crop,
            bias,
            activation: opts.act.map_or(Activation::Linear, |v| v.v),
        });
        Ok(Built {
            op,
            output: image(out[0], out[1], f),
            params,
            flops,
        })
    }
}

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The divisor of `n` (above 1) closest to `g`, preferring the smaller one:
/// the groups to suggest instead of `g`.
fn divisor_near(n: u64, g: u64) -> u64 {
    // n <= 2^20 (it divides a filter count): at most 2^10 trial divisions.
    let mut best = n;
    let mut d = 1;
    while d * d <= n {
        if n.is_multiple_of(d) {
            for x in [d, n / d] {
                if x > 1 && (x.abs_diff(g), x) < (best.abs_diff(g), best) {
                    best = x;
                }
            }
        }
        d += 1;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisors_suggested_for_groups() {
        assert_eq!(gcd(8, 6), 2);
        assert_eq!(divisor_near(2, 4), 2);
        assert_eq!(divisor_near(12, 5), 4);
        assert_eq!(divisor_near(12, 100), 12);
        assert_eq!(divisor_near(7, 3), 7);
    }
}
