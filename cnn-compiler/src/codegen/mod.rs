//! The code generator: a checked [`ir::Model`] becomes a specialized Rust struct
//! and its impl, as a [`proc_macro2::TokenStream`].
//!
//! The generated code holds no layer logic of its own. The model is lowered to
//! the runtime's plan ([`crate::lower::plan`], the same lowering the
//! interpreter runs), and the generator writes that plan out: each step as a
//! constant, the plan as a `static`, and the forward and backward pass of a
//! batch part as straight-line calls of the runtime's step functions
//! (`cnn_runtime::exec::forward_step` ...) with those constants, so the
//! optimizer sees every size as a literal. The kernels are the interpreter's,
//! so a seed gives bit-identical weights either way (`tests/reproducible.rs`;
//! const-generic kernels of their own, with their own summation order, were
//! given up for that). The struct holds the
//! executor's state (parameters, gradients, buffers sized once per batch size),
//! and its methods and `impl Model` delegate to it.
//!
//! The generated code reaches the runtime through one path, [`Options::support_path`]
//! (by default `::cnn::__private`, a hidden module of the facade crate that
//! re-exports `cnn_runtime` as `runtime`, `ndarray`, and the facade's `onnx`). The same code works from
//! the `cnn!` macro and from `cnnc build` output pulled in with `include!`, since
//! both are compiled in a crate that depends on `cnn`.

mod plan_tokens;

use crate::ir::{self, Shape};
use cnn_plan::Plan;
use plan_tokens::{lit, plan_expr, step_const, step_ident};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// How to generate code.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the support module the generated code calls into: it must
    /// re-export the runtime crate as `runtime`, `ndarray` as `ndarray`, and
    /// the facade's `onnx` module as `onnx`.
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
    match emit(model, opts) {
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

fn support(opts: &Options) -> TokenStream {
    match syn::parse_str::<syn::Path>(&opts.support_path) {
        Ok(p) => quote!(#p),
        Err(_) => quote!(::cnn::__private),
    }
}

/// Forward call of step `k`.
fn forward_call(rt: &TokenStream, owner: &proc_macro2::Ident, k: usize) -> TokenStream {
    let c = step_ident(k);
    quote!(#rt::exec::forward_step(&#owner::#c, p, logits);)
}

/// Backward call of step `k`.
fn backward_call(rt: &TokenStream, owner: &proc_macro2::Ident, k: usize) -> TokenStream {
    let c = step_ident(k);
    quote!(#rt::exec::backward_step(&#owner::#c, p, ce, input_grad);)
}

fn emit(m: &ir::Model, opts: &Options) -> Result<TokenStream, String> {
    if syn::parse_str::<syn::Ident>(&m.name).is_err() {
        return Err(format!("model name `{}` is not a Rust identifier", m.name));
    }
    let plan: Plan = crate::lower::plan(m)?;
    let sp = support(opts);
    let rt = quote!(#sp::runtime);
    let nd = quote!(#sp::ndarray);
    let name = format_ident!("{}", m.name);
    let vis = if opts.public.unwrap_or(m.public) {
        quote!(pub)
    } else {
        quote!()
    };
    let [ih, iw, ic] = plan.input.map(lit);
    let out = m.output();
    let out_dims: Vec<Literal> = plan.output_shape.iter().map(|&d| lit(d)).collect();
    let out_rank = lit(out_dims.len());
    let ends_softmax = plan.ends_in_softmax;
    let steps: Vec<TokenStream> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(k, s)| step_const(&rt, k, s))
        .collect();
    let plan_value = plan_expr(&rt, &name, &plan);
    let fwd: Vec<TokenStream> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(k, _)| forward_call(&rt, &name, k))
        .collect();
    let bwd: Vec<TokenStream> = plan
        .steps
        .iter()
        .enumerate()
        .rev()
        .map(|(k, _)| backward_call(&rt, &name, k))
        .collect();
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
    let summary = crate::summary::summary_text(m);
    let doc = format!(
        "The `{}` model, generated by the cnn compiler: input {}, output {}, {} parameters.\n\n```text\n{}```",
        m.name, m.input, out, m.total_params, summary
    );
    let total_params = m.total_params;
    let total_flops = m.total_flops;
    let n_tensors = lit(plan.tensors.len());
    let split = plan.split;

    Ok(quote! {
        #[doc = #doc]
        #[allow(dead_code, non_snake_case, clippy::all)]
        #vis struct #name {
            /// Parameters, gradients and buffers, laid out by the plan.
            state: #rt::exec::State,
        }

        #[allow(dead_code, non_snake_case, clippy::all, unused_variables, unused_mut, unreachable_code)]
        impl #name {
            /// Per-sample input shape `[H, W, C]`.
            pub const INPUT_SHAPE: [usize; 3] = [#ih, #iw, #ic];
            /// Per-sample output shape (`[N]` or `[H, W, C]`).
            pub const OUTPUT_SHAPE: [usize; #out_rank] = [#(#out_dims),*];
            /// Whether the last layer applies softmax (fused with the cross-entropy in training).
            pub const ENDS_IN_SOFTMAX: bool = #ends_softmax;
            /// Number of parameters (kernels and biases).
            pub const TOTAL_PARAMS: u64 = #total_params;
            /// Forward FLOPs per sample.
            pub const TOTAL_FLOPS: u64 = #total_flops;
            /// Number of parameter tensors (optimizer slots).
            pub const PARAM_TENSORS: usize = #n_tensors;
            const SUMMARY: &'static str = #summary;
            /// Whether batches are split across cores once per pass (small models).
            const __SPLIT: bool = #split;
            #(#steps)*
            /// The passes of one batch part, in a straight line.
            const PASSES: #rt::exec::Passes = #rt::exec::Passes {
                forward: #name::__forward_part,
                backward: #name::__backward_part,
            };

            /// The model's plan (the interpreter runs the same one).
            pub fn plan() -> &'static #rt::Plan {
                static PLAN: #rt::Plan = #plan_value;
                &PLAN
            }

            /// A model with Keras's default initialisation (Glorot-uniform kernels,
            /// zero biases), drawn from one RNG seeded with `seed`, in layer order.
            pub fn new(seed: u64) -> Self {
                #name { state: #rt::exec::State::new(Self::plan(), seed) }
            }

            /// Draws fresh weights for `seed`, exactly as `new(seed)` does.
            pub fn reinit(&mut self, seed: u64) {
                self.state.reinit(Self::plan(), seed);
            }

            /// The Keras-style table of `cnnc summary`: layers, output shapes,
            /// parameters, FLOPs.
            pub fn summary() -> &'static str {
                Self::SUMMARY
            }

            /// The forward pass of one part of the batch.
            fn __forward_part(_plan: &#rt::Plan, p: &mut #rt::exec::Part<'_>, logits: bool) {
                #(#fwd)*
            }

            /// The backward pass of one part of the batch.
            fn __backward_part(_plan: &#rt::Plan, p: &mut #rt::exec::Part<'_>, ce: bool, input_grad: bool) {
                #(#bwd)*
            }

            /// Forward pass; the output (one flattened row per sample) is a view of
            /// the model's own buffer, so repeated calls with one batch size allocate nothing.
            pub fn forward_view(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.state.forward(Self::plan(), Self::PASSES, x)
            }

            /// Inference for predictions: as `forward_view`, with each batchnorm after a
            /// conv or dense layer folded into that layer's kernel and bias, and an
            /// activation layer after them applied by that layer's kernel (a pass over
            /// the activations fewer each). Only the output is kept: no `layer_output`
            /// of a layer folded into another's, no `backward` after it.
            pub fn predict_view(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.state.predict(Self::plan(), Self::PASSES, x)
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
                self.state.backward(Self::plan(), Self::PASSES, dy.shape(), dy.iter().copied())
            }

            /// One training step: forward, mean softmax cross-entropy against
            /// `labels` (computed from the logits; fused with a final softmax),
            /// backward, one optimizer update. Returns the batch's mean loss.
            pub fn train_step<O: #rt::Optimizer + ?Sized>(&mut self, x: #nd::ArrayView4<'_, f32>, labels: &[usize], opt: &mut O) -> #rt::Result<f32> {
                self.state.train_step(Self::plan(), Self::PASSES, x, labels, opt)
            }

            /// Gradients of the last `backward` / `train_step`, named and ordered as `params()`.
            pub fn grads(&self) -> ::std::vec::Vec<#rt::Param<'_>> {
                self.state.grads(Self::plan())
            }

            /// dL/dx of the last `backward`, one flattened row per sample.
            pub fn input_grad(&self) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.state.input_grad(Self::plan())
            }

            /// Post-activation output of layer `i` (0-based statement after `input`) from
            /// the last forward pass, one flattened row per sample.
            pub fn layer_output(&self, i: usize) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.state.layer_output(Self::plan(), i)
            }

            /// Writes the weights (`.safetensors` or `.npz`, by extension).
            pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<()> {
                #rt::io::weights::save_weights(self, path.as_ref(), &::core::default::Default::default())
            }

            /// Writes the model with its current weights as an ONNX file (NHWC
            /// input and output, a free batch size), atomically.
            pub fn export_onnx(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<()> {
                #sp::onnx::save_onnx(self, Self::plan(), path.as_ref())
            }

            /// Reads weights written by `save` (or a Keras model's, same names and layout);
            /// returns the file's metadata (class names). The model is unchanged on error.
            pub fn load(&mut self, path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<#rt::io::weights::WeightsMeta> {
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
            fn predict_batch(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.predict_view(x)
            }
            fn forward_train_batch(&mut self, x: #nd::ArrayView4<'_, f32>) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                self.state.forward_train(Self::plan(), Self::PASSES, x)
            }
            fn train_batch(&mut self, x: #nd::ArrayView4<'_, f32>, labels: &[usize], opt: &mut dyn #rt::Optimizer) -> #rt::Result<f32> {
                self.train_step(x, labels, opt)
            }
            fn params(&self) -> ::std::vec::Vec<#rt::Param<'_>> {
                self.state.params(Self::plan())
            }
            fn last_output(&self) -> ::core::option::Option<#nd::ArrayView2<'_, f32>> {
                self.state.last_output(Self::plan())
            }
            fn params_mut(&mut self) -> ::std::vec::Vec<#rt::ParamMut<'_>> {
                self.state.params_mut(Self::plan())
            }
            fn backward(&mut self, dy: #nd::ArrayViewD<'_, f32>) -> #rt::Result<()> {
                #name::backward(self, dy)
            }
            fn grads(&self) -> ::std::vec::Vec<#rt::Param<'_>> {
                #name::grads(self)
            }
            fn input_grad(&self) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                #name::input_grad(self)
            }
            fn layer_output(&self, i: usize) -> #rt::Result<#nd::ArrayView2<'_, f32>> {
                #name::layer_output(self, i)
            }
            fn set_step_options(&mut self, options: #rt::StepOptions) -> #rt::Result<()> {
                self.state.set_step_options(options)
            }
            fn training_passes(&self) -> u64 {
                self.state.training_passes()
            }
            fn set_training_passes(&mut self, passes: u64) {
                self.state.set_training_passes(passes)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(src: &str) -> ir::Model {
        let c = crate::compile(src, "Net");
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        c.models.into_iter().next().unwrap()
    }

    fn code(src: &str) -> String {
        to_source(&generate(&model(src), &Options::default())).unwrap()
    }

    #[test]
    fn steps_are_literal_constants_and_code_parses() {
        let code =
            code("input 28x28x1; conv 6 5x5 same tanh; avgpool 2; flatten; dense 10 softmax;");
        // Every step is a constant with every size written out.
        assert!(
            code.contains("const S0: ::cnn::__private::runtime::Step"),
            "{code}"
        );
        assert!(code.contains("in_h: 28usize"), "{code}");
        assert!(code.contains("pad_top: 2usize"), "{code}");
        assert!(code.contains("inputs: 1176usize"), "{code}");
        assert!(code.contains("Activation::Tanh"), "{code}");
        // The final dense softmax is the dense layer and a softmax step (S4).
        assert!(code.contains("const S4: ::cnn::__private::runtime::Step"));
        assert!(code.contains("fused_softmax: true"), "{code}");
        // The passes call the runtime's step functions with the constants.
        assert!(
            code.contains("exec::forward_step(&Net::S0, p, logits)"),
            "{code}"
        );
        assert!(code.contains("exec::backward_step(&Net::S4, p, ce, input_grad)"));
        assert!(code.contains("static PLAN: ::cnn::__private::runtime::Plan"));
        assert!(!code.contains("compile_error"), "{code}");
    }

    #[test]
    fn small_models_split_batches_and_call_the_interpreters_kernels() {
        // LeNet: largest per-sample buffer 28*28*6 = 4704 values: split per pass.
        let lenet = code(
            "input 28x28x1; conv 6 5x5 same tanh; avgpool 2; conv 16 5x5 tanh; avgpool 2; \
             flatten; dense 120 tanh; dense 84 tanh; dense 10 softmax;",
        );
        assert!(lenet.contains("const __SPLIT: bool = true"), "{lenet}");
        let flat: String = lenet.split_whitespace().collect();
        for k in 0..8 {
            assert!(
                flat.contains(&format!("exec::forward_step(&Net::S{k},p,logits)")),
                "{lenet}"
            );
            assert!(flat.contains(&format!("exec::backward_step(&Net::S{k},p,ce,input_grad)")));
        }
        // 150*150*32 values a sample: each kernel parallelises on its own.
        let big = code("input 150x150x3; conv 32 3x3 same relu; flatten; dense 5 softmax;");
        assert!(big.contains("const __SPLIT: bool = false"), "{big}");
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
        assert!(code.contains("crate::support::runtime::exec::forward_step"));
        let private = to_source(&generate(&m, &Options::default())).unwrap();
        assert!(private.contains("\nstruct Net"), "{private}");
    }

    #[test]
    fn inconsistent_ir_gives_compile_error_not_panic() {
        let mut m = model("input 4x4x1; flatten; dense 2;");
        m.layers[1].input = Shape::Vector { n: 7 };
        m.layers[1].op = ir::Op::Dense(ir::Dense {
            units: 2,
            bias: true,
            activation: ir::Activation::Linear,
        });
        let mut bad = m.clone();
        bad.layers[0].op = ir::Op::Flatten;
        bad.layers[0].input = Shape::Image { h: 2, w: 2, c: 1 };
        let code = generate(&bad, &Options::default()).to_string();
        assert!(code.contains("compile_error"), "{code}");
        m.name = "not an ident".into();
        assert!(generate(&m, &Options::default())
            .to_string()
            .contains("compile_error"));
    }

    #[test]
    fn generated_summary_is_the_summary_of_cnnc() {
        let m = model("input 32x32x3; conv 32 3x3 same; conv 32 3x3 valid;");
        let code = to_source(&generate(&m, &Options::default())).unwrap();
        let text = crate::summary::summary_text(&m);
        let lit = format!("const SUMMARY: &'static str = {text:?};");
        assert!(code.contains(&lit), "{code}");
    }
}
