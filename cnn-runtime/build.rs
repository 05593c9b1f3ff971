//! Tells the runtime whether it is compiled without optimisations (Cargo's
//! `OPT_LEVEL` of this package's profile is 0), so that it can say so once at
//! run time: an unoptimised runtime trains about 100 times slower, and a crate
//! that depends on `cnn` gets exactly that in a plain `cargo run`.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(cnn_unoptimized)");
    println!("cargo::rerun-if-env-changed=OPT_LEVEL");
    if std::env::var("OPT_LEVEL").is_ok_and(|l| l == "0") {
        println!("cargo::rustc-cfg=cnn_unoptimized");
    }
}
