//! The `cnn!` macro. Kept thin: it turns its tokens back into source text, hands
//! that to `cnn-compiler`, and returns the generated code or `compile_error!`s.
