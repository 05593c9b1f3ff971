//! Habits from Keras and Python, each reported once, on its own tokens, with
//! the language's text for it: keyword arguments (`padding='same'`), tuples
//! (`(3, 3)`), quoted words, calls (`conv(32, 3)`, `Conv2D(32, (3, 3))`),
//! Keras's class names, and assignments (`x = conv ...`). Without this they
//! came out as cascades of "unexpected token" errors, and an assignment got
//! the help "write `x =; conv ...`", which is no valid text either.
//!
//! A help shows a statement only after [`Checker::valid_text`] has read it
//! as valid text; otherwise it shows the statement's form.

use super::keras::{self, Fix, Py};
use super::show::{shown, shown_long};
use super::vocab::{accepts, activation_of, ACTIVATIONS};
use super::Checker;
use crate::ast::{Stmt, Token, TokenKind};
use crate::ir::Span;

/// The longest text a help suggests, in bytes.
const MAX_SUGGESTION: usize = 400;

/// One habit among a statement's arguments: its tokens `from..to`.
struct Habit {
    from: usize,
    to: usize,
    /// As written (tokens joined, one space for any gap between them).
    text: String,
    kind: Kind,
}

enum Kind {
    /// `padding=same`: the key, and the value when it reads as Python.
    Kwarg(String, Option<Py>),
    /// `(3, 3)`, as the language writes the size: `3x3`.
    Tuple(String),
    /// `'same'`: the word.
    Quoted(String),
    /// `conv(32, 3)`: the call's arguments, when they read as Python.
    Call(Option<Vec<keras::Arg>>),
}

/// Tokens as written: joined, one space for any gap between two.
fn joined(tokens: &[Token]) -> String {
    let mut s = String::new();
    for (k, t) in tokens.iter().enumerate() {
        if k > 0 && t.span.start > tokens[k - 1].span.end {
            s.push(' ');
        }
        s.push_str(&t.text);
    }
    s
}

/// Tokens in one tuple or call at most: Keras's longest calls have a dozen
/// arguments, and the bound keeps a statement of 100,000 `(` linear.
const MAX_GROUP: usize = 64;

/// The end (exclusive) of the tokens from `from` that close every bracket
/// opened in them (`(3,` `3` `)` is one tuple); `None` when they do not
/// within [`MAX_GROUP`] tokens.
fn group_end(tokens: &[Token], from: usize) -> Option<usize> {
    let mut depth = 0i64;
    for (k, t) in tokens.iter().enumerate().skip(from).take(MAX_GROUP) {
        for c in t.text.chars() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ => {}
            }
        }
        if depth <= 0 {
            return Some(k + 1);
        }
    }
    None
}

/// The end of a value starting at token `i` (a bracketed group spans
/// tokens; a lone `(` that never closes runs to the end).
fn value_end(tokens: &[Token], i: usize, text: &str) -> usize {
    if text.starts_with(['(', '[']) {
        group_end(tokens, i).unwrap_or(tokens.len())
    } else {
        i + 1
    }
}

/// The habits among the arguments of `s`.
fn habits(s: &Stmt) -> Vec<Habit> {
    let a = &s.args;
    let mut out = Vec::new();
    let mut i = 0;
    // `conv(32, 3)`: a `(` right after the word is a call.
    if let Some(t) = a.first() {
        if t.text.starts_with('(') && t.span.start == s.head.span.end {
            let to = group_end(a, 0).unwrap_or(a.len());
            let text = joined(&a[..to]);
            let kind = Kind::Call(keras::call(&text));
            out.push(Habit {
                from: 0,
                to,
                text,
                kind,
            });
            i = to;
        }
    }
    while i < a.len() {
        let t = &a[i];
        let eq = a
            .get(i + 1)
            .filter(|n| n.text.starts_with('=') && !n.text.starts_with("=="));
        if let (TokenKind::Word, Some(eq)) = (t.kind, eq) {
            // The value: the rest of the `=` token (`=same`), or the token
            // after a lone `=`.
            let (to, value) = if eq.text.len() > 1 {
                let to = value_end(a, i + 1, &eq.text[1..]);
                (to, Some(joined(&a[i + 1..to])[1..].to_string()))
            } else if let Some(v) = a.get(i + 2) {
                let to = value_end(a, i + 2, &v.text);
                (to, Some(joined(&a[i + 2..to])))
            } else {
                (i + 2, None)
            };
            let kind = Kind::Kwarg(t.text.clone(), value.and_then(|v| keras::value(&v)));
            out.push(Habit {
                from: i,
                to,
                text: joined(&a[i..to]),
                kind,
            });
            i = to;
            continue;
        }
        if t.kind == TokenKind::Bad && t.text.starts_with(['(', '[']) {
            if let Some(to) = group_end(a, i) {
                let text = joined(&a[i..to]);
                if let Some(d) = keras::value(&text).and_then(|v| v.dims()) {
                    out.push(Habit {
                        from: i,
                        to,
                        text,
                        kind: Kind::Tuple(d),
                    });
                    i = to;
                    continue;
                }
            }
        }
        if t.kind == TokenKind::Bad {
            if let Some(Py::Str(w)) = keras::value(&t.text) {
                let word = w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if word {
                    out.push(Habit {
                        from: i,
                        to: i + 1,
                        text: t.text.clone(),
                        kind: Kind::Quoted(w),
                    });
                }
            }
        }
        i += 1;
    }
    out
}

/// How statement `kw` is written, for a help line.
fn form_of(kw: &str) -> String {
    match (accepts(kw), kw) {
        (Some(a), _) => a.form.to_string(),
        (None, "leaky_relu") => "leaky_relu [A]".to_string(),
        (None, "add") => "add { A } { B } ...".to_string(),
        (None, "concat") => "concat { A } { B } ...".to_string(),
        _ => kw.to_string(),
    }
}

/// Whether statement `kw` takes the option `piece` (`same`, `stride 2`,
/// `relu`) after its numbers.
fn takes(kw: &str, piece: &str) -> bool {
    let word = piece.split(' ').next().unwrap_or(piece);
    accepts(kw).is_some_and(|a| {
        a.options.contains(&word) || (a.activation && activation_of(word).is_some())
    })
}

/// The text replacing a habit in statement `kw`: `None` when the language
/// has nothing for it.
fn piece(kw: &str, h: &Habit) -> Option<String> {
    match &h.kind {
        Kind::Kwarg(key, val) => match keras::fix(kw, key, val.as_ref()?)? {
            Fix::Slot(_, t) => Some(t),
            Fix::Opt(t) => takes(kw, &t).then_some(t),
            Fix::Default | Fix::Input(_) => Some(String::new()),
            Fix::Head(_) => None,
        },
        Kind::Tuple(d) => Some(d.clone()),
        Kind::Quoted(w) => Some(w.clone()),
        Kind::Call(args) => keras::translate(kw, args.as_ref()?),
    }
}

impl Checker {
    /// Whether `text` is valid statements of the language: each resolves on
    /// its own without a diagnostic (shapes aside, which need the model). A
    /// help shows text of its own making only after this said yes. Records
    /// nothing.
    pub(super) fn valid_text(&mut self, text: &str) -> bool {
        // Inside a check already: no second level (and no recursion). No
        // statement worth suggesting is long, and the bound keeps helps
        // cheap on a statement of 100,000 tokens.
        if self.trying.is_some() || text.len() > MAX_SUGGESTION {
            return false;
        }
        let Ok(file) = crate::parse::parse(text) else {
            return false;
        };
        let stmts = match &file.models[..] {
            [m] if m.name.is_none() && file.blocks.is_empty() => &m.stmts,
            _ => return false,
        };
        self.trying = Some(0);
        let mut ok = !stmts.is_empty();
        for s in stmts {
            ok &= s.groups.is_empty() && !self.is_graph(s) && self.resolve(s).is_some();
        }
        let pushed = self.trying.take().unwrap_or(1);
        ok && pushed == 0
    }

    /// Reports the habits among the arguments of `s`, a layer or activation
    /// statement; `true` when there was one (the statement is then dropped,
    /// as any statement with an error, and its other tokens not reported).
    pub(super) fn keras_habits(&mut self, s: &Stmt) -> bool {
        let found = habits(s);
        if found.is_empty() {
            return false;
        }
        let kw = s.head.text.clone();
        // The whole statement written the language's way, if it is valid.
        let mut words = vec![kw.clone()];
        let mut at = 0;
        let mut complete = true;
        for h in &found {
            words.extend(s.args[at..h.from].iter().map(|t| t.text.clone()));
            match piece(&kw, h) {
                Some(t) if matches!(h.kind, Kind::Call(_)) => words = vec![t],
                Some(t) if !t.is_empty() => words.push(t),
                Some(_) => {}
                None => complete = false,
            }
            at = h.to;
        }
        words.extend(s.args[at..].iter().map(|t| t.text.clone()));
        let text = words.join(" ");
        let fixed = (complete && self.valid_text(&text)).then_some(text);
        for h in &found {
            let span = Span::new(s.args[h.from].span.start, s.args[h.to - 1].span.end);
            let (message, label, help) = self.describe(&kw, h, fixed.as_deref());
            self.syntax(message, span, label, help);
        }
        true
    }

    /// Message, label and help of one habit in statement `kw`; `fixed` is
    /// the whole statement written the language's way, when valid.
    fn describe(&mut self, kw: &str, h: &Habit, fixed: Option<&str>) -> (String, String, String) {
        let text = shown_long(&h.text);
        let form = if accepts(kw).is_none() && kw != "leaky_relu" {
            format!("`{kw}` takes no arguments")
        } else {
            format!("`{kw}` is written `{}`", form_of(kw))
        };
        // "write `same`: `conv 32 3x3 same`", or the form without a statement.
        let write = |lead: String| match fixed {
            Some(f) => format!("{lead}: `{f}`"),
            None => lead,
        };
        match &h.kind {
            Kind::Kwarg(key, val) => {
                let fix = val.as_ref().and_then(|v| keras::fix(kw, key, v));
                let help = match fix {
                    Some(Fix::Opt(t)) if takes(kw, &t) && key == "activation" => {
                        write(format!("write `{t}` after the layer's numbers"))
                    }
                    Some(Fix::Opt(t)) if takes(kw, &t) => write(format!("write `{t}`")),
                    Some(Fix::Opt(t)) => {
                        let word = t.split(' ').next().unwrap_or(&t);
                        format!("`{kw}` takes no `{word}`; {form}")
                    }
                    Some(Fix::Slot(_, t)) => write(format!("write `{t}` in its place")),
                    Some(Fix::Default) => {
                        let why = match key.as_str() {
                            "name" => "a layer is named by its place in the model",
                            "data_format" => "the language is always channels-last",
                            _ => "that is the default",
                        };
                        write(format!("remove it ({why})"))
                    }
                    Some(Fix::Input(shape)) if self.valid_text(&format!("input {shape}")) => {
                        write(format!(
                            "the shape is the model's first statement, `input {shape}`: remove it here"
                        ))
                    }
                    _ if !keras::known_key(key) => {
                        format!("the language has no `{key}`; {form}")
                    }
                    // Keras's `mish`, `softsign`, `exponential`, ...
                    _ if key == "activation" => match val.as_ref().and_then(|v| v.word()) {
                        Some(w) => format!(
                            "the language has no activation `{}`; the activations are {}",
                            shown(w),
                            ACTIVATIONS.join(", ")
                        ),
                        None => form,
                    },
                    _ => form,
                };
                (
                    format!("unexpected `{text}`: options are words, not `name=value`"),
                    "a Keras keyword argument".to_string(),
                    help,
                )
            }
            Kind::Tuple(d) => {
                let help = match fixed {
                    Some(_) => write(format!("write `{d}`")),
                    None => format!("sizes are written with `x`: `{text}` is `{d}`"),
                };
                (
                    format!("unexpected tuple `{text}`"),
                    "a Python tuple".to_string(),
                    help,
                )
            }
            Kind::Quoted(w) => {
                let help = if takes(kw, w) {
                    write(format!("write `{w}`"))
                } else {
                    format!("words are written without quotes; {form}")
                };
                (
                    format!("unexpected `{text}`: words are not quoted"),
                    "a quoted word".to_string(),
                    help,
                )
            }
            Kind::Call(_) => {
                let help = match fixed {
                    Some(f) => {
                        format!("write the arguments after the word, separated by spaces: `{f}`")
                    }
                    None => {
                        format!("write the arguments after the word, separated by spaces; {form}")
                    }
                };
                (
                    format!("unexpected `{text}` after `{kw}`: statements are not calls"),
                    "a call".to_string(),
                    help,
                )
            }
        }
    }

    /// An unknown statement word that is a Keras class (`Conv2D`,
    /// `layers.Dense`): reported on the word with its twin here, and with
    /// the call after it (`Conv2D(32, (3, 3))`) translated when it can be.
    /// The call's own tokens get no error of their own. `false` when the
    /// word is no Keras class.
    pub(super) fn keras_class(&mut self, s: &Stmt) -> bool {
        let word = s.head.text.as_str();
        let Some((class, twin)) = keras::class_of(word) else {
            return false;
        };
        // The statement in the language: the call translated, or the same
        // arguments after the twin's word.
        let text = match s.args.first() {
            Some(t) if t.text.starts_with('(') => group_end(&s.args, 0)
                .filter(|to| *to == s.args.len())
                .and_then(|_| keras::translate(twin, &keras::call(&joined(&s.args))?)),
            _ if !twin.is_empty() => {
                let mut words = vec![twin.to_string()];
                words.extend(s.args.iter().map(|t| t.text.clone()));
                Some(words.join(" "))
            }
            _ => None,
        };
        let text = text.filter(|t| self.valid_text(t));
        let help = match (text, twin) {
            (Some(t), "") => format!(
                "the language's twin of Keras's `{class}` is the activation's own word: write `{t}`"
            ),
            (Some(t), _) => {
                format!("the language's twin of Keras's `{class}` is `{twin}`: write `{t}`")
            }
            (None, "") => format!(
                "the language's twin of Keras's `{class}` is the activation's own word, e.g. `relu`"
            ),
            (None, _) => format!(
                "the language's twin of Keras's `{class}` is `{twin}`, written `{}`",
                form_of(twin)
            ),
        };
        self.syntax(
            format!("unknown layer `{}`", shown(word)),
            s.head.span,
            "a Keras class name",
            help,
        );
        true
    }

    /// `x = conv 32 3x3`: Keras's functional style names each output; the
    /// language has no variables (a statement takes the output of the one
    /// before it). Reported once on `x =`; the statement after the `=` is
    /// what is checked in its place. `None` when `s` is no assignment; no
    /// statement when nothing follows the `=`.
    pub(super) fn unassign(&mut self, s: &Stmt) -> Option<Vec<Stmt>> {
        let eq = s.args.first()?;
        if s.head.kind != TokenKind::Word || !eq.text.starts_with('=') || eq.text.starts_with("==")
        {
            return None;
        }
        // `=conv` is one token: its rest is read again by the grammar.
        let mut tokens = retokenize(&eq.text[1..], eq.span.start + 1);
        tokens.extend(s.args[1..].iter().cloned());
        let rest = (!tokens.is_empty()).then(|| {
            let head = tokens.remove(0);
            Stmt {
                span: Span::new(head.span.start, s.span.end),
                head,
                args: tokens,
                groups: s.groups.clone(),
            }
        });
        let name = &s.head.text;
        let lead = "each statement takes the output of the one before it";
        let help = match &rest {
            Some(r) if r.groups.is_empty() && self.valid_text(&r.text()) => {
                format!("{lead}: drop `{name} =` and write `{}`", r.text())
            }
            _ => format!("{lead}: drop `{name} =`"),
        };
        self.syntax(
            format!("unexpected `{name} =`: the language has no variables"),
            Span::new(s.head.span.start, eq.span.start + 1),
            "an assignment",
            help,
        );
        Some(rest.into_iter().collect())
    }
}

/// The tokens of `text`, found at byte `at` of the source, as the grammar
/// reads them.
fn retokenize(text: &str, at: usize) -> Vec<Token> {
    if text.is_empty() {
        return Vec::new();
    }
    let moved = |t: &Token| Token {
        span: Span::new(t.span.start + at, t.span.end + at),
        ..t.clone()
    };
    match crate::parse::parse(text) {
        Ok(f) => f
            .models
            .iter()
            .flat_map(|m| &m.stmts)
            .flat_map(|s| std::iter::once(&s.head).chain(&s.args))
            .map(moved)
            .collect(),
        Err(_) => vec![Token {
            kind: TokenKind::Bad,
            text: text.to_string(),
            span: Span::new(at, at + text.len()),
        }],
    }
}
