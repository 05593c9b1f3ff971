//! Front end and code generator of the `cnn` model language.
//!
//! One grammar (`grammar/cnn.pest`), one checker, one code generator, shared by the
//! `cnn!` macro and the `cnnc` command. Data flows one way:
//! text -> [`ast`] -> [`check`] -> [`ir::Model`] -> [`codegen`] tokens.

pub mod diag;
pub mod ir;

pub use diag::{Code, Diagnostic, Severity};
