//! What the compiler's oracle tests share.

use cnn_compiler::{compile, ir, Severity};

/// The one model of `src`, which must compile without errors (`what` names
/// the case in a failure).
pub fn only_model(src: &str, what: &str) -> ir::Model {
    let c = compile(src, "Golden");
    let errors: Vec<_> = c
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{what}: unexpected errors {errors:#?}");
    assert_eq!(c.models.len(), 1, "{what}");
    c.models.into_iter().next().unwrap()
}
