//! The code generator: a checked [`ir::Model`] becomes a specialized Rust struct
//! and its impl, as a [`proc_macro2::TokenStream`].
//!
//! The generated code does not implement kernels itself: it calls the runtime's
//! ops (`cnn_runtime::ops::*`, `loss`, `init`) with every shape, stride and padding
//! split written as a literal constant, so the optimizer sees fixed sizes and the
//! code never recomputes a shape. Buffers live in the struct and are sized once per
//! batch size (they grow when a larger batch comes), so a training step in steady
//! state allocates nothing.
//!
//! The generated code reaches the runtime through one path, [`Options::support_path`]
//! (by default `::cnn::__private`, a hidden module of the facade crate that
//! re-exports `cnn_runtime` as `runtime` and `ndarray`). The same code works from
//! the `cnn!` macro and from `cnnc build` output pulled in with `include!`, since
//! both are compiled in a crate that depends on `cnn`.
//!
//! What only generated code can exploit, every size being a constant:
//! * small models (the `SPLIT_MAX_*` rule below) split each batch across the
//!   cores once per pass: every part runs all layers on its own samples (its
//!   own slices of every buffer, its own scratch, private parameter gradients
//!   summed after the backward pass), so a training step synchronises the
//!   threads twice instead of once or twice per layer, and a sample's
//!   activations stay in its core's cache;
//! * inside those parts, layers that fit the fixed-size kernels of
//!   `cnn_runtime::ops::fixed` (the `FIXED_*` rule below) call them with their
//!   sizes as const generic arguments (fully unrolled channel loops).
//!
//! Buffer plan: buffer 0 holds a copy of the input batch; every layer except
//! `flatten` writes its post-activation output to a buffer of its own (`flatten` is a
//! no-op on NHWC row-major data, so its output *is* its input buffer). Each buffer has
//! a gradient twin. Activations are fused into the producing conv/dense call; when
//! the model ends in softmax, training runs the last layer without it and fuses the
//! softmax with the cross-entropy (log-softmax on the logits).

use crate::ir::{self, Activation, Op, Shape};
use crate::summary::thousands;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use std::fmt::Write as _;

/// Batch split rule: a model whose largest per-sample buffer holds at most this
/// many values (128 KiB, so one sample's layers stay in a core's L2 cache) ...
const SPLIT_MAX_SAMPLE_LEN: usize = 32 * 1024;
/// ... and whose parameters number at most this many (each extra part keeps a
/// private gradient copy) splits every batch across the cores once per pass:
/// each core runs all layers on its own samples, instead of every kernel
/// splitting its own work (one synchronisation per layer, cold caches). Larger
/// models keep the per-kernel parallelism, which also serves small batches.
/// Either way the pool decides the part count from the batch's FLOPs
/// (`parallel::parts_for`), so tiny batches run on one core.
const SPLIT_MAX_PARAMS: usize = 1 << 20;
/// Fixed-size kernels (`cnn_runtime::ops::fixed`, every size a const generic)
/// replace the dynamic ones in split models only, since they run on the
/// calling thread (each batch part on its core): average pools with stride =
/// window, no padding, at most 16 cells a window and 64 channels; and the
/// backward pass of stride-1, undilated, `valid` convolutions with at most
/// this many kernel values (`KH*KW*CIN*COUT`, whose transposed copy and tap
/// column live on the stack) and 64 output channels. Everything else keeps the
/// dynamic kernels.
const FIXED_MAX_TAPS: usize = 16 * 1024;
/// ... and at least this many multiply-adds a sample (`OH*OW*KH*KW*CIN*COUT`;
/// LeNet's second conv has 240,000). Below it the dynamic kernel is as fast,
/// and keeping it keeps tiny layers on the interpreter's exact summation
/// order (the fixed kernel sums pixels in another order, which differs from
/// the interpreter by rounding: about 1e-6 relative on a few dozen terms).
const FIXED_MIN_CONV_MACS: usize = 32 * 1024;
/// Most batch parts (the per-part state lives in a fixed-size array).
const MAX_PARTS: usize = 16;

/// How to generate code.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the support module the generated code calls into: it must
    /// re-export the runtime crate as `runtime` and `ndarray` as `ndarray`.
    pub support_path: String,
    /// Forces every generated struct public (`Some(true)`) or private
    /// (`Some(false)`); `None` follows the model (`pub model` or not).
    pub public: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            support_path: "::cnn::__private".to_string(),
            public: None,
        }
    }
}

/// Generates the struct and impl of every model, in order.
pub fn generate_all(models: &[ir::Model], opts: &Options) -> TokenStream {
    models.iter().map(|m| generate(m, opts)).collect()
}

/// Generates a block expression that defines the model's struct privately and
/// evaluates to `Name::new(0)` (the macro's expression form: an anonymous model
/// initialised with seed 0; call `reinit(seed)` for another seed).
pub fn generate_expr(model: &ir::Model, opts: &Options) -> TokenStream {
    let opts = Options {
        public: Some(true),
        ..opts.clone()
    };
    let items = generate(model, &opts);
    let name = format_ident!("{}", model.name);
    quote! {
        {
            #items
            #name::new(0)
        }
    }
}

/// Generates `struct Name { .. }` and its impl (inherent methods and
/// `impl Model`) for one checked model.
///
/// Never panics: an IR that breaks the checker's invariants (which the checker
/// does not produce) gives a `compile_error!` instead of code.
pub fn generate(model: &ir::Model, opts: &Options) -> TokenStream {
    match Generator::new(model, opts).and_then(|g| g.emit()) {
        Ok(ts) => ts,
        Err(msg) => {
            let msg = format!("cnn codegen: {msg}");
            quote! { ::core::compile_error!(#msg); }
        }
    }
}

/// Formats generated tokens as Rust source (prettyplease), with a header comment.
pub fn to_source(tokens: &TokenStream) -> Result<String, String> {
    let file: syn::File =
        syn::parse2(tokens.clone()).map_err(|e| format!("generated code does not parse: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// One layer and the buffers it reads and writes.
struct LayerPlan<'a> {
    layer: &'a ir::Layer,
    /// Buffer holding this layer's input.
    inb: usize,
    /// Buffer holding this layer's (post-activation) output.
    outb: usize,
}

struct Generator<'a> {
    model: &'a ir::Model,
    opts: &'a Options,
    plan: Vec<LayerPlan<'a>>,
    /// Per-sample length of each buffer (0 = the input copy).
    buf_len: Vec<usize>,
    /// Position of the first layer with parameters (layers before it need no
    /// backward pass unless the input gradient is asked for).
    first_param: usize,
    /// Per-sample length of the pre-activation gradient scratch.
    dz_len: usize,
}

fn lit(n: usize) -> Literal {
    Literal::usize_suffixed(n)
}

fn channels(shape: Shape) -> usize {
    match shape {
        Shape::Image { c, .. } => c,
        Shape::Vector { n } => n,
    }
}

fn image(shape: Shape, what: &str) -> Result<(usize, usize, usize), String> {
    match shape {
        Shape::Image { h, w, c } => Ok((h, w, c)),
        Shape::Vector { n } => Err(format!(
            "{what} has a vector shape of {n} where an image is needed"
        )),
    }
}

impl<'a> Generator<'a> {
    fn new(model: &'a ir::Model, opts: &'a Options) -> Result<Self, String> {
        if syn::parse_str::<syn::Ident>(&model.name).is_err() {
            return Err(format!(
                "model name `{}` is not a Rust identifier",
                model.name
            ));
        }
        let mut buf_len = vec![model.input.len()];
        let mut plan = Vec::with_capacity(model.layers.len());
        let mut cur = 0usize;
        let mut prev_out = model.input;
        let mut dz_len = 0usize;
        let mut first_param = model.layers.len();
        for (pos, layer) in model.layers.iter().enumerate() {
            if layer.input != prev_out {
                return Err(format!(
                    "layer {} input {} differs from the previous output {}",
                    layer.index, layer.input, prev_out
                ));
            }
            if layer.input.is_empty() || layer.output.is_empty() {
                return Err(format!("layer {} has an empty shape", layer.index));
            }
            prev_out = layer.output;
            let inb = cur;
            let outb = match layer.op {
                Op::Flatten => {
                    if layer.input.len() != layer.output.len() {
                        return Err("flatten changes the number of values".into());
                    }
                    cur
                }
                _ => {
                    buf_len.push(layer.output.len());
                    buf_len.len() - 1
                }
            };
            cur = outb;
            if matches!(layer.op, Op::Conv(_) | Op::Dense(_)) {
                first_param = first_param.min(pos);
                let act = layer.op.activation().unwrap_or(Activation::Linear);
                let last = pos + 1 == model.layers.len();
                if act != Activation::Linear || last {
                    dz_len = dz_len.max(layer.output.len());
                }
                if layer.params.is_none() {
                    return Err(format!("layer {} has no parameter shapes", layer.index));
                }
            }
            plan.push(LayerPlan { layer, inb, outb });
        }
        Ok(Generator {
            model,
            opts,
            plan,
            buf_len,
            first_param,
            dz_len,
        })
    }

    fn out_buf(&self) -> usize {
        self.plan.last().map_or(0, |p| p.outb)
    }

    fn ends_in_softmax(&self) -> bool {
        self.model.layers.last().and_then(|l| l.op.activation()) == Some(Activation::Softmax)
    }

    fn act_tokens(&self, a: Activation) -> TokenStream {
        let rt = self.rt();
        match a {
            Activation::Linear => quote!(#rt::Activation::Linear),
            Activation::Relu => quote!(#rt::Activation::Relu),
            Activation::Sigmoid => quote!(#rt::Activation::Sigmoid),
            Activation::Tanh => quote!(#rt::Activation::Tanh),
            Activation::Softmax => quote!(#rt::Activation::Softmax),
        }
    }

    fn support(&self) -> TokenStream {
        match syn::parse_str::<syn::Path>(&self.opts.support_path) {
            Ok(p) => quote!(#p),
            Err(_) => quote!(::cnn::__private),
        }
    }

    fn rt(&self) -> TokenStream {
        let sp = self.support();
        quote!(#sp::runtime)
    }

    fn buf(i: usize) -> proc_macro2::Ident {
        format_ident!("buf{}", i)
    }
    fn dbuf(i: usize) -> proc_macro2::Ident {
        format_ident!("dbuf{}", i)
    }

    /// `self.bufN[..b * LEN]`
    fn slice(&self, i: usize) -> TokenStream {
        let f = Self::buf(i);
        let n = lit(self.buf_len[i]);
        quote!(self.#f[..b * #n])
    }
    /// `st.bufN[..b * LEN]`: the buffer's slice inside one batch part (`st`, a
    /// `__NamePart` holding that part's samples; `b` is the part's batch).
    fn pslice(&self, i: usize) -> TokenStream {
        let f = Self::buf(i);
        let n = lit(self.buf_len[i]);
        quote!(st.#f[..b * #n])
    }
    fn pdslice(&self, i: usize) -> TokenStream {
        let f = Self::dbuf(i);
        let n = lit(self.buf_len[i]);
        quote!(st.#f[..b * #n])
    }
    fn dslice(&self, i: usize) -> TokenStream {
        let f = Self::dbuf(i);
        let n = lit(self.buf_len[i]);
        quote!(self.#f[..b * #n])
    }

    /// The `const Lk: Spec = ...;` of a layer, if it has one.
    fn spec_const(&self, p: &LayerPlan) -> Result<TokenStream, String> {
        let rt = self.rt();
        let l = p.layer;
        let name = format_ident!("L{}", l.index);
        Ok(match &l.op {
            Op::Conv(c) => {
                let (ih, iw, ic) = image(l.input, "conv input")?;
                let (oh, ow, oc) = image(l.output, "conv output")?;
                let [kh, kw] = c.kernel.map(lit);
                let [sh, sw] = c.stride.map(lit);
                let [dh, dw] = c.dilation.map(lit);
                let (ih, iw, ic, oh, ow, oc) =
                    (lit(ih), lit(iw), lit(ic), lit(oh), lit(ow), lit(oc));
                let (pt, pl) = (lit(c.pad.top), lit(c.pad.left));
                quote! {
                    const #name: #rt::Conv2dSpec = #rt::Conv2dSpec {
                        in_h: #ih, in_w: #iw, in_c: #ic, out_h: #oh, out_w: #ow, out_c: #oc,
                        kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw,
                        pad_top: #pt, pad_left: #pl,
                    };
                }
            }
            Op::Pool(pl) => {
                let (ih, iw, ic) = image(l.input, "pool input")?;
                let (oh, ow, oc) = image(l.output, "pool output")?;
                if ic != oc {
                    return Err("pool changes the channel count".into());
                }
                let kind = match pl.kind {
                    ir::PoolKind::Max => quote!(#rt::PoolKind::Max),
                    ir::PoolKind::Avg => quote!(#rt::PoolKind::Avg),
                    ir::PoolKind::Min => quote!(#rt::PoolKind::Min),
                };
                let [ph, pw] = pl.window.map(lit);
                let [sh, sw] = pl.stride.map(lit);
                let (ih, iw, ic, oh, ow) = (lit(ih), lit(iw), lit(ic), lit(oh), lit(ow));
                let (pt, pleft) = (lit(pl.pad.top), lit(pl.pad.left));
                quote! {
                    const #name: #rt::Pool2dSpec = #rt::Pool2dSpec {
                        kind: #kind, in_h: #ih, in_w: #iw, c: #ic, out_h: #oh, out_w: #ow,
                        ph: #ph, pw: #pw, sh: #sh, sw: #sw, pad_top: #pt, pad_left: #pleft,
                    };
                }
            }
            Op::Dense(d) => {
                let inputs = match l.input {
                    Shape::Vector { n } => n,
                    Shape::Image { .. } => return Err("dense on an image".into()),
                };
                if l.output.len() != d.units {
                    return Err("dense output differs from its units".into());
                }
                let (i, u) = (lit(inputs), lit(d.units));
                quote! {
                    const #name: #rt::DenseSpec = #rt::DenseSpec { inputs: #i, units: #u };
                }
            }
            Op::Flatten | Op::Activation(_) => quote!(),
        })
    }

    /// Forward code of one layer. `logits` (a bool in scope) leaves the final
    /// softmax out (training with the fused cross-entropy).
    fn forward_layer(&self, pos: usize, p: &LayerPlan) -> TokenStream {
        let rt = self.rt();
        let ops = quote!(#rt::ops);
        let l = p.layer;
        let name = format_ident!("L{}", l.index);
        let last = pos + 1 == self.plan.len();
        let x = self.pslice(p.inb);
        let y = self.pslice(p.outb);
        let act_of = |a: Activation| {
            let t = self.act_tokens(a);
            if last && a == Activation::Softmax {
                let lin = self.act_tokens(Activation::Linear);
                quote!(if logits { #lin } else { #t })
            } else {
                t
            }
        };
        match &l.op {
            Op::Conv(c) => {
                let act = act_of(c.activation);
                let (k, bias) = (
                    format_ident!("w{}_k", l.index),
                    format_ident!("w{}_b", l.index),
                );
                quote! {
                    #ops::conv2d::conv2d_forward(&Self::#name, #act, b, &#x, &st.#k, &st.#bias, &mut #y, &mut *st.scratch);
                }
            }
            Op::Dense(d) => {
                let act = act_of(d.activation);
                let (k, bias) = (
                    format_ident!("w{}_k", l.index),
                    format_ident!("w{}_b", l.index),
                );
                quote! {
                    #ops::dense::dense_forward(&Self::#name, #act, b, &#x, &st.#k, &st.#bias, &mut #y);
                }
            }
            Op::Pool(pl) => {
                let arg = if pl.kind == ir::PoolKind::Avg {
                    quote!(&mut [])
                } else {
                    let f = format_ident!("arg{}", l.index);
                    let n = lit(l.output.len());
                    quote!(&mut st.#f[..b * #n])
                };
                if let Some(g) = self.fixed_avgpool(l) {
                    return quote! {
                        #ops::fixed::avgpool_forward::<#g>(b, &#x, &mut #y);
                    };
                }
                quote! {
                    #ops::pool2d::pool2d_forward(&Self::#name, b, &#x, &mut #y, #arg);
                }
            }
            Op::Flatten => quote!(),
            Op::Activation(a) => {
                let act = self.act_tokens(*a);
                let ch = lit(channels(l.output));
                let call = quote! {
                    #ops::activation::activation_forward(#act, #ch, &#x, &mut #y);
                };
                if last && *a == Activation::Softmax {
                    // Training keeps the logits (this layer's input) for the fused loss.
                    quote!(if !logits { #call })
                } else {
                    call
                }
            }
        }
    }

    /// Backward code of one layer: from the gradient of its output (`dbuf[outb]`)
    /// to its parameter gradients and the gradient of its input (`dbuf[inb]`).
    /// In scope: `b`, `ce` (the fused softmax cross-entropy already wrote the last
    /// layer's dz / dlogits) and `input_grad` (compute dL/dx too).
    fn backward_layer(&self, pos: usize, p: &LayerPlan) -> TokenStream {
        let rt = self.rt();
        let ops = quote!(#rt::ops);
        let l = p.layer;
        let name = format_ident!("L{}", l.index);
        let last = pos + 1 == self.plan.len();
        let x = self.pslice(p.inb);
        let y = self.pslice(p.outb);
        let dy = self.pdslice(p.outb);
        let dx_slice = self.pdslice(p.inb);
        // dL/d(input) is needed by the layers below, unless none of them (nor the
        // caller) wants it.
        let dx_opt = if pos > self.first_param {
            quote!(Some(&mut #dx_slice))
        } else {
            quote!(if input_grad { Some(&mut #dx_slice) } else { None })
        };
        let n_out = lit(l.output.len());
        let dz = quote!(st.dz[..b * #n_out]);
        let block = match &l.op {
            Op::Conv(_) | Op::Dense(_) => {
                let act = l.op.activation().unwrap_or(Activation::Linear);
                let ch = lit(channels(l.output));
                let acttok = self.act_tokens(act);
                let (dz_src, pre) = if act == Activation::Linear {
                    // dL/dz = dL/dy: no activation to go through.
                    (quote!(&#dy), quote!())
                } else {
                    let bw = quote! {
                        #ops::activation::activation_backward(#acttok, #ch, &#y, &#dy, &mut #dz);
                    };
                    if last && act == Activation::Softmax {
                        // The fused loss wrote dlogits into the output's gradient
                        // buffer (laid out per sample like every batch part sees it).
                        (quote!(if ce { &#dy } else { &#dz }), quote!(if !ce { #bw }))
                    } else {
                        (quote!(&#dz), bw)
                    }
                };
                let (k, gk, gb) = (
                    format_ident!("w{}_k", l.index),
                    format_ident!("g{}_k", l.index),
                    format_ident!("g{}_b", l.index),
                );
                let call = match &l.op {
                    Op::Conv(_) if self.fixed_conv_backward(l).is_some() => {
                        let g = self.fixed_conv_backward(l);
                        quote! {
                            #ops::fixed::conv_valid_backward::<#g>(b, &#x, &st.#k, #dz_src, #dx_opt, &mut st.#gk, &mut st.#gb);
                        }
                    }
                    Op::Conv(_) => quote! {
                        #ops::conv2d::conv2d_backward(&Self::#name, b, &#x, &st.#k, #dz_src, #dx_opt, &mut st.#gk, &mut st.#gb, &mut *st.scratch);
                    },
                    _ => quote! {
                        #ops::dense::dense_backward(&Self::#name, b, &#x, &st.#k, #dz_src, #dx_opt, &mut st.#gk, &mut st.#gb);
                    },
                };
                quote!(#pre #call)
            }
            Op::Pool(pl) => {
                let arg = if pl.kind == ir::PoolKind::Avg {
                    quote!(&[])
                } else {
                    let f = format_ident!("arg{}", l.index);
                    quote!(&st.#f[..b * #n_out])
                };
                match self.fixed_avgpool(l) {
                    Some(g) => quote! {
                        #ops::fixed::avgpool_backward::<#g>(b, &#dy, &mut #dx_slice);
                    },
                    None => quote! {
                        #ops::pool2d::pool2d_backward(&Self::#name, b, &#dy, #arg, &mut #dx_slice);
                    },
                }
            }
            Op::Flatten => return quote!(),
            Op::Activation(a) => {
                let act = self.act_tokens(*a);
                let ch = lit(channels(l.output));
                let call = quote! {
                    #ops::activation::activation_backward(#act, #ch, &#y, &#dy, &mut #dx_slice);
                };
                if last && *a == Activation::Softmax {
                    quote!(if !ce { #call })
                } else {
                    call
                }
            }
        };
        if pos < self.first_param {
            quote!(if input_grad { #block })
        } else {
            block
        }
    }

    /// Whether batches are split across the cores once per pass (see
    /// [`SPLIT_MAX_SAMPLE_LEN`]).
    fn split(&self) -> bool {
        let max_sample = self
            .buf_len
            .iter()
            .copied()
            .chain([self.dz_len])
            .max()
            .unwrap_or(1);
        max_sample <= SPLIT_MAX_SAMPLE_LEN && self.model.total_params <= SPLIT_MAX_PARAMS as u64
    }

    /// The const generic arguments `IH, IW, C, PH, PW` of the fixed average
    /// pool, when it applies (the `FIXED_*` rule below).
    fn fixed_avgpool(&self, l: &ir::Layer) -> Option<TokenStream> {
        let Op::Pool(p) = &l.op else { return None };
        let (ih, iw, c) = image(l.input, "").ok()?;
        let (oh, ow, _) = image(l.output, "").ok()?;
        let plain = p.kind == ir::PoolKind::Avg
            && p.stride == p.window
            && p.pad.top == 0
            && p.pad.left == 0
            && oh == ih / p.window[0]
            && ow == iw / p.window[1];
        if !self.split() || !plain || p.window[0] * p.window[1] > 16 || c > 64 {
            return None;
        }
        let [ih, iw, c, ph, pw] = [ih, iw, c, p.window[0], p.window[1]].map(lit);
        Some(quote!(#ih, #iw, #c, #ph, #pw))
    }

    /// The const generic arguments `IH, IW, CIN, KH, KW, COUT, KK, KC` of the
    /// fixed convolution backward pass, when it applies (the `FIXED_*` rule below).
    fn fixed_conv_backward(&self, l: &ir::Layer) -> Option<TokenStream> {
        let Op::Conv(c) = &l.op else { return None };
        let (ih, iw, cin) = image(l.input, "").ok()?;
        let (oh, ow, cout) = image(l.output, "").ok()?;
        let [kh, kw] = c.kernel;
        let kk = kh * kw * cin;
        let valid = c.stride == [1, 1]
            && c.dilation == [1, 1]
            && c.pad.top == 0
            && c.pad.left == 0
            && kh <= ih
            && kw <= iw
            && oh == ih - kh + 1
            && ow == iw - kw + 1;
        let macs = oh * ow * kk * cout;
        if !self.split()
            || !valid
            || kk * cout > FIXED_MAX_TAPS
            || cout > 64
            || macs < FIXED_MIN_CONV_MACS
        {
            return None;
        }
        let g = [ih, iw, cin, kh, kw, cout, kk, kk * cout].map(lit);
        Some(quote!(#(#g),*))
    }

    fn emit(&self) -> Result<TokenStream, String> {
        let sp = self.support();
        let rt = self.rt();
        let nd = quote!(#sp::ndarray);
        let m = self.model;
        let name = format_ident!("{}", m.name);
        let public = self.opts.public.unwrap_or(m.public);
        let vis = if public { quote!(pub) } else { quote!() };
        let (ih, iw, ic) = image(m.input, "the model input")?;
        let (ih_l, iw_l, ic_l) = (lit(ih), lit(iw), lit(ic));
        let in_len = lit(m.input.len());
        let out = m.output();
        let out_len = self.buf_len[self.out_buf()];
        let out_len_l = lit(out_len);
        let out_dims: Vec<Literal> = out.dims().into_iter().map(lit).collect();
        let out_rank = lit(out_dims.len());
        let ends_softmax = self.ends_in_softmax();
        let nbuf = self.buf_len.len();
        let out_b = self.out_buf();
        let out_buf_f = Self::buf(out_b);
        let out_dbuf_f = Self::dbuf(out_b);

        // --- fields and their initialisers / growth ---
        let bufs: Vec<_> = (0..nbuf).map(Self::buf).collect();
        let dbufs: Vec<_> = (0..nbuf).map(Self::dbuf).collect();
        let buf_lens: Vec<Literal> = self.buf_len.iter().map(|&n| lit(n)).collect();
        let mut param_fields = Vec::new();
        let mut param_init = Vec::new();
        let mut reinit = Vec::new();
        let mut params_list = Vec::new();
        let mut params_mut_list = Vec::new();
        let mut grads_list = Vec::new();
        let mut updates = Vec::new();
        let mut slot = 0usize;
        let mut arg_fields = Vec::new();
        let mut arg_lens = Vec::new();
        let mut arg_grow = Vec::new();
        // Weight and gradient tensors in parameter order, with their lengths.
        let mut wnames = Vec::new();
        let mut gnames = Vec::new();
        let mut glens = Vec::new();
        for p in &self.plan {
            let l = p.layer;
            if let Op::Pool(pl) = &l.op {
                if pl.kind != ir::PoolKind::Avg {
                    let f = format_ident!("arg{}", l.index);
                    let n = lit(l.output.len());
                    arg_fields.push(f.clone());
                    arg_lens.push(n.clone());
                    arg_grow.push(quote!(self.#f.resize(b * #n, 0);));
                }
            }
            let Some(ps) = &l.params else { continue };
            let kn: usize = ps.kernel.iter().product();
            let bn: usize = ps.bias.iter().product();
            let (k, bias) = (
                format_ident!("w{}_k", l.index),
                format_ident!("w{}_b", l.index),
            );
            let (gk, gb) = (
                format_ident!("g{}_k", l.index),
                format_ident!("g{}_b", l.index),
            );
            param_fields.extend([k.clone(), bias.clone(), gk.clone(), gb.clone()]);
            wnames.extend([k.clone(), bias.clone()]);
            gnames.extend([gk.clone(), gb.clone()]);
            glens.extend([kn, bn]);
            let (kn_l, bn_l) = (lit(kn), lit(bn));
            param_init.push(quote! {
                #k: ::std::vec![0.0f32; #kn_l], #bias: ::std::vec![0.0f32; #bn_l],
                #gk: ::std::vec![0.0f32; #kn_l], #gb: ::std::vec![0.0f32; #bn_l],
            });
            // Keras's Glorot-uniform fans: conv (KH*KW*CIN, KH*KW*COUT), dense (IN, OUT).
            let (fan_in, fan_out) = match &l.op {
                Op::Conv(c) => {
                    let (_, _, cin) = image(l.input, "conv input")?;
                    let rf = c.kernel[0] * c.kernel[1];
                    (rf * cin, rf * c.filters)
                }
                Op::Dense(d) => (l.input.len(), d.units),
                _ => return Err("parameters on a layer without weights".into()),
            };
            let (fi, fo) = (lit(fan_in), lit(fan_out));
            reinit.push(quote! {
                #rt::init::glorot_uniform(&mut rng, #fi, #fo, &mut self.#k);
                self.#bias.fill(0.0);
            });
            let kname = format!("layer{}.kernel", l.index);
            let bname = format!("layer{}.bias", l.index);
            let kshape: Vec<Literal> = ps.kernel.iter().map(|&d| lit(d)).collect();
            let bshape: Vec<Literal> = ps.bias.iter().map(|&d| lit(d)).collect();
            params_list.push(quote! {
                #rt::Param { name: ::std::string::String::from(#kname), shape: ::std::vec![#(#kshape),*], data: &self.#k },
                #rt::Param { name: ::std::string::String::from(#bname), shape: ::std::vec![#(#bshape),*], data: &self.#bias },
            });
            params_mut_list.push(quote! {
                #rt::ParamMut { name: ::std::string::String::from(#kname), shape: ::std::vec![#(#kshape),*], data: &mut self.#k },
                #rt::ParamMut { name: ::std::string::String::from(#bname), shape: ::std::vec![#(#bshape),*], data: &mut self.#bias },
            });
            grads_list.push(quote! {
                #rt::Param { name: ::std::string::String::from(#kname), shape: ::std::vec![#(#kshape),*], data: &self.#gk },
                #rt::Param { name: ::std::string::String::from(#bname), shape: ::std::vec![#(#bshape),*], data: &self.#gb },
            });
            let (s0, s1) = (lit(slot), lit(slot + 1));
            slot += 2;
            updates.push(quote! {
                opt.update(#s0, &mut self.#k, &self.#gk);
                opt.update(#s1, &mut self.#bias, &self.#gb);
            });
        }
        let dz_len = lit(self.dz_len);
        let layer_arms: Vec<TokenStream> = self
            .plan
            .iter()
            .map(|p| {
                let i = lit(p.layer.index);
                let f = Self::buf(p.outb);
                let n = lit(self.buf_len[p.outb]);
                quote!(#i => (&self.#f, #n),)
            })
            .collect();
        let max_len = lit(self
            .buf_len
            .iter()
            .copied()
            .chain([self.dz_len])
            .max()
            .unwrap_or(1));
        // --- batch split: every part runs all layers on its own samples ---
        let grad_total: usize = glens.iter().sum();
        let split = self.split();
        let part_name = format_ident!("__{}Part", m.name);
        let grad_total_l = lit(grad_total);
        let flops_l = lit(usize::try_from(m.total_flops).unwrap_or(usize::MAX).max(1));
        let max_parts = lit(MAX_PARTS);
        let part_fields = quote! {
            #( #bufs: &'a mut [f32], )*
            #( #dbufs: &'a mut [f32], )*
            dz: &'a mut [f32],
            #( #arg_fields: &'a mut [u32], )*
            scratch: &'a mut #rt::ops::conv2d::Conv2dScratch,
            #( #wnames: &'a [f32], )*
            #( #gnames: &'a mut [f32], )*
        };
        // Per part: cut its samples off the front of every remaining buffer.
        let glens_l: Vec<Literal> = glens.iter().map(|&n| lit(n)).collect();
        let rbufs: Vec<_> = bufs.iter().map(|i| format_ident!("r_{}", i)).collect();
        let rdbufs: Vec<_> = dbufs.iter().map(|i| format_ident!("r_{}", i)).collect();
        let rargs: Vec<_> = arg_fields
            .iter()
            .map(|i| format_ident!("r_{}", i))
            .collect();
        let rgrads: Vec<_> = gnames.iter().map(|i| format_ident!("r_{}", i)).collect();
        let part_take = quote! {
            let nb = #rt::ops::parallel::split(b, parts, t).len();
            #(
                let (#bufs, rest) = ::core::mem::take(&mut #rbufs).split_at_mut(nb * #buf_lens);
                #rbufs = rest;
            )*
            #(
                let (#dbufs, rest) = ::core::mem::take(&mut #rdbufs).split_at_mut(if grad { nb * #buf_lens } else { 0 });
                #rdbufs = rest;
            )*
            let (dz, rest) = ::core::mem::take(&mut r_dz).split_at_mut(if grad { nb * #dz_len } else { 0 });
            r_dz = rest;
            #(
                let (#arg_fields, rest) = ::core::mem::take(&mut #rargs).split_at_mut(nb * #arg_lens);
                #rargs = rest;
            )*
            // Part 0 writes the model's gradients, the others a private copy (summed after).
            let mut own: &mut [f32] = if grad && t > 0 {
                let (h, rest) = ::core::mem::take(&mut r_gpart).split_at_mut(#grad_total_l);
                r_gpart = rest;
                h
            } else {
                &mut []
            };
            #(
                let #gnames: &mut [f32] = if !grad {
                    &mut []
                } else if t == 0 {
                    ::core::mem::take(&mut #rgrads)
                } else {
                    let (h, rest) = ::core::mem::take(&mut own).split_at_mut(#glens_l);
                    own = rest;
                    h
                };
            )*
            match scratches.next() {
                Some(scratch) => ::std::sync::Mutex::new(::core::option::Option::Some((nb, #part_name {
                    #( #bufs, )*
                    #( #dbufs, )*
                    dz,
                    #( #arg_fields, )*
                    scratch,
                    #( #wnames: &self.#wnames, )*
                    #( #gnames, )*
                }))),
                None => ::std::sync::Mutex::new(::core::option::Option::None),
            }
        };
        let part_init = quote! {
            #( let mut #rbufs: &mut [f32] = &mut self.#bufs[..b * #buf_lens]; )*
            #( let mut #rdbufs: &mut [f32] = if grad { &mut self.#dbufs[..b * #buf_lens] } else { &mut [] }; )*
            let mut r_dz: &mut [f32] = if grad { &mut self.dz[..b * #dz_len] } else { &mut [] };
            #( let mut #rargs: &mut [u32] = &mut self.#arg_fields[..b * #arg_lens]; )*
            #( let mut #rgrads: &mut [f32] = &mut self.#gnames; )*
            let mut r_gpart: &mut [f32] = if grad && parts > 1 {
                &mut self.gpart[..(parts - 1) * #grad_total_l]
            } else {
                &mut []
            };
            let mut scratches = self.conv_scratch.iter_mut();
        };
        // After a split backward: add the parts' private gradients to part 0's.
        let mut reduce = Vec::new();
        let mut off = 0usize;
        for (g, &n) in gnames.iter().zip(&glens) {
            let (o, n_l) = (lit(off), lit(n));
            reduce.push(quote! {
                for (d, v) in self.#g.iter_mut().zip(&self.gpart[base + #o..base + #o + #n_l]) {
                    *d += v;
                }
            });
            off += n;
        }
        let specs = self
            .plan
            .iter()
            .map(|p| self.spec_const(p))
            .collect::<Result<Vec<_>, _>>()?;
        let fwd: Vec<TokenStream> = self
            .plan
            .iter()
            .enumerate()
            .map(|(i, p)| self.forward_layer(i, p))
            .collect();
        let bwd: Vec<TokenStream> = self
            .plan
            .iter()
            .enumerate()
            .rev()
            .map(|(i, p)| self.backward_layer(i, p))
            .collect();

        // --- the loss: where the logits are and where dlogits go ---
        let out_is_vector = matches!(out, Shape::Vector { .. });
        let last_op = m.layers.last().map(|l| &l.op);
        let (logits_slice, dlogits_slice) = match last_op {
            Some(Op::Activation(Activation::Softmax)) => {
                let p = self.plan.last().ok_or("no layers")?;
                (self.slice(p.inb), self.dslice(p.inb))
            }
            _ => (self.slice(out_b), self.dslice(out_b)),
        };
        // After the fused loss, apply the softmax the training forward left out, so
        // that the output buffer holds this step's probabilities (`last_output`).
        let finish_softmax = match (last_op, self.plan.last()) {
            (Some(Op::Activation(Activation::Softmax)), Some(p)) => {
                let (x, y) = (self.slice(p.inb), self.slice(p.outb));
                let ch = lit(channels(out));
                quote!(#rt::ops::activation::activation_forward(#rt::Activation::Softmax, #ch, &#x, &mut #y);)
            }
            (Some(Op::Conv(_) | Op::Dense(_)), Some(p)) if ends_softmax => {
                let y = self.slice(p.outb);
                let ch = lit(channels(out));
                quote!(#rt::ops::activation::activation_forward_inplace(#rt::Activation::Softmax, #ch, &mut #y);)
            }
            _ => quote!(),
        };
        let train_body = if out_is_vector {
            quote! {
                let b = self.__load_input(&x)?;
                if labels.len() != b {
                    return Err(#rt::Error::Labels(::std::format!(
                        "{} labels for a batch of {}", labels.len(), b)));
                }
                self.__reserve_grad(b)?;
                self.__forward(b, true);
                // The output buffer holds logits until `finish_softmax` below.
                self.fwd_batch = 0;
                    self.dx_batch = 0;
                let loss = #rt::loss::SoftmaxCrossEntropy::forward_backward(
                    &#logits_slice, #out_len_l, labels, &mut #dlogits_slice)?;
                if !loss.is_finite() {
                    return Err(#rt::Error::NonFinite(::std::format!("training loss {}", loss)));
                }
                self.__backward(b, true, false);
                #finish_softmax
                self.fwd_batch = b;
                opt.begin_step();
                #(#updates)*
                Ok(loss)
            }
        } else {
            let msg = format!(
                "train_step needs a model with a vector output (classes); {} ends on an image {}",
                m.name, out
            );
            quote! {
                let _ = (x, labels, opt);
                Err(#rt::Error::Invalid(::std::string::String::from(#msg)))
            }
        };

        let (forward_ret, forward_conv) = if let Shape::Image { h, w, c } = out {
            let (h, w, c) = (lit(h), lit(w), lit(c));
            (
                quote!(#nd::Array4<f32>),
                quote! {
                    let y = self.forward_view(x)?;
                    let b = y.nrows();
                    y.to_owned().into_shape_with_order((b, #h, #w, #c))
                        .map_err(|e| #rt::Error::Invalid(::std::format!("{}", e)))
                },
            )
        } else {
            (
                quote!(#nd::Array2<f32>),
                quote!(Ok(self.forward_view(x)?.to_owned())),
            )
        };

        let summary = summary_text(m);
        let doc = format!(
            "The `{}` model, generated by the cnn compiler: input {}, output {}, {} parameters.\n\n```text\n{}```",
            m.name, m.input, out, m.total_params, summary
        );
        let total_params = m.total_params;
        let total_flops = m.total_flops;
        let n_params = lit(slot);

        Ok(quote! {
            #[doc = #doc]
            #[allow(dead_code, non_snake_case, clippy::all)]
            #vis struct #name {
                #( #param_fields: ::std::vec::Vec<f32>, )*
                #( #bufs: ::std::vec::Vec<f32>, )*
                #( #dbufs: ::std::vec::Vec<f32>, )*
                #( #arg_fields: ::std::vec::Vec<u32>, )*
                dz: ::std::vec::Vec<f32>,
                /// Convolution buffers, one set per batch part.
                conv_scratch: ::std::vec::Vec<#rt::ops::conv2d::Conv2dScratch>,
                /// Private parameter gradients of batch parts 1.. (see `__run_parts`).
                gpart: ::std::vec::Vec<f32>,
                /// Batch size the forward buffers are sized for.
                cap: usize,
                /// Batch size the gradient buffers are sized for.
                grad_cap: usize,
                /// Batch of the last `forward` (0: none, or the state was consumed).
                fwd_batch: usize,
                /// Batch of the input gradient in `dbuf0` (0: none; `train_step` skips it).
                dx_batch: usize,
            }

            /// One batch part's view of the model: its samples of every buffer, the
            /// shared weights and the gradients it writes.
            #[doc(hidden)]
            #[allow(dead_code, non_snake_case, non_camel_case_types, clippy::all)]
            struct #part_name<'a> {
                #part_fields
            }

            #[allow(dead_code, non_snake_case, clippy::all, unused_variables, unused_mut, unreachable_code)]
            impl #name {
                /// Per-sample input shape `[H, W, C]`.
                pub const INPUT_SHAPE: [usize; 3] = [#ih_l, #iw_l, #ic_l];
                /// Per-sample output shape (`[N]` or `[H, W, C]`).
                pub const OUTPUT_SHAPE: [usize; #out_rank] = [#(#out_dims),*];
                /// Whether the last layer applies softmax (fused with the cross-entropy in training).
                pub const ENDS_IN_SOFTMAX: bool = #ends_softmax;
                /// Number of parameters (kernels and biases).
                pub const TOTAL_PARAMS: u64 = #total_params;
                /// Forward FLOPs per sample.
                pub const TOTAL_FLOPS: u64 = #total_flops;
                /// Number of parameter tensors (optimizer slots).
                pub const PARAM_TENSORS: usize = #n_params;
                const SUMMARY: &'static str = #summary;
                /// Whether batches are split across cores once per pass (small models).
                const __SPLIT: bool = #split;
                #(#specs)*

                /// A model with Keras's default initialisation (Glorot-uniform kernels,
                /// zero biases), drawn from one RNG seeded with `seed`, in layer order.
                pub fn new(seed: u64) -> Self {
                    let mut m = #name {
                        #(#param_init)*
                        #( #bufs: ::std::vec::Vec::new(), )*
                        #( #dbufs: ::std::vec::Vec::new(), )*
                        #( #arg_fields: ::std::vec::Vec::new(), )*
                        dz: ::std::vec::Vec::new(),
                        conv_scratch: (0..#max_parts).map(|_| ::core::default::Default::default()).collect(),
                        gpart: ::std::vec::Vec::new(),
                        cap: 0,
                        grad_cap: 0,
                        fwd_batch: 0,
                        dx_batch: 0,
                    };
                    m.reinit(seed);
                    m
                }

                /// Draws fresh weights for `seed`, exactly as `new(seed)` does.
                pub fn reinit(&mut self, seed: u64) {
                    let mut rng = #rt::init::model_rng(seed);
                    #(#reinit)*
                    self.fwd_batch = 0;
                    self.dx_batch = 0;
                }

                /// A Keras-style table: layers, output shapes, parameters, FLOPs.
                pub fn summary() -> &'static str {
                    Self::SUMMARY
                }

                fn __check_batch(b: usize) -> #rt::Result<()> {
                    if b == 0 {
                        return Err(#rt::Error::Invalid(::std::string::String::from("empty batch")));
                    }
                    // Every buffer length below is b * (per-sample length): refuse sizes that overflow.
                    if b.checked_mul(#max_len).is_none() {
                        return Err(#rt::Error::Invalid(::std::format!("batch of {} is too large", b)));
                    }
                    Ok(())
                }

                /// Sizes the forward buffers for a batch of `b` (grows only).
                fn __reserve(&mut self, b: usize) -> #rt::Result<()> {
                    Self::__check_batch(b)?;
                    if b > self.cap {
                        #( self.#bufs.resize(b * #buf_lens, 0.0); )*
                        #(#arg_grow)*
                        self.cap = b;
                    }
                    Ok(())
                }

                /// Sizes the gradient buffers for a batch of `b` (grows only).
                fn __reserve_grad(&mut self, b: usize) -> #rt::Result<()> {
                    Self::__check_batch(b)?;
                    if b > self.grad_cap {
                        #( self.#dbufs.resize(b * #buf_lens, 0.0); )*
                        self.dz.resize(b * #dz_len, 0.0);
                        self.grad_cap = b;
                    }
                    if Self::__SPLIT {
                        let parts = #rt::ops::parallel::num_threads().min(#max_parts);
                        let need = (parts - 1) * #grad_total_l;
                        if self.gpart.len() < need {
                            self.gpart.resize(need, 0.0);
                        }
                    }
                    Ok(())
                }

                /// Checks the input's shape and copies it into buffer 0; returns the batch size.
                fn __load_input(&mut self, x: &#nd::ArrayView4<'_, f32>) -> #rt::Result<usize> {
                    let s = x.shape();
                    if s[1..] != Self::INPUT_SHAPE[..] {
                        return Err(#rt::Error::Shape {
                            expected: ::std::format!("(batch, {}, {}, {})", #ih_l, #iw_l, #ic_l),
                            got: ::std::format!("({}, {}, {}, {})", s[0], s[1], s[2], s[3]),
                        });
                    }
                    let b = s[0];
                    self.__reserve(b)?;
                    let dst = &mut self.buf0[..b * #in_len];
                    match x.as_slice() {
                        Some(src) => dst.copy_from_slice(src),
                        None => {
                            for (d, s) in dst.iter_mut().zip(x.iter()) {
                                *d = *s;
                            }
                        }
                    }
                    Ok(b)
                }

                /// Runs every layer on the batch in buffer 0. With `logits`, a final
                /// softmax is left out (the training loss applies it).
                fn __forward(&mut self, b: usize, logits: bool) {
                    let parts = Self::__parts(b, #flops_l);
                    self.__run_parts(b, parts, false, |st, b| Self::__forward_part(st, b, logits));
                }

                /// The forward pass of one part of the batch (`b` samples).
                fn __forward_part(st: &mut #part_name<'_>, b: usize, logits: bool) {
                    #(#fwd)*
                }

                /// How many parts to split a batch of `b` into (each runs every
                /// layer on its own samples, on its own core), for `work` FLOPs a sample.
                fn __parts(b: usize, work: usize) -> usize {
                    if !Self::__SPLIT {
                        return 1;
                    }
                    #rt::ops::parallel::parts_for(b.saturating_mul(work), b).min(#max_parts)
                }

                /// Cuts the first `b` samples of every buffer into `parts` parts and runs
                /// `f` on each, in parallel: one synchronisation per pass, not per layer.
                /// With one part the kernels parallelise inside themselves instead.
                fn __run_parts<F: Fn(&mut #part_name<'_>, usize) + Sync>(&mut self, b: usize, parts: usize, grad: bool, f: F) {
                    #part_init
                    let cells: [::std::sync::Mutex<::core::option::Option<(usize, #part_name<'_>)>>; #max_parts] =
                        ::core::array::from_fn(|t| {
                            if t >= parts {
                                return ::std::sync::Mutex::new(::core::option::Option::None);
                            }
                            #part_take
                        });
                    #rt::ops::parallel::run(parts, &|t| {
                        let mut g = cells[t].lock().unwrap_or_else(|e| e.into_inner());
                        if let ::core::option::Option::Some((nb, st)) = g.as_mut() {
                            f(st, *nb);
                        }
                    });
                }

                /// Runs every layer backward from the gradient in the output's
                /// gradient buffer (or, with `ce`, from the fused loss's dlogits).
                fn __backward(&mut self, b: usize, ce: bool, input_grad: bool) {
                    let parts = Self::__parts(b, 2 * #flops_l);
                    self.__run_parts(b, parts, true, |st, b| Self::__backward_part(st, b, ce, input_grad));
                    // Parts 1.. summed their samples' parameter gradients privately.
                    for t in 1..parts {
                        let base = (t - 1) * #grad_total_l;
                        #(#reduce)*
                    }
                }

                /// The backward pass of one part of the batch (`b` samples).
                fn __backward_part(st: &mut #part_name<'_>, b: usize, ce: bool, input_grad: bool) {
                    #(#bwd)*
                }

                /// Forward pass; the output (one flattened row per sample) is a view of
                /// the model's own buffer, so repeated calls with one batch size allocate nothing.
                pub fn forward_view(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                    let b = self.__load_input(&x)?;
                    self.__forward(b, false);
                    self.fwd_batch = b;
                    self.dx_batch = 0;
                    #nd::ArrayView2::from_shape((b, #out_len_l), &self.#out_buf_f[..b * #out_len_l])
                        .map_err(|e| #rt::Error::Invalid(::std::format!("{}", e)))
                }

                /// Forward pass returning an owned output (`(B, N)`, or `(B, H, W, C)` for
                /// an image output). Wrong input shapes give `Err`.
                pub fn forward(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#forward_ret> {
                    #forward_conv
                }

                /// Backward pass from `dy` = dL/d(output) (post-activation, shaped like the
                /// output, batch first), after a `forward` on the same batch. Parameter
                /// gradients are overwritten (not accumulated): see `grads()`; the input
                /// gradient is kept too: see `input_grad()`.
                pub fn backward<D: #nd::Dimension>(&mut self, dy: #nd::ArrayView<'_, f32, D>) -> #rt::Result<()> {
                    let b = self.fwd_batch;
                    if b == 0 {
                        return Err(#rt::Error::Invalid(::std::string::String::from("backward needs a forward pass on the same batch first")));
                    }
                    if dy.ndim() < 1 || dy.shape()[0] != b || dy.len() != b * #out_len_l {
                        return Err(#rt::Error::Shape {
                            expected: ::std::format!("({}, {:?})", b, Self::OUTPUT_SHAPE),
                            got: ::std::format!("{:?}", dy.shape()),
                        });
                    }
                    self.__reserve_grad(b)?;
                    {
                        let dst = &mut self.#out_dbuf_f[..b * #out_len_l];
                        match dy.as_slice() {
                            Some(src) => dst.copy_from_slice(src),
                            None => {
                                for (d, s) in dst.iter_mut().zip(dy.iter()) {
                                    *d = *s;
                                }
                            }
                        }
                    }
                    self.__backward(b, false, true);
                    self.dx_batch = b;
                    Ok(())
                }

                /// One training step: forward, mean softmax cross-entropy against
                /// `labels` (computed from the logits; fused with a final softmax),
                /// backward, one optimizer update. Returns the batch's mean loss.
                pub fn train_step<O: #rt::Optimizer + ?Sized>(&mut self, x: #nd::ArrayView4<'_, f32>, labels: &[usize], opt: &mut O) -> #rt::Result<f32> {
                    #train_body
                }

                /// Gradients of the last `backward` / `train_step`, named and ordered as `params()`.
                pub fn grads(&self) -> ::std::vec::Vec<#rt::Param<'_>> {
                    ::std::vec![#(#grads_list)*]
                }

                /// dL/dx of the last `backward`, one flattened row per sample.
                pub fn input_grad(&self) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                    let b = self.dx_batch;
                    if b == 0 {
                        return Err(#rt::Error::Invalid(::std::string::String::from(
                            "no input gradient: call backward after a forward pass")));
                    }
                    #nd::ArrayView2::from_shape((b, #in_len), &self.dbuf0[..b * #in_len])
                        .map_err(|e| #rt::Error::Invalid(::std::format!("{}", e)))
                }

                /// Post-activation output of layer `i` (0-based statement after `input`) from
                /// the last forward pass, one flattened row per sample.
                pub fn layer_output(&self, i: usize) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                    let b = self.fwd_batch;
                    let (buf, n): (&[f32], usize) = match i {
                        #(#layer_arms)*
                        _ => return Err(#rt::Error::Invalid(::std::format!("no layer {}", i))),
                    };
                    #nd::ArrayView2::from_shape((b, n), &buf[..b * n])
                        .map_err(|e| #rt::Error::Invalid(::std::format!("{}", e)))
                }

                /// Writes the weights (`.safetensors` or `.npz`, by extension).
                pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<()> {
                    #rt::io::weights::save_weights(self, path.as_ref(), &::core::default::Default::default())
                }

                /// Reads weights written by `save` (or a Keras model's, same names and layout);
                /// returns the file's metadata (class names). The model is unchanged on error.
                pub fn load(&mut self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<#rt::io::weights::WeightsMeta> {
                    self.fwd_batch = 0;
                    self.dx_batch = 0;
                    #rt::io::weights::load_weights(self, path.as_ref())
                }
            }

            #[allow(clippy::all)]
            impl #rt::Model for #name {
                fn input_shape(&self) -> [usize; 3] {
                    Self::INPUT_SHAPE
                }
                fn output_shape(&self) -> ::std::vec::Vec<usize> {
                    Self::OUTPUT_SHAPE.to_vec()
                }
                fn ends_in_softmax(&self) -> bool {
                    Self::ENDS_IN_SOFTMAX
                }
                fn forward_batch(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                    self.forward_view(x)
                }
                fn train_batch(&mut self, x: #nd::ArrayView4<'_, f32>, labels: &[usize], opt: &mut dyn #rt::Optimizer) -> #rt::Result<f32> {
                    self.train_step(x, labels, opt)
                }
                fn params(&self) -> ::std::vec::Vec<#rt::Param<'_>> {
                    ::std::vec![#(#params_list)*]
                }
                fn last_output(&self) -> ::core::option::Option<#nd::ArrayView2<'_, f32>> {
                    let b = self.fwd_batch;
                    if b == 0 {
                        return None;
                    }
                    #nd::ArrayView2::from_shape((b, #out_len_l), &self.#out_buf_f[..b * #out_len_l]).ok()
                }
                fn params_mut(&mut self) -> ::std::vec::Vec<#rt::ParamMut<'_>> {
                    self.fwd_batch = 0;
                    self.dx_batch = 0;
                    ::std::vec![#(#params_mut_list)*]
                }
            }
        })
    }
}

/// The statement of a layer, with defaults left out (`conv 6 5x5 tanh`).
pub fn layer_text(op: &Op) -> String {
    fn pair(p: [usize; 2]) -> String {
        if p[0] == p[1] {
            p[0].to_string()
        } else {
            format!("{}x{}", p[0], p[1])
        }
    }
    let act = |a: Activation| {
        if a == Activation::Linear {
            String::new()
        } else {
            format!(" {}", a.keyword())
        }
    };
    match op {
        Op::Conv(c) => {
            let mut s = format!("conv {} {}x{}", c.filters, c.kernel[0], c.kernel[1]);
            if c.stride != [1, 1] {
                let _ = write!(s, " stride {}", pair(c.stride));
            }
            if c.padding == ir::Padding::Same {
                s.push_str(" same");
            }
            if c.dilation != [1, 1] {
                let _ = write!(s, " dilation {}", pair(c.dilation));
            }
            s + &act(c.activation)
        }
        Op::Pool(p) => {
            let mut s = format!("{} {}", p.kind.keyword(), pair(p.window));
            if p.stride != p.window {
                let _ = write!(s, " stride {}", pair(p.stride));
            }
            if p.padding == ir::Padding::Same {
                s.push_str(" same");
            }
            s
        }
        Op::Flatten => "flatten".into(),
        Op::Dense(d) => format!("dense {}", d.units) + &act(d.activation),
        Op::Activation(a) => a.keyword().into(),
    }
}

/// The Keras-style summary table of a model (what the generated `summary()`
/// returns): one row per layer with its output shape, parameters and FLOPs, then
/// the totals.
pub fn summary_text(m: &ir::Model) -> String {
    let shape = |s: Shape| match s {
        Shape::Image { h, w, c } => format!("(None, {h}, {w}, {c})"),
        Shape::Vector { n } => format!("(None, {n})"),
    };
    let mut rows = vec![(
        "input".to_string(),
        shape(m.input),
        "0".to_string(),
        "0".to_string(),
    )];
    for l in &m.layers {
        rows.push((
            format!("layer{} {}", l.index, layer_text(&l.op)),
            shape(l.output),
            thousands(l.param_count),
            thousands(l.flops),
        ));
    }
    let head = (
        "Layer".to_string(),
        "Output shape".to_string(),
        "Params".to_string(),
        "FLOPs".to_string(),
    );
    // Each column as wide as its widest cell, header included.
    let widest = |cell: fn(&(String, String, String, String)) -> usize| {
        rows.iter().chain([&head]).map(cell).max().unwrap_or(0)
    };
    let w0 = widest(|r| r.0.len());
    let w1 = widest(|r| r.1.len());
    let w2 = widest(|r| r.2.len());
    let w3 = widest(|r| r.3.len());
    let width = w0 + w1 + w2 + w3 + 9;
    let mut s = String::new();
    let _ = writeln!(s, "Model: \"{}\"", m.name);
    let line = |s: &mut String, c: char| {
        let _ = writeln!(s, "{}", c.to_string().repeat(width));
    };
    line(&mut s, '━');
    let _ = writeln!(
        s,
        " {:<w0$}   {:<w1$}   {:>w2$}   {:>w3$}",
        head.0, head.1, head.2, head.3
    );
    line(&mut s, '━');
    for r in &rows {
        let _ = writeln!(
            s,
            " {:<w0$}   {:<w1$}   {:>w2$}   {:>w3$}",
            r.0, r.1, r.2, r.3
        );
    }
    line(&mut s, '━');
    let bytes = m.total_params as f64 * 4.0;
    let size = if bytes >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.2} KiB", bytes / 1024.0)
    };
    let _ = writeln!(s, " Total params: {} ({size})", thousands(m.total_params));
    let _ = writeln!(s, " Trainable params: {}", thousands(m.total_params));
    let _ = writeln!(s, " Forward FLOPs per sample: {}", thousands(m.total_flops));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(src: &str) -> ir::Model {
        let c = crate::compile(src, "Net");
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        c.models.into_iter().next().unwrap()
    }

    #[test]
    fn shapes_are_literal_constants_and_code_parses() {
        let m = model("input 28x28x1; conv 6 5x5 same tanh; avgpool 2; flatten; dense 10 softmax;");
        let code = to_source(&generate(&m, &Options::default())).unwrap();
        // The conv spec is a constant with every size written out.
        assert!(
            code.contains("const L0: ::cnn::__private::runtime::Conv2dSpec"),
            "{code}"
        );
        assert!(code.contains("in_h: 28usize"), "{code}");
        assert!(code.contains("pad_top: 2usize"), "{code}");
        assert!(
            code.contains("const L3: ::cnn::__private::runtime::DenseSpec"),
            "{code}"
        );
        assert!(code.contains("inputs: 1176usize"), "{code}");
        // The activation is fused into the conv call, and the final softmax is
        // switched off while training (fused with the loss).
        assert!(code.contains("Activation::Tanh"), "{code}");
        assert!(code.contains("if logits"), "{code}");
        assert!(!code.contains("compile_error"), "{code}");
    }

    #[test]
    fn batch_split_follows_the_size_rule() {
        // LeNet: largest per-sample buffer 28*28*6 = 4704 values: split per pass.
        let small = model(
            "input 28x28x1; conv 6 5x5 same tanh; avgpool 2; conv 16 5x5 tanh; avgpool 2; \
             flatten; dense 120 tanh; dense 84 tanh; dense 10 softmax;",
        );
        let code = to_source(&generate(&small, &Options::default())).unwrap();
        assert!(code.contains("const __SPLIT: bool = true"), "{code}");
        assert!(code.contains("struct __NetPart<'a>"), "{code}");
        // Its pools and the second conv's backward use the fixed-size kernels;
        // the first conv (`same`: padded) keeps the dynamic backward.
        let flat: String = code.split_whitespace().collect();
        assert!(
            flat.contains("fixed::avgpool_forward::<28usize,28usize,6usize,2usize,2usize,"),
            "{code}"
        );
        assert!(flat.contains("fixed::avgpool_backward::<10usize,10usize,16usize,2usize,2usize"));
        assert!(flat.contains(
            "fixed::conv_valid_backward::<14usize,14usize,6usize,5usize,5usize,16usize,150usize,2400usize"
        ));
        assert_eq!(code.matches("conv2d::conv2d_backward").count(), 1, "{code}");
        // A tiny valid conv (320 multiply-adds a sample) keeps the dynamic backward.
        let tiny = model("input 10x4x1; conv 2 3x3 valid;");
        let code = to_source(&generate(&tiny, &Options::default())).unwrap();
        assert!(code.contains("const __SPLIT: bool = true"), "{code}");
        assert!(!code.contains("conv_valid_backward"), "{code}");
        // 150*150*32 values a sample: each kernel parallelises on its own.
        let big = model("input 150x150x3; conv 32 3x3 same relu; flatten; dense 5 softmax;");
        let code = to_source(&generate(&big, &Options::default())).unwrap();
        assert!(code.contains("const __SPLIT: bool = false"), "{code}");
        assert!(!code.contains("fixed::"), "{code}");
        // Just over the sample threshold is not split either.
        let edge = model("input 129x128x2; flatten; dense 2;");
        const { assert!(129 * 128 * 2 > SPLIT_MAX_SAMPLE_LEN) };
        let code = to_source(&generate(&edge, &Options::default())).unwrap();
        assert!(code.contains("const __SPLIT: bool = false"), "{code}");
    }

    #[test]
    fn support_path_and_visibility_follow_the_options() {
        let m = model("input 4x4x1; flatten; dense 2;");
        let opts = Options {
            support_path: "crate::support".into(),
            public: Some(true),
        };
        let code = to_source(&generate(&m, &opts)).unwrap();
        assert!(code.contains("pub struct Net"));
        assert!(code.contains("crate::support::runtime::ops::dense::dense_forward"));
        let private = to_source(&generate(&m, &Options::default())).unwrap();
        assert!(private.contains("\nstruct Net"), "{private}");
    }

    #[test]
    fn inconsistent_ir_gives_compile_error_not_panic() {
        let mut m = model("input 4x4x1; flatten; dense 2;");
        m.layers[1].input = Shape::Vector { n: 7 };
        let code = generate(&m, &Options::default()).to_string();
        assert!(code.contains("compile_error"), "{code}");
        m.name = "not an ident".into();
        assert!(generate(&m, &Options::default())
            .to_string()
            .contains("compile_error"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_635_685), "10,635,685");
        assert_eq!(thousands(123_456), "123,456");
    }

    #[test]
    fn summary_lists_layers_and_totals() {
        let m = model("input 32x32x3; conv 32 3x3 same; conv 32 3x3 valid;");
        let s = summary_text(&m);
        assert!(s.contains("layer0 conv 32 3x3 same"), "{s}");
        assert!(s.contains("(None, 30, 30, 32)"), "{s}");
        assert!(s.contains("Total params: 10,144"), "{s}");
    }
}
