//! Compile-time behaviour of `cnn!` (trybuild): every error code on the right
//! token (`tests/ui/fail/*.stderr` are the rustc output users see), several
//! mistakes reported together, and programs with only warnings that compile.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
