//! The one warning about how the runtime was built: without optimisations its
//! kernels run about 100 times slower (one epoch of 6,000 MNIST images: 184.7 s
//! against about 1 s), and nothing else would tell a user why.

use std::sync::Once;

/// What is printed, once per process, when the runtime was compiled with
/// `opt-level = 0` (a `cargo run` of a crate that depends on `cnn`, without the
/// profile lines below).
pub const UNOPTIMIZED_WARNING: &str =
    "warning: cnn-runtime was built without optimisations: expect training about 100x slower.
  Add to your Cargo.toml (dependencies optimised, your own code still quick to build):
    [profile.dev.package.\"*\"]
    opt-level = 3
  or build with --release.";

/// Whether this runtime was compiled with `opt-level = 0`.
pub const fn unoptimized() -> bool {
    cfg!(cnn_unoptimized)
}

/// Prints [`UNOPTIMIZED_WARNING`] on stderr the first time a model is made in
/// an unoptimised build; nothing in an optimised one.
pub(crate) fn warn_once() {
    static ONCE: Once = Once::new();
    if unoptimized() {
        ONCE.call_once(|| eprintln!("{UNOPTIMIZED_WARNING}"));
    }
}

#[cfg(test)]
mod tests {
    /// The workspace's test profile optimises (opt-level 3, with debug
    /// assertions): the switch follows the optimisation level, not
    /// `debug_assertions`. (`tests/debug_build_warns.rs` of the facade
    /// builds a crate at opt-level 0 and sees the warning.)
    #[test]
    fn an_optimised_build_does_not_warn() {
        let on = std::hint::black_box(super::unoptimized());
        assert!(!on, "the test profile is optimised");
    }
}
