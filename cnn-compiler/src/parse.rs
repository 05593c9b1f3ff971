//! Source text -> [`crate::ast::File`], with pest, keeping a byte span on every node.
//!
//! Parse errors are translated from pest's rule names into the user's words
//! ("expected `}` to close model LeNet5, found end of file").

use crate::ast::{File, Group, ModelAst, Stmt, Token, TokenKind};
use crate::diag::{Code, Diagnostic, Severity};
use crate::ir::Span;
use crate::lines::bom_len;
use pest::iterators::Pair;
use pest::Parser;

// The grammar lives at the repository root (`grammar/cnn.pest`), next to its
// conformance corpus, because it defines the language for every front door, not
// just this crate. pest_derive resolves the path relative to this crate's `src/`.
// Consequence: `cargo package` of cnn-compiler alone would not find it; publishing
// would need a build step that copies the grammar into the crate (not a concern
// for this workspace).
#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/cnn.pest"]
struct CnnParser;

fn span_of(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

/// How parsing can go on after a syntax error, to find the errors after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Blank out a stray `{` or `}` (same length, so every offset stays valid).
    Blank(Span),
    /// Close a model block left open at the end of the text.
    CloseAtEnd,
    /// Nothing sensible: stop at this error.
    Stop,
}

/// Parses `source` into a syntax tree, or returns the one syntax error pest found.
pub fn parse(source: &str) -> Result<File, Box<Diagnostic>> {
    parse_once(&blank_bom(source)).map_err(|(d, _)| d)
}

/// `source` with a leading byte-order mark read as three spaces: the mark is
/// no part of the text (editors add it on saving), and blanking it in place
/// keeps every span an offset into the original text, as
/// [`parse_recovering`]'s blanked braces do. A U+FEFF further on is a char
/// like any other.
fn blank_bom(source: &str) -> String {
    let n = bom_len(source);
    let mut text = source.to_string();
    text.replace_range(..n, &" ".repeat(n));
    text
}

/// Parses with error recovery: after a stray or missing brace, parsing goes on
/// (up to a few times) so that the errors after it are found in the same pass.
/// Returns the syntax errors, and the tree and the patched text it was parsed
/// from when parsing eventually succeeded. The patched text has the same lines
/// and offsets as `source` (braces are blanked; a missing `}` is appended), so
/// spans into it are spans into `source` (a byte-order mark is blanked too).
pub fn parse_recovering(source: &str) -> (Vec<Diagnostic>, Option<(File, String)>) {
    let mut text = blank_bom(source);
    let mut errors = Vec::new();
    // Bounded: each round removes or adds one brace.
    for _ in 0..16 {
        match parse_once(&text) {
            Ok(file) => return (errors, Some((file, text))),
            Err((d, recovery)) => {
                errors.push(*d);
                match recovery {
                    Recovery::Blank(span) => {
                        text.replace_range(span.start..span.end, &" ".repeat(span.end - span.start))
                    }
                    // The newline ends a trailing line comment first.
                    Recovery::CloseAtEnd => text.push_str("\n}"),
                    Recovery::Stop => break,
                }
            }
        }
    }
    (errors, None)
}

/// Deepest nesting of braces (a model block counts as one level): far beyond
/// any network's blocks, and shallow enough that the recursive descent of
/// the parser and the checker stays well inside any thread's stack.
pub const MAX_DEPTH: usize = 64;

/// The first brace nested deeper than [`MAX_DEPTH`], found in one linear
/// scan that skips comments (pest would recurse on it).
fn too_deep(source: &str) -> Option<Span> {
    let b = source.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                // As the grammar's comment: a `\r` ends it too.
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // An unterminated comment is pest's to report.
                i = source[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |k| i + 2 + k + 1);
            }
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(Span::new(i, i + 1));
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_once(source: &str) -> Result<File, (Box<Diagnostic>, Recovery)> {
    if let Some(span) = too_deep(source) {
        let d = Diagnostic::new(
            Code::TooDeep,
            format!("blocks nested more than {MAX_DEPTH} deep"),
            span,
            "this `{` is too deep",
        )
        .with_help(format!(
            "a model nests at most {MAX_DEPTH} levels of `{{ }}`: name a block with `block NAME {{ ... }}` and use it instead"
        ));
        return Err((Box::new(d), Recovery::Stop));
    }
    let mut pairs = CnnParser::parse(Rule::file, source).map_err(|e| syntax_error(source, &e))?;
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut models = Vec::new();
    let mut blocks = Vec::new();
    for p in file.into_inner() {
        match p.as_rule() {
            Rule::models => {
                for m in p.into_inner() {
                    match m.as_rule() {
                        Rule::model => models.push(model(m)),
                        Rule::definition => blocks.extend(m.into_inner().map(stmt)),
                        _ => {}
                    }
                }
            }
            Rule::body => {
                let span = span_of(&p);
                let mut stmts = body(p);
                // A bare body's definitions are its first statements.
                let defs = stmts
                    .iter()
                    .take_while(|s| s.head.text == "block" && !s.groups.is_empty())
                    .count();
                blocks.extend(stmts.drain(..defs));
                let span = match stmts.first() {
                    Some(first) if defs > 0 => Span::new(first.span.start, span.end),
                    _ => span,
                };
                models.push(ModelAst {
                    public: false,
                    name: None,
                    header_span: span,
                    span,
                    stmts,
                });
            }
            _ => {}
        }
    }
    Ok(File { blocks, models })
}

fn model(p: Pair<'_, Rule>) -> ModelAst {
    let span = span_of(&p);
    let mut public = false;
    let mut name = None;
    let mut header_end = span.start;
    let mut stmts = Vec::new();
    for q in p.into_inner() {
        match q.as_rule() {
            Rule::pub_kw => public = true,
            Rule::name => {
                let s = span_of(&q);
                header_end = s.end;
                name = Some((q.as_str().to_string(), s));
            }
            Rule::body => stmts = body(q),
            _ => {}
        }
    }
    ModelAst {
        public,
        name,
        header_span: Span::new(span.start, header_end),
        span,
        stmts,
    }
}

fn body(p: Pair<'_, Rule>) -> Vec<Stmt> {
    p.into_inner()
        .filter(|q| q.as_rule() == Rule::stmt)
        .map(stmt)
        .collect()
}

fn token(q: &Pair<'_, Rule>) -> Token {
    let kind = match q.as_rule() {
        Rule::int => TokenKind::Int,
        Rule::dims => TokenKind::Dims,
        Rule::decimal => TokenKind::Decimal,
        Rule::word | Rule::layer_name | Rule::shortcut_kw => TokenKind::Word,
        _ => TokenKind::Bad,
    };
    Token {
        kind,
        text: q.as_str().to_string(),
        span: span_of(q),
    }
}

fn stmt(p: Pair<'_, Rule>) -> Stmt {
    let span = span_of(&p);
    let mut inner = p.into_inner();
    let head = token(&inner.next().expect("a statement has at least one token"));
    let mut args = Vec::new();
    let mut groups = Vec::new();
    let mut label = None;
    for q in inner {
        match q.as_rule() {
            Rule::group => {
                let gspan = span_of(&q);
                let stmts = q
                    .into_inner()
                    .find(|r| r.as_rule() == Rule::body)
                    .map(body)
                    .unwrap_or_default();
                groups.push(Group {
                    label: label.take(),
                    stmts,
                    span: gspan,
                });
            }
            Rule::shortcut_kw => label = Some(token(&q)),
            _ => args.push(token(&q)),
        }
    }
    // The statement ends with its last token or block (pest's match also
    // holds the whitespace it skipped looking for a block).
    let end = groups
        .last()
        .map(|g| g.span.end)
        .or(args.last().map(|t| t.span.end))
        .unwrap_or(head.span.end);
    Stmt {
        head,
        args,
        groups,
        span: Span::new(span.start, end),
    }
}

/// The offending text at `pos`: a token up to the next separator, or one char.
fn found_at(source: &str, pos: usize) -> (String, Span) {
    let rest = &source[pos..];
    if rest.is_empty() {
        return ("end of file".to_string(), Span::new(pos, pos));
    }
    let first = rest.chars().next().unwrap_or(' ');
    let len = if first.is_alphanumeric() || first == '_' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len())
    } else {
        first.len_utf8()
    };
    let text = &rest[..len];
    (
        format!("`{}`", text.escape_debug()),
        Span::new(pos, pos + len),
    )
}

fn syntax_error(source: &str, e: &pest::error::Error<Rule>) -> (Box<Diagnostic>, Recovery) {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
    .min(source.len());
    let (found, mut span) = found_at(source, pos);
    if pos == source.len() {
        // At the end of the file, point just after the last token (as rustc does
        // for an unclosed delimiter), not at an empty last line.
        let end = source.trim_end().len();
        span = Span::new(end, end);
    }
    let mk = |message: String, label: &str, help: Option<String>, span: Span| Diagnostic {
        severity: Severity::Error,
        code: Code::Syntax,
        message,
        span,
        label: label.to_string(),
        related: Vec::new(),
        notes: Vec::new(),
        help,
    };
    if source[pos..].starts_with("/*") {
        let d = mk(
            "unterminated block comment".into(),
            "this comment is never closed",
            Some("close the comment with `*/`".into()),
            span,
        );
        return (Box::new(d), Recovery::Stop);
    }
    let positives: Vec<Rule> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut expected: Vec<&str> = Vec::new();
    let mut push = |s: &'static str| {
        if !expected.contains(&s) {
            expected.push(s);
        }
    };
    for r in &positives {
        match r {
            Rule::name => push("a model name"),
            Rule::lbrace => push("`{`"),
            Rule::rbrace => push("`}`"),
            Rule::semi => push("`;`"),
            Rule::stmt | Rule::layer_name => push("a layer such as conv, maxpool, dense"),
            Rule::dims | Rule::int | Rule::decimal | Rule::word | Rule::bad => push("an argument"),
            Rule::model | Rule::model_kw | Rule::pub_kw => push("`model NAME { ... }`"),
            Rule::EOI => push("the end of the file"),
            _ => {}
        }
    }
    let expected_text = match expected.len() {
        0 => "something else".to_string(),
        1 => expected[0].to_string(),
        n => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
    };
    let help = if positives.contains(&Rule::name) {
        Some("name the model with a Rust identifier, e.g. `model LeNet5 { ... }`".to_string())
    } else if found == "`}`" && !positives.contains(&Rule::rbrace) {
        Some("remove this `}`: it closes no model block".to_string())
    } else if found == "`{`" && !positives.contains(&Rule::lbrace) {
        Some("`{` only opens a model block: write `model NAME { ... }`".to_string())
    } else if positives.contains(&Rule::rbrace) && pos == source.len() {
        Some("close the model block with `}`".to_string())
    } else if positives.contains(&Rule::lbrace) {
        Some("the statements of a model go inside `{ ... }`".to_string())
    } else if positives.contains(&Rule::EOI)
        && (source[pos..].starts_with("model") || source[pos..].starts_with("pub"))
    {
        Some(
            "a file holds either model blocks or one bare model body, not both: \
             wrap the statements above in `model NAME { ... }`"
                .to_string(),
        )
    } else {
        Some("statements look like `conv 32 3x3 same relu;`, separated by `;`".to_string())
    };
    // A brace where none can be is better named for what it is than by the long
    // list of what could have come instead.
    let stray_brace = !positives.contains(&Rule::name)
        && (found == "`}`" && !positives.contains(&Rule::rbrace)
            || found == "`{`" && !positives.contains(&Rule::lbrace));
    let message = if stray_brace {
        format!("unexpected {found}")
    } else {
        format!("expected {expected_text}, found {found}")
    };
    let recovery = if stray_brace {
        Recovery::Blank(span)
    } else if pos == source.len() && positives.contains(&Rule::rbrace) {
        Recovery::CloseAtEnd
    } else {
        Recovery::Stop
    };
    (
        Box::new(mk(message, "unexpected here", help, span)),
        recovery,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_body_and_tokens() {
        let f = parse("input 28x28x1; conv 6 5x5 same tanh; maxpool 2 ;").unwrap();
        assert_eq!(f.models.len(), 1);
        let m = &f.models[0];
        assert!(m.name.is_none());
        assert_eq!(m.stmts.len(), 3);
        assert_eq!(m.stmts[1].head.text, "conv");
        assert_eq!(m.stmts[1].head.span, Span::new(15, 19));
        let kinds: Vec<_> = m.stmts[1].args.iter().map(|t| t.kind).collect();
        use TokenKind::*;
        assert_eq!(kinds, vec![Int, Dims, Word, Word]);
        assert_eq!(m.stmts[1].text(), "conv 6 5x5 same tanh");
    }

    #[test]
    fn model_blocks_and_comments() {
        let src = "// c\npub model A { input 1x1x1 } /* x */ model B { input 2x2x1; flatten; }";
        let f = parse(src).unwrap();
        assert_eq!(f.models.len(), 2);
        assert!(f.models[0].public);
        assert_eq!(f.models[1].name.as_ref().unwrap().0, "B");
        assert_eq!(f.models[1].stmts.len(), 2);
    }

    #[test]
    fn bad_tokens_are_kept() {
        let f = parse("input 5x; conv -1 3x3x").unwrap();
        let s = &f.models[0].stmts;
        assert_eq!(s[0].args[0].kind, TokenKind::Bad);
        assert_eq!(s[1].args[0].kind, TokenKind::Bad);
        assert_eq!(s[1].args[1].kind, TokenKind::Bad);
    }

    /// The checker's word lists and the grammar's vocabulary rules agree.
    #[test]
    fn vocabulary_matches_the_grammar() {
        use crate::check::{ACTIVATIONS, FLAGS, GRAPH, LAYERS, VALUE_OPTIONS};
        let whole = |rule: Rule, w: &str| {
            CnnParser::parse(rule, w).is_ok_and(|mut p| p.next().unwrap().as_str() == w)
        };
        let (paddings, flags) = FLAGS.split_at(2);
        assert_eq!(paddings, ["same", "valid"]);
        let lists: [(Rule, &[&str]); 6] = [
            (Rule::layer_keyword, &LAYERS),
            (Rule::activation, &ACTIVATIONS),
            (Rule::padding, paddings),
            (Rule::option_keyword, &VALUE_OPTIONS),
            (Rule::flag, flags),
            (Rule::graph_keyword, &GRAPH),
        ];
        let all: Vec<&str> = lists.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        for (rule, list) in lists {
            for w in &all {
                assert_eq!(whole(rule, w), list.contains(w), "{rule:?} on {w}");
            }
            assert!(!whole(rule, "maxpooling") && !whole(rule, "Conv"));
        }
    }

    /// Decimals (with a fraction, an exponent or both) are one token; an
    /// integer stays an integer, and a sign or a dangling exponent is a bad token.
    #[test]
    fn decimals_with_exponents() {
        let f =
            parse("batchnorm epsilon 1.001e-5 momentum 0.9; dropout 1e-3; x 2E+2 32 1e -1e-3 1.5x")
                .unwrap();
        let kinds = |i: usize| -> Vec<(TokenKind, String)> {
            f.models[0].stmts[i]
                .args
                .iter()
                .map(|t| (t.kind, t.text.clone()))
                .collect()
        };
        use TokenKind::*;
        assert_eq!(
            kinds(0),
            [
                (Word, "epsilon".into()),
                (Decimal, "1.001e-5".into()),
                (Word, "momentum".into()),
                (Decimal, "0.9".into())
            ]
        );
        assert_eq!(kinds(1), [(Decimal, "1e-3".into())]);
        assert_eq!(
            kinds(2),
            [
                (Decimal, "2E+2".into()),
                (Int, "32".into()),
                (Bad, "1e".into()),
                (Bad, "-1e-3".into()),
                (Bad, "1.5x".into())
            ]
        );
    }

    #[test]
    fn errors_in_words() {
        let e = parse("model A { input 1x1x1").unwrap_err();
        assert!(e.message.contains("`}`"), "{}", e.message);
        assert!(!e.message.contains("rbrace"));
        let e = parse("input 1x1x1; }").unwrap_err();
        assert_eq!(e.span, Span::new(13, 14));
        let e = parse("/* open").unwrap_err();
        assert!(e.message.contains("unterminated"));
    }
}
