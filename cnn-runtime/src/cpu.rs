//! The one switch between the AVX-512 kernels and the portable ones.
//!
//! Every kernel with an AVX-512 build (hand-written intrinsics, or a portable
//! body compiled again under `#[target_feature]`) asks [`avx512`] when it
//! dispatches; nothing else tests the CPU. Setting the environment variable
//! `CNN_PORTABLE=1` makes it answer `false`, so that every kernel takes its
//! portable path: that is how CI tests those paths on an AVX-512 machine.

use std::sync::OnceLock;

/// Whether kernels may use AVX-512: the CPU has every feature the AVX-512 builds
/// enable (AVX-512 F, BW, VL and DQ, AVX2, FMA) and `CNN_PORTABLE` is unset,
/// empty or `0`. Both are read once per process (the first call).
#[inline]
pub fn avx512() -> bool {
    #[cfg(test)]
    if forced_portable() {
        return false;
    }
    static WIDE: OnceLock<bool> = OnceLock::new();
    *WIDE.get_or_init(|| detected() && !portable_requested())
}

/// Whether the environment asks for the portable kernels (`CNN_PORTABLE` set to
/// anything but the empty string or `0`).
fn portable_requested() -> bool {
    std::env::var_os("CNN_PORTABLE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether the CPU has the features of the kernels' `#[target_feature]` builds.
fn detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f")
            && has!("avx512bw")
            && has!("avx512vl")
            && has!("avx512dq")
            && has!("avx2")
            && has!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a kernel that runs its body compiled for AVX-512 where [`avx512`]
/// allows, and as built (baseline x86-64) elsewhere:
///
/// ```text
/// avx512_twin! {
///     /// Docs of the kernel.
///     pub fn kernel<const N: usize>(x: &[f32], y: &mut [f32])
///         => "avx512f,avx2,fma", { /* body */ }
/// }
/// ```
///
/// The body becomes an `#[inline(always)]` fn, called by a `#[target_feature]`
/// twin (enabling the listed features, which [`avx512`] must check) and by the
/// portable path, so both are the same code, compiled twice. With `=> "...",
/// FMA, { ... }` the body also sees a `const FMA: bool`: true in the twin only.
///
/// Kernels sharing their const parameters and features can be written as one
/// group: `avx512_twin! { for [const N: usize] with "avx512f"; fn a(..) {..}
/// fn b(..) {..} }`.
macro_rules! avx512_twin {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$(const $g:ident: usize),* $(,)?>)?
        ($($a:ident: $t:ty),* $(,)?)
        => $features:literal, $($fma:ident,)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name $(<$(const $g: usize),*>)? ($($a: $t),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$(const $fma: bool,)? $($(const $g: usize),*)?>($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            if $crate::cpu::avx512() {
                /// The body compiled for AVX-512.
                ///
                /// # Safety
                /// The enabled features must be available.
                #[target_feature(enable = $features)]
                #[allow(clippy::too_many_arguments)]
                unsafe fn twin $(<$(const $g: usize),*>)? ($($a: $t),*) {
                    // `{ const FMA: bool = true; FMA }`: true, where the body has FMA.
                    body::<$({ const $fma: bool = true; $fma },)? $($($g),*)?>($($a),*)
                }
                // SAFETY: the features were detected at run time.
                unsafe { twin $(::<$($g),*>)? ($($a),*) };
                return;
            }
            body::<$({ const $fma: bool = false; $fma },)? $($($g),*)?>($($a),*)
        }
    };
    // Several kernels with the same const parameters and features.
    (for [$($gen:tt)*] with $features:literal; $($kernels:tt)*) => {
        $crate::cpu::avx512_twin! { @each [$($gen)*] $features; $($kernels)* }
    };
    (@each [$($gen:tt)*] $features:literal;) => {};
    (
        @each [$($gen:tt)*] $features:literal;
        $(#[$attr:meta])*
        $vis:vis fn $name:ident ($($a:ident: $t:ty),* $(,)?) $body:block
        $($rest:tt)*
    ) => {
        $crate::cpu::avx512_twin! {
            $(#[$attr])*
            $vis fn $name<$($gen)*>($($a: $t),*) => $features, $body
        }
        $crate::cpu::avx512_twin! { @each [$($gen)*] $features; $($rest)* }
    };
}
pub(crate) use avx512_twin;

#[cfg(test)]
thread_local! {
    /// Set while [`portable`] runs on this thread.
    static FORCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether [`portable`] forces the portable paths on this thread (the pool then
/// runs every part on the calling thread, so that none escapes the switch).
#[cfg(test)]
pub(crate) fn forced_portable() -> bool {
    FORCED.with(|f| f.get())
}

/// Runs `f` with the portable paths forced on this thread, so that a unit test
/// can compare both paths in one process (other test threads are unaffected).
#[cfg(test)]
pub(crate) fn portable<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _reset = Reset(FORCED.with(|f| f.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_forcing_is_scoped() {
        let outer = avx512();
        assert!(!portable(avx512));
        assert!(portable(|| portable(forced_portable)));
        assert_eq!(avx512(), outer);
    }
}
