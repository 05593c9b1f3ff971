//! Compiles the vendored official `onnx.proto` into Rust types with prost.
//! The machine has no `protoc`, so protox (a protobuf compiler written in
//! Rust) parses the file into the descriptor set prost-build generates from.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/onnx.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new()
        // The proto's comments hold indented text that rustdoc would take for
        // Rust code to test; the types stay private, so no docs are lost.
        .disable_comments(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
