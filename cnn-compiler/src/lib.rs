//! Front end and code generator of the `cnn` model language.
//!
//! One grammar (`grammar/cnn.pest`), one checker, one code generator, shared by the
//! `cnn!` macro and the `cnnc` command. Data flows one way:
//! text -> [`ast`] -> [`check`] -> [`ir::Model`] -> [`codegen`] tokens.

#![forbid(unsafe_code)]

pub mod ast;
pub mod build;
pub mod check;
pub mod codegen;
pub mod diag;
pub mod explain;
pub mod ir;
pub mod keras_program;
pub mod label;
pub mod lines;
pub mod lower;
pub mod parse;
pub mod render;
pub mod summary;

pub use diag::{Code, Diagnostic, Severity};
pub use render::{render, to_json};

/// Everything the front end found in one source text.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The models that checked without error (a model with an error is left out).
    pub models: Vec<ir::Model>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Parses and checks `source`, reporting every error and warning found in one pass.
///
/// `default_name` names a bare model body (statements without `model NAME { }`):
/// `cnnc` passes the file stem in UpperCamelCase; the macro's expression form passes
/// a name of its own. Never panics, whatever the input.
pub fn compile(source: &str, default_name: &str) -> Compiled {
    let (mut diagnostics, parsed) = parse::parse_recovering(source);
    let mut models = Vec::new();
    if let Some((file, text)) = parsed {
        let (checked, more) = check::check_file(&text, &file, default_name);
        // After a syntax error the tree came from a patched text: report what the
        // checker finds in it, but give no model.
        if diagnostics.is_empty() {
            models = checked;
        }
        diagnostics.extend(more);
    }
    // A patched text may be longer than the source by a closing `}`.
    for d in &mut diagnostics {
        d.span.start = d.span.start.min(source.len());
        d.span.end = d.span.end.min(source.len());
        for (s, _) in &mut d.related {
            s.start = s.start.min(source.len());
            s.end = s.end.min(source.len());
        }
    }
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    Compiled {
        models,
        diagnostics,
    }
}

/// The model name for a bare body read from a file: the file stem in
/// UpperCamelCase (`lenet5` -> `Lenet5`, `shapes_small` -> `ShapesSmall`), made a
/// valid Rust identifier (`Model` is put in front of a leading digit; other
/// characters separate words).
pub fn model_name_from_stem(stem: &str) -> String {
    let mut out = String::new();
    for word in stem.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(f) = chars.next() {
            out.push(f.to_ascii_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Model");
    }
    out
}
