//! The syntax tree: what the grammar recognised, with a span on every node.
//!
//! The tree is deliberately untyped below the statement level (a layer name and a
//! list of classified tokens): deciding what a layer accepts is the checker's job,
//! so that it can explain every problem in the user's words and keep going.

use crate::ir::Span;

/// A parsed source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The `block NAME P... { ... }` definitions, in source order (still
    /// unchecked statements headed `block`).
    pub blocks: Vec<Stmt>,
    /// The models in source order. A bare body is one model with `name: None`.
    pub models: Vec<ModelAst>,
}

/// One `model NAME { ... }` block, or a bare body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAst {
    /// `pub model`.
    pub public: bool,
    /// The name and its span; `None` for a bare body.
    pub name: Option<(String, Span)>,
    /// The `model NAME` header, or the whole body for a bare body.
    pub header_span: Span,
    /// The whole block (or body).
    pub span: Span,
    /// The statements in order.
    pub stmts: Vec<Stmt>,
}

/// One statement: `conv 32 3x3 same relu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// The leading token. Normally a [`TokenKind::Word`] (the layer name); any other
    /// kind means the statement does not start with a layer name.
    pub head: Token,
    /// The tokens after the head (before its first block).
    pub args: Vec<Token>,
    /// The blocks `{ ... }` the statement ends in (graph statements).
    pub groups: Vec<Group>,
    /// The whole statement, without the `;`.
    pub span: Span,
}

/// One `{ ... }` of a graph statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The `shortcut` word written before it, if any.
    pub label: Option<Token>,
    /// The statements inside (none: the identity).
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// What kind of token the grammar saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `32`
    Int,
    /// `3x3`, `150x150x3`
    Dims,
    /// `0.5`
    Decimal,
    /// `same`, `relu`, `conv`, ...
    Word,
    /// anything else (`5x`, `-1`, `,`): always an error.
    Bad,
}

/// A token with its text and span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token's class.
    pub kind: TokenKind,
    /// The token as written.
    pub text: String,
    /// Byte range in the source.
    pub span: Span,
}

impl Stmt {
    /// The statement as written, tokens joined by single spaces (for messages such
    /// as "after maxpool 2 on line 6").
    pub fn text(&self) -> String {
        let mut s = self.head.text.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.text);
        }
        for g in &self.groups {
            if let Some(l) = &g.label {
                s.push(' ');
                s.push_str(&l.text);
            }
            s.push_str(" {");
            for (k, st) in g.stmts.iter().enumerate() {
                s.push_str(if k == 0 { " " } else { "; " });
                s.push_str(&st.text());
            }
            s.push_str(" }");
        }
        s
    }
}
