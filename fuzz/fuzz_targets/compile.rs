//! Fuzzes the front end's single entry point, `cnn_compiler::compile`, the same
//! one the robustness test (`cnn-compiler/tests/robustness.rs`) drives: any text
//! must give models or diagnostics, never a panic, a hang or unbounded memory.
//! Diagnostics are also rendered, since spans from every path go through there.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let c = cnn_compiler::compile(src, "Fuzz");
    for d in &c.diagnostics {
        assert!(d.span.start <= d.span.end && d.span.end <= src.len());
    }
    assert!(c.has_errors() || !c.models.is_empty());
    let _ = cnn_compiler::render("fuzz.cnn", src, &c.diagnostics, false);
});
