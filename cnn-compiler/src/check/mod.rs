//! The checker: [`crate::ast::File`] -> [`crate::ir::Model`]s and diagnostics.
//!
//! Two stages per model. First every statement is resolved on its own (layer name,
//! positional arguments, options, defaults): syntax-level problems are reported
//! there and the statement is dropped. Then the shapes flow through the resolved
//! statements: each layer gets its input and output shape, padding split,
//! parameter shapes and FLOPs. After a shape error the shape is unknown, so the
//! following layers are still resolved (and their own errors reported) but not
//! shape-checked: one mistake gives one error, not a cascade.
//!
//! All size arithmetic is done in `u64` with checked operations, against the
//! runtime limits below; nothing can overflow or wrap.
//!
//! One job per file: `vocab` the words of the language, `show` how user
//! values appear in messages, `args` the values of arguments, `options` the
//! options after them, `resolve` the dispatch on a statement's
//! word (and `input`), `layers` every other statement on its own, `flow` one
//! model's statements in order, `shapes` the shape rules (`conv_shapes` those
//! with a window), `params` the parameter tensors, `window` the window
//! arithmetic, `warnings` W001-W004, `habits` what Keras and Python users
//! write (`keras` reads it). This file holds the entry point and the shared
//! state.

mod args;
mod conv_shapes;
mod flow;
mod graph;
mod habits;
mod keras;
mod layers;
mod options;
mod params;
mod resolve;
mod shapes;
mod show;
mod vocab;
mod warnings;
mod window;

pub use vocab::{did_you_mean, ACTIVATIONS, FLAGS, GRAPH, LAYERS, VALUE_OPTIONS};

use crate::ast::{File, Stmt};
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::{self, Span};
use crate::lines::LineIndex;
use show::upper_first;
use std::collections::HashSet;
use vocab::RUST_KEYWORDS;

/// Largest value of any single number in a model: an input axis, a filter or unit
/// count, a window, a stride or a dilation (2^20).
pub const MAX_DIM: u64 = 1 << 20;
/// Largest number of values in one sample of any layer's output (2^31): the
/// runtime indexes within a sample with 32-bit integers.
pub const MAX_ELEMENTS: u64 = 1 << 31;
/// Largest number of parameters of a layer, and of a whole model (2^31, 8 GiB of f32).
pub const MAX_PARAMS: u64 = 1 << 31;

/// State shared by the checking of all models of one file: where lines start
/// (messages say "on line N") and the diagnostics found so far.
struct Checker {
    /// Line starts of the source text.
    lines: LineIndex,
    /// Every diagnostic pushed so far, in the order found.
    diags: Vec<Diagnostic>,
    /// The file's block definitions.
    blocks: Vec<graph::BlockDef>,
    /// The blocks being unfolded, outermost first (a cycle is a recursion).
    uses: Vec<String>,
    /// Layers of the current model so far, every repeat and use unfolded.
    unfolded: u64,
    /// The current model passed [`graph::MAX_UNFOLDED`]: checking it stops.
    aborted: bool,
    /// Code, span and message of every diagnostic pushed: a statement
    /// checked once per `repeat` copy or block use reports each problem once.
    seen: HashSet<(Code, usize, usize, String)>,
    /// While a help's text is tried ([`Checker::valid_text`]): how many
    /// diagnostics it gave, which are not recorded.
    trying: Option<usize>,
}

/// Checks every model of a parsed file. Returns the models without errors and
/// all diagnostics (sorted by position).
pub(crate) fn check_file(
    src: &str,
    file: &File,
    default_name: &str,
) -> (Vec<ir::Model>, Vec<Diagnostic>) {
    let mut ck = Checker {
        lines: LineIndex::new(src),
        diags: Vec::new(),
        blocks: Vec::new(),
        uses: Vec::new(),
        unfolded: 0,
        aborted: false,
        seen: HashSet::new(),
        trying: None,
    };
    ck.definitions(&file.blocks);
    let mut models = Vec::new();
    let mut seen: Vec<(String, Span)> = Vec::new();
    for m in &file.models {
        let mut ok = true;
        let name = match &m.name {
            Some((n, span)) => {
                if RUST_KEYWORDS.contains(&n.as_str()) {
                    ck.syntax(
                        format!("model name `{n}` is a Rust keyword"),
                        *span,
                        "not usable as a type name",
                        format!("rename the model, e.g. `model {}Net`", upper_first(n)),
                    );
                    ok = false;
                }
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                    ck.push(
                        Diagnostic::new(
                            Code::DuplicateModel,
                            format!("duplicate model `{n}`"),
                            *span,
                            "a second model with this name",
                        )
                        .with_related(*first, "first defined here")
                        .with_help("rename one of the two models"),
                    );
                    ok = false;
                } else {
                    seen.push((n.clone(), *span));
                }
                n.clone()
            }
            None => default_name.to_string(),
        };
        let errors_before = ck.error_count();
        (ck.unfolded, ck.aborted) = (0, false);
        let model = ck.model(m, name);
        if ok && ck.error_count() == errors_before {
            if let Some(model) = model {
                models.push(model);
            }
        }
    }
    let mut diags = ck.diags;
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    (models, diags)
}

impl Checker {
    /// Records a diagnostic (sorted by position at the end), unless the same
    /// one (code, span, message) was recorded already: the statements of a
    /// block are checked once per copy and per use.
    fn push(&mut self, d: Diagnostic) {
        if let Some(n) = &mut self.trying {
            *n += 1;
            return;
        }
        let key = (d.code, d.span.start, d.span.end, d.message.clone());
        if self.seen.insert(key) {
            self.diags.push(d);
        }
    }
    /// Records a syntax error: message, span, label and help, as
    /// [`Diagnostic::new`] and [`Diagnostic::with_help`] take them.
    fn syntax(
        &mut self,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Diagnostic::new(Code::Syntax, message, span, label).with_help(help));
    }
    /// Errors so far: a model is kept only if checking it added none.
    fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
    /// 1-based line of a span's start.
    fn line(&self, span: Span) -> usize {
        self.lines.line(span.start)
    }

    /// "after conv 8 3x3 on line 4": where a shape came from, for messages.
    fn origin(&self, s: &Stmt) -> String {
        // A graph statement is named by its word, not its whole text.
        let text = if s.groups.is_empty() {
            s.text()
        } else {
            s.head.text.clone()
        };
        format!("after {text} on line {}", self.line(s.span))
    }
}
