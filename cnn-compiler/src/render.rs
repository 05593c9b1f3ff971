//! The one place that turns a [`Diagnostic`] into something to show:
//!
//! - [`render`]: rustc-style text with the source line and carets (via
//!   codespan-reporting), for `cnnc`, build scripts and the tests;
//! - [`to_json`]: the same fields as JSON, for editors and tools;
//! - [`message`] and [`message_with_source`]: the text the `cnn!` macro puts in
//!   a `compile_error!` (rustc adds `error: ` and, for [`message`], the carets).
//!
//! Shared so that what is snapshotted is what users see, whatever the front end.

use crate::diag::{Diagnostic, Severity};
use crate::ir::Span;
use crate::lines::{bom_len, LineIndex};
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term::{self, termcolor};
use std::ops::Range;

/// One source text for codespan, with the crate's own line breaks
/// ([`crate::lines`]): codespan's `SimpleFile` knows only `\n`, so a file with
/// `\r` line endings would be one line, printed whole under every error.
struct SourceFile<'a> {
    name: &'a str,
    source: &'a str,
    lines: LineIndex,
}

impl<'a> Files<'a> for SourceFile<'a> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, FilesError> {
        Ok(self.name)
    }

    fn source(&'a self, (): ()) -> Result<&'a str, FilesError> {
        Ok(self.source)
    }

    fn line_index(&'a self, (): (), byte_index: usize) -> Result<usize, FilesError> {
        Ok(self.lines.index(byte_index))
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, FilesError> {
        // One past the last line is the empty end of the text, as codespan's
        // own files answer.
        match self.lines.range(line_index) {
            Some(r) => Ok(r),
            None if line_index == self.lines.count() => Ok(self.source.len()..self.source.len()),
            None => Err(FilesError::LineTooLarge {
                given: line_index,
                max: self.lines.count() - 1,
            }),
        }
    }
}

/// Clamps a span into the source, past a byte-order mark and onto char
/// boundaries, so that rendering can never fail on a span that came from
/// elsewhere (e.g. the macro's token map) and no label starts before its line.
fn clamp(source: &str, s: Span) -> Range<usize> {
    let fix = |mut i: usize| {
        i = i.min(source.len()).max(bom_len(source));
        while !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(s.start);
    let end = fix(s.end).max(start);
    start..end
}

/// The codespan form: primary label under the span, secondary labels, then the
/// notes and help as codespan notes (printed `= note: ...`, `= help: ...`).
fn to_codespan(source: &str, d: &Diagnostic) -> CsDiagnostic<()> {
    let sev = match d.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let mut labels = vec![Label::primary((), clamp(source, d.span)).with_message(d.label.clone())];
    for (s, l) in &d.related {
        labels.push(Label::secondary((), clamp(source, *s)).with_message(l.clone()));
    }
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(h) = &d.help {
        notes.push(format!("help: {h}"));
    }
    CsDiagnostic::new(sev)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders diagnostics like rustc: `error[E003]: ...`, `--> file:line:col`, the
/// source line with carets under the offending token, notes and a help line.
/// `color` adds ANSI colours (for terminals). Each diagnostic ends with a blank line.
pub fn render(file_name: &str, source: &str, diags: &[Diagnostic], color: bool) -> String {
    let file = SourceFile {
        name: file_name,
        source,
        lines: LineIndex::new(source),
    };
    let config = term::Config {
        chars: term::Chars::ascii(),
        ..Default::default()
    };
    let mut buf = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    for d in diags {
        let cs = to_codespan(source, d);
        if term::emit(&mut buf, &config, &file, &cs).is_err() {
            // Unreachable with clamped spans; fall back to a plain line rather than panic.
            let _ = std::io::Write::write_all(
                &mut buf,
                format!(
                    "{}[{}]: {}\n",
                    severity_word(d.severity),
                    d.code.as_str(),
                    d.message
                )
                .as_bytes(),
            );
        }
    }
    String::from_utf8_lossy(buf.as_slice()).into_owned()
}

/// `error` / `warning`, as the text and JSON forms print it.
fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A diagnostic as one `compile_error!` message whose span rustc shows itself
/// (the macro maps the diagnostic's span to its tokens): `[E003] message`, the
/// label, then `= note:` lines (a related span quoted from `source` when it has
/// text there) and the `= help:` line.
pub fn message(source: &str, d: &Diagnostic) -> String {
    let mut s = format!("[{}] {}", d.code.as_str(), d.message);
    if !d.label.is_empty() {
        s.push_str(&format!("\n  | {}", d.label));
    }
    for (span, label) in &d.related {
        let text = source
            .get(span.start.min(source.len())..span.end.min(source.len()))
            .unwrap_or("");
        if text.is_empty() {
            s.push_str(&format!("\n  = note: {label}"));
        } else {
            s.push_str(&format!("\n  = note: `{text}`: {label}"));
        }
    }
    for n in &d.notes {
        s.push_str(&format!("\n  = note: {n}"));
    }
    if let Some(h) = &d.help {
        s.push_str(&format!("\n  = help: {h}"));
    }
    s
}

/// A diagnostic as one `compile_error!` message when its span cannot be shown
/// by rustc (the source is a file, not the macro's tokens): `[E003] message`
/// followed by the [`render`]ed form, which names file, line and column and
/// quotes the line.
pub fn message_with_source(file_name: &str, source: &str, d: &Diagnostic) -> String {
    let rendered = render(file_name, source, std::slice::from_ref(d), false);
    format!(
        "[{}] {}\n{}",
        d.code.as_str(),
        d.message,
        rendered.trim_end()
    )
}

/// 1-based line and column (in chars) of a byte offset, lines and columns
/// counted as [`crate::lines`] counts them.
pub fn line_col(source: &str, pos: usize) -> (usize, usize) {
    LineIndex::new(source).line_col(source, pos)
}

/// A span as line/column (1-based; columns count chars) plus byte offsets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JsonRelated {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in chars.
    pub column: usize,
    /// Byte offsets.
    pub span: Span,
    /// What this place has to do with the diagnostic.
    pub label: String,
}

/// One diagnostic in JSON form (fields serialize in this order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JsonDiagnostic {
    /// `error` or `warning`
    pub severity: &'static str,
    /// `E003`
    pub code: &'static str,
    /// `window too big`
    pub name: &'static str,
    /// One line, rustc style.
    pub message: String,
    /// The file name as given to [`to_json`].
    pub file: String,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (chars) of the span's start.
    pub column: usize,
    /// 1-based line of the span's end.
    pub end_line: usize,
    /// 1-based column (chars) of the span's end.
    pub end_column: usize,
    /// byte offsets
    pub span: Span,
    /// Text under the caret.
    pub label: String,
    /// Secondary places (e.g. where the shape came from).
    pub related: Vec<JsonRelated>,
    /// `note:` lines (e.g. the shape trail).
    pub notes: Vec<String>,
    /// The `help:` line.
    pub help: Option<String>,
}

/// The diagnostics in JSON form, for editors and tests (serialize the result
/// with `serde_json`). Lines and columns are 1-based, columns count chars; spans
/// are byte offsets.
pub fn to_json(file_name: &str, source: &str, diags: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    let lines = LineIndex::new(source);
    let line_col = |pos| lines.line_col(source, pos);
    diags
        .iter()
        .map(|d| {
            let (line, column) = line_col(d.span.start);
            let (end_line, end_column) = line_col(d.span.end);
            JsonDiagnostic {
                severity: severity_word(d.severity),
                code: d.code.as_str(),
                name: d.code.name(),
                message: d.message.clone(),
                file: file_name.to_string(),
                line,
                column,
                end_line,
                end_column,
                span: d.span,
                label: d.label.clone(),
                related: d
                    .related
                    .iter()
                    .map(|(s, l)| {
                        let (line, column) = line_col(s.start);
                        JsonRelated {
                            line,
                            column,
                            span: *s,
                            label: l.clone(),
                        }
                    })
                    .collect(),
                notes: d.notes.clone(),
                help: d.help.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    #[test]
    fn message_quotes_related_spans_and_ends_with_help() {
        let src = "input 4x4x1; conv 2 5x5;";
        let d = Diagnostic::new(Code::WindowTooBig, "too big", Span::new(20, 23), "here")
            .with_related(Span::new(6, 11), "from here")
            .with_related(Span::new(99, 99), "nowhere")
            .with_note("a note")
            .with_help("a help");
        assert_eq!(
            message(src, &d),
            "[E003] too big\n  | here\n  = note: `4x4x1`: from here\n  = note: nowhere\n  = note: a note\n  = help: a help"
        );
        let m = message_with_source("m.cnn", src, &d);
        assert!(m.starts_with("[E003] too big\nerror[E003]: too big"), "{m}");
        assert!(m.contains("m.cnn:1:21"), "{m}");
    }

    /// A CR-only file prints the error's own line (codespan's `SimpleFile`
    /// would print the whole file as line 1); a byte-order mark is not a column.
    #[test]
    fn cr_line_endings_and_a_bom() {
        let src = "\u{feff}input 4x4x1;\rconv 2 5x5;\r";
        let at = src.find("5x5").unwrap();
        let d = Diagnostic::new(Code::WindowTooBig, "too big", Span::new(at, at + 3), "here");
        let r = render("m.cnn", src, &[d], false);
        assert!(r.contains("m.cnn:2:8\n"), "{r}");
        assert!(r.contains("\n2 | conv 2 5x5;\n"), "{r}");
        assert!(!r.contains("input"), "{r}");
        assert_eq!(line_col(src, 3), (1, 1));
        let d = Diagnostic::new(Code::Syntax, "bom", Span::new(0, 8), "here");
        let r = render("m.cnn", src, &[d], false);
        assert!(
            r.contains("m.cnn:1:1\n") && r.contains("\n1 | input 4x4x1;\n"),
            "{r}"
        );
    }
}
