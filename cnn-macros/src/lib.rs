//! The `cnn!` macro. Kept thin: it turns its tokens back into source text, hands
//! that to `cnn-compiler`, and returns the generated code or the compiler's
//! diagnostics placed on the macro's tokens.
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
//! Every error of the input is reported. An error is `[E003] message` on the
//! offending token, with the label, notes and help as `= note:` / `= help:`
//! lines, and each secondary place ("the 4x4x16 input comes from here") on its
//! own token as a `[note]` beside the error.
//!
//! How (stable Rust has no diagnostics API for proc macros,
//! `proc_macro::Diagnostic` is nightly-only): errors are built with
//! `proc-macro2-diagnostics`, which on stable turns an error into a
//! `compile_error!` carrying its unspanned notes and help, and each spanned
//! note into a `compile_error!` of its own on that note's token; that is the
//! only stable way to get a second span. `proc-macro-error2` was the other
//! candidate: on stable it drops a note's span (the note becomes text in the
//! error) and drops warnings altogether. Neither crate can emit a warning on
//! stable (`proc-macro2-diagnostics` would make it an error), so a warning is
//! the use of a `#[deprecated]` macro named after the warning
//! (`cnn_warning_W003_stride_skips_input`) whose note is the message: rustc
//! prints `use of deprecated macro `cnn_warning_W003_...`: <message>` on the
//! token, as a warning, and the path as written, so no internal name shows.

#![forbid(unsafe_code)]

use cnn_compiler::{build, codegen, render, Code, Diagnostic, Severity};
use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Span, TokenStream as TokenStream2, TokenTree};
use proc_macro2_diagnostics::SpanDiagnosticExt;
use quote::{format_ident, quote};

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

    /// The first token inside `start..end`, when the range holds text: the
    /// place a secondary span goes (an empty range, or one past the input, has
    /// no token of its own and stays text).
    fn token_in(&self, start: usize, end: usize) -> Option<Span> {
        self.tokens
            .iter()
            .find(|(s, e, _)| start < end && *s < end && start < *e)
            .map(|t| t.2)
    }
}

/// The code and message, as the first line of an error or warning.
fn headline(d: &Diagnostic) -> String {
    format!("[{}] {}", d.code.as_str(), d.message)
}

/// A diagnostic on the macro's own tokens: an error through
/// `proc-macro2-diagnostics` (see the crate docs), a warning through
/// [`warning_at`]. The label and the notes become `= note:` lines and the help a
/// `= help:` line; a secondary place that is a token of the input becomes a
/// spanned note on that token (errors only: a warning has a single span), any
/// other one a `= note:` line quoting its text.
fn diagnostic_tokens(map: &SourceMap, d: &Diagnostic) -> TokenStream2 {
    let (first, _) = map.spans(d.span.start, d.span.end);
    let mut notes = Vec::new();
    if !d.label.is_empty() {
        notes.push(d.label.clone());
    }
    let mut spanned = Vec::new();
    for (s, label) in &d.related {
        match (map.token_in(s.start, s.end), d.severity) {
            (Some(at), Severity::Error) => spanned.push((at, label.clone())),
            (at, _) => notes.push(quoted(&map.text, *s, at, label)),
        }
    }
    notes.extend(d.notes.iter().cloned());
    match d.severity {
        Severity::Error => {
            // Unspanned children first: on stable, the children after a spanned
            // one would be printed with that one, on its token.
            let mut e = first.error(headline(d));
            for n in notes {
                e = e.note(n);
            }
            if let Some(h) = &d.help {
                e = e.help(h.clone());
            }
            for (at, label) in spanned {
                e = e.span_note(at, label);
            }
            e.emit_as_item_tokens()
        }
        Severity::Warning => {
            // The same layout as the `= note:` lines of an error.
            let mut text = d.message.clone();
            for n in &notes {
                text.push_str(&format!("\n= note: {n}"));
            }
            if let Some(h) = &d.help {
                text.push_str(&format!("\n= help: {h}"));
            }
            warning_at(first, d.code, &text)
        }
    }
}

/// A secondary place as text: "`batchnorm` (line 10): the previous
/// batchnorm", without the line where rustc gave no position, or the label
/// alone when the place has no text.
fn quoted(source: &str, s: cnn_compiler::ir::Span, at: Option<Span>, label: &str) -> String {
    let line = at.map_or(0, |a| a.start().line);
    match source.get(s.start..s.end) {
        Some(t) if !t.trim().is_empty() && line > 0 => {
            format!("`{}` (line {line}): {label}", t.trim())
        }
        Some(t) if !t.trim().is_empty() => format!("`{}`: {label}", t.trim()),
        _ => label.to_string(),
    }
}

/// A warning rustc prints at `span` without failing the build: the use of a
/// `#[deprecated]` macro named after the warning, whose note is the text.
/// rustc names a deprecated macro by the path written at the use, so the
/// warning reads `use of deprecated macro `cnn_warning_W001_softmax_not_last`:
/// ...`. `macro_rules!` is scoped to its block: the same warning twice, or in
/// two invocations, defines two macros that never meet.
fn warning_at(span: Span, code: Code, text: &str) -> TokenStream2 {
    let words: String = code
        .name()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let name = format_ident!("cnn_warning_{}_{}", code.as_str(), words, span = span);
    quote! {
        const _: () = {
            #[deprecated(note = #text)]
            macro_rules! #name { () => {}; }
            #name!();
        };
    }
}

/// Item and expression forms: the macro's own tokens are the source.
fn expand_source(input: TokenStream2, expr: bool) -> TokenStream2 {
    let map = SourceMap::new(input);
    let compiled = cnn_compiler::compile(&map.text, EXPR_MODEL_NAME);
    let mut out = TokenStream2::new();
    for d in &compiled.diagnostics {
        out.extend(diagnostic_tokens(&map, d));
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
            _ => Span::call_site()
                .error("the expression form of cnn! takes one bare model body (`input HxWxC; ...`); use the item form `cnn! { model Name { ... } }` for named models")
                .emit_as_item_tokens(),
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
    for d in &file.compiled.diagnostics {
        // Spans cannot point into the file: the message names file, line and
        // column and quotes the line, and goes on the path literal.
        let msg = render::message_with_source(&rel, &source, d);
        match d.severity {
            Severity::Error => out.extend(span.error(msg).emit_as_item_tokens()),
            Severity::Warning => out.extend(warning_at(span, d.code, &msg)),
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
    use cnn_compiler::ir::Span;
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

    /// The `compile_error!` messages of an expansion, each with the line and
    /// column (0-based) where rustc would show it.
    fn errors(src: &str) -> Vec<(String, usize, usize)> {
        let mut found = Vec::new();
        let out = expand(TokenStream2::from_str(src).expect("tokens"));
        for tt in out {
            if let TokenTree::Group(g) = tt {
                if let Some(TokenTree::Literal(l)) = g.stream().into_iter().next() {
                    let msg = syn::parse_str::<syn::LitStr>(&l.to_string()).map(|s| s.value());
                    let at = g.span_open().start();
                    found.push((msg.unwrap_or_default(), at.line, at.column));
                }
            }
        }
        found
    }

    #[test]
    fn every_error_becomes_a_compile_error_with_code_and_help() {
        let out = run(
            "model Net { input 8x8x1; conv 4 9x9; maxpool 0; flatten; dense 10 relu; conv 2 3x3 }",
        );
        // Three errors, two of them with a place the shape comes from.
        assert_eq!(out.matches("compile_error").count(), 5, "{out}");
        assert_eq!(out.matches("[note]").count(), 2, "{out}");
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
    fn the_place_a_shape_comes_from_is_a_note_on_its_own_token() {
        let src = "model Net {\n  input 8x8x3;\n  conv 4 3x3 relu;\n  dense 10;\n}";
        let found = errors(src);
        assert_eq!(found.len(), 2, "{found:?}");
        let (error, line, column) = &found[0];
        assert!(
            error.starts_with("[E006] `dense` needs a vector"),
            "{error}"
        );
        // The label, the shape trail and the help are lines of the error; the
        // place is not quoted in it.
        assert!(
            error.contains("\n= note: this layer needs a flat vector"),
            "{error}"
        );
        assert!(error.contains("\n= help: insert `flatten;`"), "{error}");
        assert!(!error.contains("comes from here"), "{error}");
        assert_eq!((*line, *column), (4, 2), "on `dense`");
        let (note, line, column) = &found[1];
        assert_eq!(note, "[note] the 6x6x4 image comes from here");
        assert_eq!((*line, *column), (3, 2), "on `conv`");
    }

    #[test]
    fn a_place_without_a_token_stays_text() {
        let map = SourceMap::new(TokenStream2::from_str("input 8x8x1; conv 4 3x3").unwrap());
        assert!(map.token_in(0, 5).is_some());
        // Empty, between tokens, past the end: no token of its own.
        assert!(map.token_in(6, 6).is_none());
        assert!(map.token_in(5, 6).is_none());
        assert!(map.token_in(100, 104).is_none());
        let d = Diagnostic::new(Code::NeedsVector, "m", Span::new(13, 17), "l")
            .with_related(Span::new(5, 5), "the input of the block");
        let text = diagnostic_tokens(&map, &d).to_string();
        assert!(text.contains("= note: the input of the block"), "{text}");
        assert!(!text.contains("[note]"), "{text}");
    }

    #[test]
    fn warnings_do_not_stop_code_generation() {
        let out = run("model Net { input 8x8x1; conv 4 3x3 softmax; flatten; dense 2 }");
        for part in [
            "deprecated",
            "softmax is not on the last layer",
            "struct Net",
        ] {
            assert!(out.contains(part), "{part} in {out}");
        }
    }

    #[test]
    fn a_warning_is_named_after_its_code_and_kind() {
        let out = run("model Net { input 8x8x1; conv 4 3x3 softmax; maxpool 1 stride 2; relu; sigmoid; flatten; dense 2 }");
        for name in [
            "cnn_warning_W001_softmax_not_last",
            "cnn_warning_W002_two_activations_in_a_row",
            "cnn_warning_W003_stride_skips_input",
        ] {
            // Defined and used: `macro_rules ! NAME` and `NAME ! ()`.
            assert_eq!(out.matches(name).count(), 2, "{name} in {out}");
        }
        assert!(!out.contains("cnn_model_warning"), "{out}");
        // A warning has one span: its other place is quoted, with its line.
        assert!(out.contains("= note: `1` (line 1): the window"), "{out}");
    }

    /// The acceptance figure for a big model: expanding ResNet-50 (the macro's
    /// whole run: parse, check, generate) takes under 100 ms; asserted at 2 s so
    /// that a busy machine never fails it, printed for the record.
    #[test]
    fn resnet50_expands_quickly() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/models/resnet50.cnn"
        );
        let input = TokenStream2::from_str(&format!("include {path:?}")).unwrap();
        let start = std::time::Instant::now();
        let out = expand(input);
        let took = start.elapsed();
        let text = out.to_string();
        assert!(text.contains("pub struct ResNet50"), "{text}");
        assert!(!text.contains("compile_error"), "{text}");
        eprintln!(
            "resnet50.cnn: expanded in {:.1} ms to {} tokens, {} bytes as text",
            took.as_secs_f64() * 1e3,
            count(out),
            text.len()
        );
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    /// Every token, groups' contents included.
    fn count(ts: TokenStream2) -> usize {
        ts.into_iter()
            .map(|t| match t {
                TokenTree::Group(g) => 2 + count(g.stream()),
                _ => 1,
            })
            .sum()
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
