//! Front end and code generator of the `cnn` model language.
//!
//! One grammar (`grammar/cnn.pest`), one checker, one code generator, shared by the
//! `cnn!` macro and the `cnnc` command. Data flows one way:
//! text -> [`ast`] -> [`check`] -> [`ir::Model`] -> [`codegen`] tokens.

pub mod diag;
pub mod ir;

pub use diag::{Code, Diagnostic, Severity};

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
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Parses and checks `source`, reporting every error and warning found in one pass.
///
/// `default_name` names a bare model body (statements without `model NAME { }`):
/// `cnnc` passes the file stem in UpperCamelCase; the macro's expression form passes
/// a name of its own. Never panics, whatever the input.
pub fn compile(source: &str, default_name: &str) -> Compiled {
    let _ = (source, default_name);
    Compiled::default()
}
