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
    /// The shown part of each long line ([`clip`]), by line index, for the
    /// diagnostic being rendered.
    clipped: Vec<(usize, Range<usize>)>,
}

/// Lines longer than this (in bytes) are shown clipped, so that an error in a
/// generated one-line file (a 10,000-deep nesting is 60 KB on one line)
/// prints the part around its token, not the whole line.
const LONG_LINE: usize = 200;
/// Bytes kept on each side of the labels in a clipped line.
const CONTEXT: usize = 60;

impl SourceFile<'_> {
    /// Sets the clipped lines for labels at `spans`: on a long line, the part
    /// from `CONTEXT` bytes before its first label to `CONTEXT` after its
    /// last (on char boundaries); a long line without labels (context codespan
    /// may print) shows its first `LONG_LINE` bytes. Returns a note naming
    /// what was left out, if anything was.
    fn clip(&mut self, spans: &[Range<usize>]) -> Option<String> {
        self.clipped.clear();
        let src = self.source;
        let floor = |i| floor_boundary(src, i);
        let ceil = |mut i: usize| {
            while !src.is_char_boundary(i) {
                i += 1;
            }
            i
        };
        let mut lines: Vec<usize> = spans
            .iter()
            .flat_map(|r| [self.lines.index(r.start), self.lines.index(r.end)])
            .collect();
        lines.sort_unstable();
        lines.dedup();
        // Lines codespan may show around a multi-line label, too.
        let (first, last) = (lines.first().copied()?, lines.last().copied()?);
        let mut notes = Vec::new();
        for line in first.saturating_sub(3)..=(last + 1).min(self.lines.count() - 1) {
            let Some(whole) = self.lines.range(line) else {
                continue;
            };
            let text = src[whole.clone()].trim_end_matches(['\n', '\r']);
            let end = whole.start + text.len();
            if text.len() <= LONG_LINE {
                continue;
            }
            let ends = spans.iter().flat_map(|r| [r.start, r.end]);
            let (lo, hi) = ends
                .filter(|&b| whole.contains(&b) || b == whole.end)
                .fold((usize::MAX, 0), |(lo, hi), b| (lo.min(b), hi.max(b)));
            let shown = if lo == usize::MAX {
                whole.start..floor(whole.start + LONG_LINE)
            } else {
                floor(lo.saturating_sub(CONTEXT).max(whole.start))..ceil((hi + CONTEXT).min(end))
            };
            let col = |b: usize| self.lines.line_col(src, b).1;
            notes.push(format!(
                "line {} is {} characters long; shown: columns {} to {}",
                line + 1,
                text.chars().count(),
                col(shown.start),
                col(shown.end) - 1
            ));
            self.clipped.push((line, shown));
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
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

    fn column_number(
        &'a self,
        (): (),
        _line_index: usize,
        byte_index: usize,
    ) -> Result<usize, FilesError> {
        // From the line's real start, whatever part of it is shown.
        Ok(self.lines.line_col(self.source, byte_index).1)
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, FilesError> {
        if let Some((_, shown)) = self.clipped.iter().find(|(l, _)| *l == line_index) {
            return Ok(shown.clone());
        }
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
    let fix = |i: usize| floor_boundary(source, i.min(source.len()).max(bom_len(source)));
    let start = fix(s.start);
    let end = fix(s.end).max(start);
    start..end
}

/// The last char boundary at or before byte `i` (`i <= src.len()`).
fn floor_boundary(src: &str, mut i: usize) -> usize {
    while !src.is_char_boundary(i) {
        i -= 1;
    }
    i
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
    let mut file = SourceFile {
        name: file_name,
        source,
        lines: LineIndex::new(source),
        clipped: Vec::new(),
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
        let mut cs = to_codespan(source, d);
        let spans: Vec<Range<usize>> = cs.labels.iter().map(|l| l.range.clone()).collect();
        if let Some(note) = file.clip(&spans) {
            cs.notes.push(format!("note: {note}"));
        }
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

    /// A long line is shown around the error's token, with the real column in
    /// the header and a note saying what is shown; short lines stay whole.
    #[test]
    fn long_lines_are_clipped_around_the_token() {
        let src = format!(
            "input 4x4x1; {}conv 2 5x5;{}\nflatten;",
            "é ".repeat(300),
            " ".repeat(500)
        );
        let at = src.find("5x5").unwrap();
        let d = Diagnostic::new(Code::WindowTooBig, "too big", Span::new(at, at + 3), "here");
        let r = render("m.cnn", &src, &[d], false);
        let col = line_col(&src, at).1;
        assert_eq!(col, 621);
        assert!(r.contains(&format!("m.cnn:1:{col}\n")), "{r}");
        assert!(r.len() < 700, "{} bytes:\n{r}", r.len());
        assert!(r.contains("é conv 2 5x5;"), "{r}");
        assert!(!r.contains("input"), "{r}");
        assert!(
            r.contains("note: line 1 is 1124 characters long; shown: columns 578 to 683"),
            "{r}"
        );
        let caret = r.lines().find(|l| l.contains("^^^")).unwrap();
        let text = r.lines().find(|l| l.contains("conv 2 5x5")).unwrap();
        let chars_before = |l: &str, b: usize| l[..b].chars().count();
        assert_eq!(
            chars_before(caret, caret.find('^').unwrap()),
            chars_before(text, text.find("5x5").unwrap()),
            "{r}"
        );
        // A short file is untouched.
        let short = "input 4x4x1; conv 2 5x5;";
        let d = Diagnostic::new(Code::WindowTooBig, "too big", Span::new(20, 23), "here");
        let r = render("m.cnn", short, &[d], false);
        assert!(
            r.contains("1 | input 4x4x1; conv 2 5x5;") && !r.contains("characters long"),
            "{r}"
        );
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
