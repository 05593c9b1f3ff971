//! A [`Plan`] written out as Rust constants: every step as a `const Sk: Step`
//! (so a step function called with it folds to the step's kernel call), and
//! the whole plan as a `static`.

use cnn_plan::{
    Activation, Augment, Conv2dSpec, Init, Interpolation, JoinKind, LayerSpec, Plan, PoolKind,
    Real, Step, Tensor,
};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

pub(super) fn lit(n: usize) -> Literal {
    Literal::usize_suffixed(n)
}

/// The name of step `k`'s constant.
pub(super) fn step_ident(k: usize) -> Ident {
    format_ident!("S{}", k)
}

fn real(rt: &TokenStream, r: Real) -> TokenStream {
    let bits = Literal::u32_suffixed(r.to_bits());
    quote!(#rt::Real::from_bits(#bits))
}

fn act(rt: &TokenStream, a: Activation) -> TokenStream {
    let name = match a {
        Activation::LeakyRelu(slope) => {
            let slope = real(rt, slope);
            return quote!(#rt::Activation::LeakyRelu(#slope));
        }
        Activation::Linear => "Linear",
        Activation::Relu => "Relu",
        Activation::Sigmoid => "Sigmoid",
        Activation::Tanh => "Tanh",
        Activation::Softmax => "Softmax",
        Activation::Relu6 => "Relu6",
        Activation::Elu => "Elu",
        Activation::Selu => "Selu",
        Activation::Gelu => "Gelu",
        Activation::Silu => "Silu",
        Activation::Softplus => "Softplus",
        Activation::HardSigmoid => "HardSigmoid",
        Activation::HardSilu => "HardSilu",
    };
    let name = format_ident!("{}", name);
    quote!(#rt::Activation::#name)
}

fn pool_kind(rt: &TokenStream, k: PoolKind) -> TokenStream {
    match k {
        PoolKind::Max => quote!(#rt::PoolKind::Max),
        PoolKind::Avg => quote!(#rt::PoolKind::Avg),
        PoolKind::Min => quote!(#rt::PoolKind::Min),
    }
}

fn conv_spec(rt: &TokenStream, s: &Conv2dSpec) -> TokenStream {
    let [ih, iw, ic, oh, ow, oc] = [s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c].map(lit);
    let [kh, kw, sh, sw, dh, dw] = [s.kh, s.kw, s.sh, s.sw, s.dh, s.dw].map(lit);
    let [pt, pl] = [s.pad_top, s.pad_left].map(lit);
    quote! {
        #rt::Conv2dSpec {
            in_h: #ih, in_w: #iw, in_c: #ic, out_h: #oh, out_w: #ow, out_c: #oc,
            kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw,
            pad_top: #pt, pad_left: #pl,
        }
    }
}

fn layer(rt: &TokenStream, l: &LayerSpec) -> TokenStream {
    match *l {
        LayerSpec::Conv2d {
            spec,
            act: a,
            bias,
            groups,
        } => {
            let (spec, a, g) = (conv_spec(rt, &spec), act(rt, a), lit(groups));
            quote!(#rt::LayerSpec::Conv2d { spec: #spec, act: #a, bias: #bias, groups: #g })
        }
        LayerSpec::DwConv2d { spec, act: a, bias } => {
            let (spec, a) = (conv_spec(rt, &spec), act(rt, a));
            quote!(#rt::LayerSpec::DwConv2d { spec: #spec, act: #a, bias: #bias })
        }
        LayerSpec::SepConv2d {
            depthwise,
            pointwise,
            act: a,
            bias,
        } => {
            let (d, p, a) = (
                conv_spec(rt, &depthwise),
                conv_spec(rt, &pointwise),
                act(rt, a),
            );
            quote! {
                #rt::LayerSpec::SepConv2d { depthwise: #d, pointwise: #p, act: #a, bias: #bias }
            }
        }
        LayerSpec::Deconv2d { spec, act: a, bias } => {
            let (spec, a) = (conv_spec(rt, &spec), act(rt, a));
            quote!(#rt::LayerSpec::Deconv2d { spec: #spec, act: #a, bias: #bias })
        }
        LayerSpec::Pool2d(p) => {
            let kind = pool_kind(rt, p.kind);
            let [ih, iw, c, oh, ow] = [p.in_h, p.in_w, p.c, p.out_h, p.out_w].map(lit);
            let [ph, pw, sh, sw, pt, pl] = [p.ph, p.pw, p.sh, p.sw, p.pad_top, p.pad_left].map(lit);
            quote! {
                #rt::LayerSpec::Pool2d(#rt::Pool2dSpec {
                    kind: #kind, in_h: #ih, in_w: #iw, c: #c, out_h: #oh, out_w: #ow,
                    ph: #ph, pw: #pw, sh: #sh, sw: #sw, pad_top: #pt, pad_left: #pl,
                })
            }
        }
        LayerSpec::Flatten { len } => {
            let len = lit(len);
            quote!(#rt::LayerSpec::Flatten { len: #len })
        }
        LayerSpec::Dense { spec, act: a, bias } => {
            let a = act(rt, a);
            let (i, u) = (lit(spec.inputs), lit(spec.units));
            quote! {
                #rt::LayerSpec::Dense {
                    spec: #rt::DenseSpec { inputs: #i, units: #u }, act: #a, bias: #bias,
                }
            }
        }
        LayerSpec::Activation {
            act: a,
            len,
            channels,
        } => {
            let a = act(rt, a);
            let (len, ch) = (lit(len), lit(channels));
            quote!(#rt::LayerSpec::Activation { act: #a, len: #len, channels: #ch })
        }
        LayerSpec::BatchNorm(b) => {
            let (len, c) = (lit(b.len), lit(b.c));
            let (m, e) = (real(rt, b.momentum), real(rt, b.epsilon));
            let (scale, center) = (b.scale, b.center);
            quote! {
                #rt::LayerSpec::BatchNorm(#rt::BatchNormSpec {
                    len: #len, c: #c, momentum: #m, epsilon: #e, scale: #scale, center: #center,
                })
            }
        }
        LayerSpec::Dropout { rate, len } => {
            let (rate, len) = (real(rt, rate), lit(len));
            quote!(#rt::LayerSpec::Dropout { rate: #rate, len: #len })
        }
        LayerSpec::GlobalPool(g) => {
            let (kind, hw, c) = (pool_kind(rt, g.kind), lit(g.hw), lit(g.c));
            quote!(#rt::LayerSpec::GlobalPool(#rt::GlobalPoolSpec { kind: #kind, hw: #hw, c: #c }))
        }
        LayerSpec::ZeroPad(z) => {
            let [h, w, c, t, b, l, r] =
                [z.in_h, z.in_w, z.c, z.top, z.bottom, z.left, z.right].map(lit);
            quote! {
                #rt::LayerSpec::ZeroPad(#rt::ZeroPadSpec {
                    in_h: #h, in_w: #w, c: #c, top: #t, bottom: #b, left: #l, right: #r,
                })
            }
        }
        LayerSpec::Upsample(u) => {
            let [h, w, c, sh, sw] = [u.in_h, u.in_w, u.c, u.sh, u.sw].map(lit);
            let how = match u.interpolation {
                Interpolation::Nearest => quote!(#rt::Interpolation::Nearest),
                Interpolation::Bilinear => quote!(#rt::Interpolation::Bilinear),
            };
            quote! {
                #rt::LayerSpec::Upsample(#rt::UpsampleSpec {
                    in_h: #h, in_w: #w, c: #c, sh: #sh, sw: #sw, interpolation: #how,
                })
            }
        }
        LayerSpec::Augment(a) => {
            let [h, w, c] = [a.h, a.w, a.c].map(lit);
            let kind = match a.kind {
                Augment::Flip {
                    horizontal,
                    vertical,
                } => quote!(#rt::Augment::Flip { horizontal: #horizontal, vertical: #vertical }),
                Augment::Translate(fh, fw) => {
                    let (fh, fw) = (real(rt, fh), real(rt, fw));
                    quote!(#rt::Augment::Translate(#fh, #fw))
                }
                Augment::Rotate(f) => {
                    let f = real(rt, f);
                    quote!(#rt::Augment::Rotate(#f))
                }
                Augment::Zoom(f) => {
                    let f = real(rt, f);
                    quote!(#rt::Augment::Zoom(#f))
                }
            };
            quote!(#rt::LayerSpec::Augment(#rt::AugmentSpec { h: #h, w: #w, c: #c, kind: #kind }))
        }
        LayerSpec::Join(j) => {
            let kind = match j.kind {
                JoinKind::Add => quote!(#rt::JoinKind::Add),
                JoinKind::Concat => quote!(#rt::JoinKind::Concat),
            };
            let [n, hw, c] = [j.inputs, j.hw, j.c].map(lit);
            quote!(#rt::LayerSpec::Join(#rt::JoinSpec { kind: #kind, inputs: #n, hw: #hw, c: #c }))
        }
    }
}

/// `const Sk: Step = ...;`
pub(super) fn step_const(rt: &TokenStream, k: usize, s: &Step) -> TokenStream {
    let name = step_ident(k);
    let l = layer(rt, &s.layer);
    let [index, id, input, o0, o1, output, t0, t1, argmax, stats] = [
        s.index,
        s.id,
        s.input,
        s.operands.0,
        s.operands.1,
        s.output,
        s.tensors.0,
        s.tensors.1,
        s.argmax,
        s.stats,
    ]
    .map(lit);
    let acc = s.accumulate;
    let (fused, ndx, nbw, folded) = (s.fused_softmax, s.needs_dx, s.needs_backward, s.folded);
    let position = |p: Option<usize>| match p {
        Some(pos) => {
            let pos = lit(pos);
            quote!(::core::option::Option::Some(#pos))
        }
        None => quote!(::core::option::Option::None),
    };
    let (fold, fold_act) = (position(s.fold), position(s.fold_act));
    quote! {
        const #name: #rt::Step = #rt::Step {
            layer: #l,
            index: #index, id: #id, input: #input, accumulate: #acc, operands: (#o0, #o1),
            output: #output, tensors: (#t0, #t1), argmax: #argmax, stats: #stats,
            fused_softmax: #fused, needs_dx: #ndx, needs_backward: #nbw,
            fold: #fold, fold_act: #fold_act, folded: #folded,
        };
    }
}

fn tensor(rt: &TokenStream, t: &Tensor) -> TokenStream {
    let name = &*t.name;
    let shape: Vec<Literal> = t.shape.iter().map(|&d| lit(d)).collect();
    let (offset, len, trainable) = (lit(t.offset), lit(t.len), t.trainable);
    let init = match t.init {
        Init::GlorotUniform { fan_in, fan_out } => {
            let (fi, fo) = (lit(fan_in), lit(fan_out));
            quote!(#rt::Init::GlorotUniform { fan_in: #fi, fan_out: #fo })
        }
        Init::Zeros => quote!(#rt::Init::Zeros),
        Init::Ones => quote!(#rt::Init::Ones),
    };
    quote! {
        #rt::Tensor {
            name: ::std::borrow::Cow::Borrowed(#name),
            shape: ::std::borrow::Cow::Borrowed(&[#(#shape),*]),
            offset: #offset, len: #len, init: #init, trainable: #trainable,
        }
    }
}

/// The plan as a constant expression whose steps are `#owner::Sk`.
pub(super) fn plan_expr(rt: &TokenStream, owner: &Ident, p: &Plan) -> TokenStream {
    let [h, w, c] = p.input.map(lit);
    let out: Vec<Literal> = p.output_shape.iter().map(|&d| lit(d)).collect();
    let steps: Vec<TokenStream> = (0..p.steps.len())
        .map(|k| {
            let s = step_ident(k);
            quote!(#owner::#s)
        })
        .collect();
    let buffers: Vec<TokenStream> = p
        .buffers
        .iter()
        .map(|b| {
            let (len, off) = (lit(b.len), lit(b.offset));
            let place = match b.place {
                Some(p) => {
                    let (buffer, at, stride) = (lit(p.buffer), lit(p.at), lit(p.stride));
                    quote!(Some(#rt::plan::Place { buffer: #buffer, at: #at, stride: #stride }))
                }
                None => quote!(None),
            };
            quote!(#rt::plan::Buffer { len: #len, offset: #off, place: #place })
        })
        .collect();
    let tensors: Vec<TokenStream> = p.tensors.iter().map(|t| tensor(rt, t)).collect();
    let operands: Vec<TokenStream> = p
        .operands
        .iter()
        .map(|o| {
            let (b, acc) = (lit(o.buffer), o.accumulate);
            quote!(#rt::plan::Operand { buffer: #b, accumulate: #acc })
        })
        .collect();
    let [bt, at, st, dz, pt, fl, lg] = [
        p.buffer_total,
        p.argmax_total,
        p.stats_total,
        p.dz_len,
        p.param_total,
        p.flops,
        p.logits,
    ]
    .map(lit);
    let (eis, split) = (p.ends_in_softmax, p.split);
    quote! {
        #rt::Plan {
            input: [#h, #w, #c],
            output_shape: ::std::borrow::Cow::Borrowed(&[#(#out),*]),
            steps: ::std::borrow::Cow::Borrowed(&[#(#steps),*]),
            buffers: ::std::borrow::Cow::Borrowed(&[#(#buffers),*]),
            tensors: ::std::borrow::Cow::Borrowed(&[#(#tensors),*]),
            operands: ::std::borrow::Cow::Borrowed(&[#(#operands),*]),
            buffer_total: #bt, argmax_total: #at, stats_total: #st, dz_len: #dz, param_total: #pt,
            flops: #fl, logits: #lg, ends_in_softmax: #eis, split: #split,
        }
    }
}
