//! How values appear in messages: `3x3`, `28x28x1`, a user's token escaped and
//! cut to a readable length.

use crate::ir::Shape;

/// `[3, 5]` as `3x5`.
pub(super) fn fmt2(v: [u64; 2]) -> String {
    format!("{}x{}", v[0], v[1])
}

/// A shape as written in the language: `28x28x1`, or `10` for a vector.
pub(super) fn shape_short(s: &Shape) -> String {
    match *s {
        Shape::Image { h, w, c } => format!("{h}x{w}x{c}"),
        Shape::Vector { n } => format!("{n}"),
    }
}

/// A user's token as shown in a message: control and invisible characters
/// escaped (quotes are not: `padding='same'` reads as written), long tokens
/// cut.
pub(super) fn shown(t: &str) -> String {
    abbreviate(&escaped(t))
}

/// A user's text of several tokens (`kernel_initializer='he_normal'`) as
/// [`shown`], but cut only past 60 characters.
pub(super) fn shown_long(t: &str) -> String {
    let t = escaped(t);
    if t.chars().count() <= 60 {
        t
    } else {
        abbreviate(&t)
    }
}

/// Control and invisible characters escaped, quotes kept.
fn escaped(t: &str) -> String {
    t.chars()
        .map(|c| match c {
            '\'' | '"' => c.to_string(),
            _ => c.escape_debug().to_string(),
        })
        .collect()
}

/// Long tokens (a 10,000-digit number) are cut in messages.
pub(super) fn abbreviate(t: &str) -> String {
    if t.len() <= 24 {
        return t.to_string();
    }
    let cut = (0..=20).rev().find(|i| t.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... ({} characters)", &t[..cut], t.chars().count())
}

/// `what` with its indefinite article: `a stride`, `an upsampling size`.
pub(super) fn a(what: &str) -> String {
    let vowel = what.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {what}", if vowel { "an" } else { "a" })
}

/// `net` -> `Net` (for a suggested model name).
pub(super) fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
