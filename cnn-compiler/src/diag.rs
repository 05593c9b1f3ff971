//! Diagnostics: stable codes, spans, help lines; rendered like rustc or as JSON.

use crate::ir::Span;
use serde::Serialize;

/// Whether a diagnostic fails the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The model is rejected: no code is generated for it.
    Error,
    /// Reported, but the model is still compiled.
    Warning,
}

/// Stable diagnostic codes (`cnnc explain CODE`). Never renumber: tools and tests
/// depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    // errors
    /// E001: not valid text of the language (unknown word, missing `;`, bad token).
    Syntax,
    /// E002: a model that does not start with exactly one `input`.
    MissingInput,
    /// E003: a `valid` window larger than its input.
    WindowTooBig,
    /// E004: a count, input axis, window, stride or dilation of 0.
    ZeroOrEmpty,
    /// E005: conv or pool after the data became a vector.
    NeedsImage,
    /// E006: dense on an image (no `flatten` before it).
    NeedsVector,
    /// E007: an option given twice, or two that conflict.
    OptionTwice,
    /// E008: past a runtime limit (number, output size, parameters).
    TooLarge,
    /// E009: two models with one name.
    DuplicateModel,
    /// E010: `groups` that does not divide the input channels or the filters.
    GroupsNotDividing,
    /// E011: `pad P` together with `same`.
    PadWithSame,
    /// E012: a number outside its option's range (a dropout rate outside
    /// [0, 1), a momentum outside [0, 1], an epsilon of 0, ...).
    OutOfRange,
    BranchesDoNotJoin,
    UnknownBlock,
    BlockValues,
    RecursiveBlock,
    TooDeep,
    // warnings
    /// W001: softmax on a layer other than the last.
    SoftmaxNotLast,
    /// W002: an activation statement right after another activation.
    DoubleActivation,
    /// W003: a stride longer than the window, so some input is never read.
    StrideSkipsInput,
    /// W004: a `dropout` or `batchnorm` where it has no effect.
    NoEffect,
}

/// A diagnostic, independent of how it is shown (terminal, JSON, `compile_error!`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Always `code.severity()`: kept as a field so that serialized forms carry it.
    pub severity: Severity,
    /// The stable code (`E003`).
    pub code: Code,
    /// One line, lowercase start, no trailing period (rustc style).
    pub message: String,
    /// The offending token: where the caret goes.
    pub span: Span,
    /// Label under the caret (e.g. "this 5x5 window needs at least 5x5 input").
    pub label: String,
    /// Secondary spans with labels (e.g. where the shape came from).
    pub related: Vec<(Span, String)>,
    /// `note:` lines (e.g. the shape trail).
    pub notes: Vec<String>,
    /// `help:` line: a concrete way out.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with its code's severity, no related spans, notes or help:
    /// the builder methods below add those.
    pub fn new(
        code: Code,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: code.severity(),
            code,
            message: message.into(),
            span,
            label: label.into(),
            related: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Sets the `help:` line.
    pub fn with_help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }

    /// Adds a `note:` line.
    pub fn with_note(mut self, n: impl Into<String>) -> Self {
        self.notes.push(n.into());
        self
    }

    /// Adds a secondary span with its label.
    pub fn with_related(mut self, s: Span, l: impl Into<String>) -> Self {
        self.related.push((s, l.into()));
        self
    }
}

impl Code {
    /// Every code, in order.
    pub const ALL: [Code; 21] = [
        Code::Syntax,
        Code::MissingInput,
        Code::WindowTooBig,
        Code::ZeroOrEmpty,
        Code::NeedsImage,
        Code::NeedsVector,
        Code::OptionTwice,
        Code::TooLarge,
        Code::DuplicateModel,
        Code::GroupsNotDividing,
        Code::PadWithSame,
        Code::OutOfRange,
        Code::BranchesDoNotJoin,
        Code::UnknownBlock,
        Code::BlockValues,
        Code::RecursiveBlock,
        Code::TooDeep,
        Code::SoftmaxNotLast,
        Code::DoubleActivation,
        Code::StrideSkipsInput,
        Code::NoEffect,
    ];

    /// The stable code shown as `error[E003]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E001",
            Code::MissingInput => "E002",
            Code::WindowTooBig => "E003",
            Code::ZeroOrEmpty => "E004",
            Code::NeedsImage => "E005",
            Code::NeedsVector => "E006",
            Code::OptionTwice => "E007",
            Code::TooLarge => "E008",
            Code::DuplicateModel => "E009",
            Code::GroupsNotDividing => "E010",
            Code::PadWithSame => "E011",
            Code::OutOfRange => "E012",
            Code::BranchesDoNotJoin => "E013",
            Code::UnknownBlock => "E014",
            Code::BlockValues => "E015",
            Code::RecursiveBlock => "E016",
            Code::TooDeep => "E017",
            Code::SoftmaxNotLast => "W001",
            Code::DoubleActivation => "W002",
            Code::StrideSkipsInput => "W003",
            Code::NoEffect => "W004",
        }
    }

    /// Short name, as in the language reference's table.
    pub fn name(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::MissingInput => "missing input",
            Code::WindowTooBig => "window too big",
            Code::ZeroOrEmpty => "zero or empty",
            Code::NeedsImage => "needs image",
            Code::NeedsVector => "needs vector",
            Code::OptionTwice => "option twice",
            Code::TooLarge => "too large",
            Code::DuplicateModel => "duplicate model",
            Code::GroupsNotDividing => "groups not dividing",
            Code::PadWithSame => "pad with same",
            Code::OutOfRange => "out of range",
            Code::BranchesDoNotJoin => "branches do not join",
            Code::UnknownBlock => "unknown block",
            Code::BlockValues => "block values",
            Code::RecursiveBlock => "recursive block",
            Code::TooDeep => "too deep",
            Code::SoftmaxNotLast => "softmax not last",
            Code::DoubleActivation => "two activations in a row",
            Code::StrideSkipsInput => "stride skips input",
            Code::NoEffect => "no effect",
        }
    }

    /// Fixed per code: `W` codes are warnings, `E` codes errors.
    pub fn severity(self) -> Severity {
        match self {
            Code::SoftmaxNotLast
            | Code::DoubleActivation
            | Code::StrideSkipsInput
            | Code::NoEffect => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// Parses `E003`, `e003` or the short name.
    pub fn parse(s: &str) -> Option<Code> {
        let s = s.trim();
        Code::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s) || c.name().eq_ignore_ascii_case(s))
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
