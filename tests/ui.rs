//! Compile-time behaviour of `cnn!` (trybuild): every error code on the right
//! token (`tests/ui/fail/*.stderr` are the rustc output users see), several
//! mistakes reported together, and programs with only warnings that compile.

#[test]
fn ui() {
    // trybuild's project builds every dependency again in its own target dir;
    // without debug info that is a third of the disk. (The only test in this
    // binary, so no other thread reads the environment.)
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
