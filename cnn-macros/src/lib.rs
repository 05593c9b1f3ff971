//! The `cnn!` macro. Kept thin: it turns its tokens back into source text, hands
//! that to `cnn-compiler`, and returns the generated code or `compile_error!`s.
//!
//! Three forms, told apart by the first token:
//!
//! - item form, `cnn! { pub model Name { ... } model Other { ... } }`: defines one
//!   struct (and its impl) per model, `pub` when written `pub model` (`block`
//!   definitions may come first);
//! - include form, `cnn!(include "models/lenet5.cnn");`: the same for the models
//!   of a file (path relative to `CARGO_MANIFEST_DIR`); a bare model body is named
//!   after the file (`Lenet5`). The crate is rebuilt when the file changes;
//! - expression form, `cnn!(input 28x28x1; conv 8 3x3 relu; ...)` (anything else):
//!   a block expression that defines a hidden struct and evaluates to a model
//!   initialised with seed 0 (`.reinit(seed)` draws other weights).
//!
//! Errors become `compile_error!`s on the offending tokens (each with its code,
//! the shape trail and a help line); every error of the input is reported.
//! Warnings do not fail the build: each one becomes a use of a `#[deprecated]`
//! item placed on the offending token, so that rustc prints it as a warning there.

#![forbid(unsafe_code)]

use cnn_compiler::{build, codegen, render, Severity};
use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned};

/// Defines CNN models from the `cnn` model language. See the crate docs of `cnn`.
#[proc_macro]
pub fn cnn(input: TokenStream) -> TokenStream {
    expand(input.into()).into()
}

/// Name of the hidden struct of the expression form.
const EXPR_MODEL_NAME: &str = "CnnModel";

/// Picks the form by the first token (testable: works on `proc_macro2` tokens).
fn expand(input: TokenStream2) -> TokenStream2 {
    let tokens: Vec<TokenTree> = input.clone().into_iter().collect();
    match tokens.first() {
        Some(TokenTree::Ident(i)) if i == "include" => expand_include(&tokens),
        Some(TokenTree::Ident(i)) if i == "pub" || i == "model" => expand_source(input, false),
        // Block definitions come first: then models (the item form), or a
        // bare body (the expression form).
        Some(TokenTree::Ident(i)) if i == "block" => {
            let models = tokens
                .iter()
                .any(|t| matches!(t, TokenTree::Ident(m) if m == "model"));
            expand_source(input, !models)
        }
        _ => expand_source(input, true),
    }
}

/// Source text rebuilt from tokens, with the span of each token's text.
struct SourceMap {
    text: String,
    /// `(start, end, span)` of every token in `text`, in order.
    tokens: Vec<(usize, usize, Span)>,
    /// Line (1-based) and column (0-based) where `text` ends, in the Rust file.
    line: usize,
    col: usize,
}

impl SourceMap {
    fn new(input: TokenStream2) -> Self {
        let mut m = SourceMap {
            text: String::new(),
            tokens: Vec::new(),
            line: 1,
            col: 0,
        };
        m.walk(input);
        m
    }

    /// Appends a token's text. Where the compiler reports token positions, the
    /// text keeps the source layout (same line numbers as the Rust file, same
    /// columns), so that "on line N" in messages is the user's line N; otherwise
    /// tokens are separated by one space.
    fn push(&mut self, s: &str, span: Span) {
        let (start, end) = (span.start(), span.end());
        if start.line > 0 && start.line >= self.line {
            if start.line > self.line {
                let breaks = start.line - self.line;
                // The first token also starts on its own line number: lines before
                // the macro are empty.
                // (a loop rather than `iter::repeat_n`, which is newer than rust-version 1.80)
                for _ in 0..breaks {
                    self.text.push('\n');
                }
                self.col = 0;
            }
            let pad = start
                .column
                .saturating_sub(self.col)
                .max(usize::from(!self.text.is_empty() && self.col > 0));
            for _ in 0..pad {
                self.text.push(' ');
            }
        } else if !self.text.is_empty() {
            self.text.push(' ');
        }
        let at = self.text.len();
        self.text.push_str(s);
        self.tokens.push((at, self.text.len(), span));
        if end.line > 0 {
            self.line = end.line;
            self.col = end.column;
        }
    }

    fn walk(&mut self, input: TokenStream2) {
        for tt in input {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        // An invisible group (a `macro_rules!` fragment): only its contents.
                        Delimiter::None => ("", ""),
                    };
                    if !open.is_empty() {
                        self.push(open, g.span_open());
                    }
                    self.walk(g.stream());
                    if !close.is_empty() {
                        self.push(close, g.span_close());
                    }
                }
                // Literals keep their written form: `5x5` is an integer with suffix `x5`.
                TokenTree::Literal(l) => self.push(&l.to_string(), l.span()),
                TokenTree::Ident(i) => self.push(&i.to_string(), i.span()),
                TokenTree::Punct(p) => self.push(&p.as_char().to_string(), p.span()),
            }
        }
    }

    /// The first and last token overlapping `start..end` (the nearest token for
    /// an empty range, the last token at the end of the input).
    fn spans(&self, start: usize, end: usize) -> (Span, Span) {
        let hit: Vec<&(usize, usize, Span)> = self
            .tokens
            .iter()
            .filter(|(s, e, _)| {
                if start == end {
                    *s <= start && start < *e
                } else {
                    *s < end && start < *e
                }
            })
            .collect();
        if let (Some(f), Some(l)) = (hit.first(), hit.last()) {
            return (f.2, l.2);
        }
        // No token there: the next token after the point, else the last one.
        let next = self
            .tokens
            .iter()
            .find(|(s, _, _)| *s >= start)
            .or(self.tokens.last());
        next.map_or((Span::call_site(), Span::call_site()), |t| (t.2, t.2))
    }
}

/// A `compile_error!` covering the tokens from `first` to `last`.
fn error_at(first: Span, last: Span, msg: &str) -> TokenStream2 {
    let a = proc_macro2::Ident::new("a", first);
    let b = proc_macro2::Ident::new("b", last);
    syn::Error::new_spanned(quote!(#a #b), msg).to_compile_error()
}

/// A warning rustc prints at `span` without failing the build: the use of a
/// `#[deprecated]` unit struct whose note is the message.
fn warning_at(span: Span, msg: &str, n: usize) -> TokenStream2 {
    let ty = format_ident!("cnn_model_warning_{}", n);
    let used = proc_macro2::Ident::new(&ty.to_string(), span);
    let note = format!("\n{msg}");
    let use_stmt = quote_spanned!(span=> let _ = #used;);
    quote! {
        const _: () = {
            #[deprecated(note = #note)]
            #[allow(non_camel_case_types)]
            struct #ty;
            #use_stmt
        };
    }
}

/// Item and expression forms: the macro's own tokens are the source.
fn expand_source(input: TokenStream2, expr: bool) -> TokenStream2 {
    let map = SourceMap::new(input);
    let compiled = cnn_compiler::compile(&map.text, EXPR_MODEL_NAME);
    let mut out = TokenStream2::new();
    for (n, d) in compiled.diagnostics.iter().enumerate() {
        let (first, last) = map.spans(d.span.start, d.span.end);
        let msg = render::message(&map.text, d);
        match d.severity {
            Severity::Error => out.extend(error_at(first, last, &msg)),
            Severity::Warning => out.extend(warning_at(first, &msg, n)),
        }
    }
    if compiled.has_errors() {
        return if expr { quote!({ #out }) } else { out };
    }
    let opts = codegen::Options::default();
    if expr {
        match compiled.models.as_slice() {
            [m] => {
                let code = codegen::generate_expr(m, &opts);
                quote!({ #out #code })
            }
            _ => {
                let e = syn::Error::new(Span::call_site(), "the expression form of cnn! takes one bare model body (`input HxWxC; ...`); use the item form `cnn! { model Name { ... } }` for named models");
                e.to_compile_error()
            }
        }
    } else {
        out.extend(codegen::generate_all(&compiled.models, &opts));
        out
    }
}

/// `cnn!(include "path.cnn")`.
fn expand_include(tokens: &[TokenTree]) -> TokenStream2 {
    let lit = match tokens {
        [_, TokenTree::Literal(l)] => l.clone(),
        [_, TokenTree::Literal(l), TokenTree::Punct(p)] if p.as_char() == ';' => l.clone(),
        _ => {
            let span = tokens.get(1).map_or_else(|| tokens[0].span(), |t| t.span());
            return syn::Error::new(span, "expected `include \"path/to/model.cnn\"`")
                .to_compile_error();
        }
    };
    let span = lit.span();
    let rel = match syn::parse2::<syn::LitStr>(TokenTree::Literal(lit).into()) {
        Ok(s) => s.value(),
        Err(_) => {
            return syn::Error::new(span, "expected a string literal path").to_compile_error()
        }
    };
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let path = base.join(&rel);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            return syn::Error::new(span, format!("cannot read {}: {e}", path.display()))
                .to_compile_error();
        }
    };
    let abs = path.display().to_string();
    let file = build::compile_file(&path, &source, &build::file_options());
    // Rebuild when the file changes (the stable way to track a file from a proc-macro).
    let mut out = quote!(
        const _: &[u8] = ::core::include_bytes!(#abs);
    );
    for (n, d) in file.compiled.diagnostics.iter().enumerate() {
        // Spans cannot point into the file: the message names file, line and
        // column and quotes the line, and goes on the path literal.
        let msg = render::message_with_source(&rel, &source, d);
        match d.severity {
            Severity::Error => out.extend(syn::Error::new(span, msg).to_compile_error()),
            Severity::Warning => out.extend(warning_at(span, &msg, n)),
        }
    }
    if let Some(tokens) = file.tokens {
        out.extend(tokens);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn run(src: &str) -> String {
        expand(TokenStream2::from_str(src).expect("tokens")).to_string()
    }

    #[test]
    fn item_form_generates_the_struct() {
        let out = run("pub model Net { input 4x4x1; flatten; dense 2 softmax }");
        // The struct, and no error beside it.
        assert!(
            out.contains("pub struct Net") && !out.contains("compile_error"),
            "{out}"
        );
    }

    #[test]
    fn expression_form_is_a_block_returning_seed_zero() {
        let out = run("input 4x4x1; flatten; dense 2");
        assert!(out.starts_with('{'), "{out}");
        assert!(out.contains("CnnModel :: new (0)"), "{out}");
    }

    #[test]
    fn every_error_becomes_a_compile_error_with_code_and_help() {
        let out = run(
            "model Net { input 8x8x1; conv 4 9x9; maxpool 0; flatten; dense 10 relu; conv 2 3x3 }",
        );
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        for code in ["[E003]", "[E004]", "[E005]"] {
            assert!(out.contains(code), "{code} in {out}");
        }
        assert!(out.contains("= help:"), "{out}");
        assert!(
            !out.contains("struct Net"),
            "no code for a model with errors: {out}"
        );
    }

    #[test]
    fn warnings_do_not_stop_code_generation() {
        let out = run("model Net { input 8x8x1; conv 4 3x3 softmax; flatten; dense 2 }");
        for part in ["deprecated", "[W001]", "struct Net"] {
            assert!(out.contains(part), "{part} in {out}");
        }
    }

    #[test]
    fn include_form_reports_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("cnn-macros-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad_model.cnn");
        std::fs::write(&bad, "input 4x4x1;\n// a comment\nconv 2 5x5;\n").unwrap();
        let out = run(&format!("include {:?}", bad.display().to_string()));
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("[E003]"), "{out}");
        assert!(out.contains("bad_model.cnn:3:"), "{out}");
        assert!(out.contains("conv 2 5x5"), "the line is quoted: {out}");
        assert!(out.contains("include_bytes"), "rebuild tracking: {out}");
        let good = dir.join("tiny_net.cnn");
        std::fs::write(&good, "input 2x2x1; flatten; dense 2;").unwrap();
        let out = run(&format!("include {:?}", good.display().to_string()));
        assert!(out.contains("pub struct TinyNet"), "{out}");
        let missing = run("include \"/nonexistent/x.cnn\"");
        assert!(missing.contains("cannot read"), "{missing}");
        let malformed = run("include 42");
        assert!(malformed.contains("compile_error"), "{malformed}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
