//! Compiles every `models/*.cnn` to `$OUT_DIR/<stem>.rs`. A shape error in a
//! model fails the build with the diagnostic (file, line, column, help).
fn main() {
    if let Err(e) = cnn_compiler::build::compile_dir("models") {
        // The diagnostics were printed already; this line makes cargo show them.
        panic!("model errors:\n{e}");
    }
}
