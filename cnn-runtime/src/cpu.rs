//! The one switch between the kernels' instruction sets: AVX-512, AVX2 with
//! FMA, and the portable build (baseline x86-64, or any other architecture).
//!
//! Every kernel with a wide build (hand-written intrinsics, or a portable body
//! compiled again under `#[target_feature]`) asks [`avx512`] or [`avx2`] when
//! it dispatches; nothing else tests the CPU. The environment variable
//! `CNN_PORTABLE` caps the level: `CNN_PORTABLE=1` makes both answer `false`,
//! so that every kernel takes its portable path; `CNN_PORTABLE=avx2` turns
//! AVX-512 off only, so that an AVX-512 machine runs what an AVX2 laptop runs.
//! That is how CI tests every path on one machine.

use std::sync::OnceLock;

/// The widest kernels this process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Portable,
    Avx2,
    Avx512,
}

/// The level: what the CPU has, capped by `CNN_PORTABLE`; read once per
/// process (the first call).
fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| detected().min(requested()))
}

/// Whether kernels may use AVX-512: the CPU has every feature the AVX-512 builds
/// enable (AVX-512 F, BW, VL and DQ, AVX2, FMA) and `CNN_PORTABLE` is unset,
/// empty or `0`.
#[inline]
pub fn avx512() -> bool {
    at(Level::Avx512)
}

/// Whether kernels may use AVX2 and FMA (and [`avx512`] is false: a kernel asks
/// for the widest first). True on an AVX-512 machine with `CNN_PORTABLE=avx2`.
#[inline]
pub fn avx2() -> bool {
    at(Level::Avx2)
}

/// Whether the kernels run at exactly `wanted` (never a wide level while a
/// test forces the portable paths).
#[inline]
fn at(wanted: Level) -> bool {
    #[cfg(test)]
    if forced_portable() {
        return false;
    }
    level() == wanted
}

/// The cap `CNN_PORTABLE` asks for: unset, empty or `0`: none; `avx2`: no
/// AVX-512; anything else: the portable kernels.
fn requested() -> Level {
    match std::env::var_os("CNN_PORTABLE") {
        None => Level::Avx512,
        Some(v) if v.is_empty() || v == "0" => Level::Avx512,
        Some(v) if v.eq_ignore_ascii_case("avx2") => Level::Avx2,
        Some(_) => Level::Portable,
    }
}

/// The widest level whose `#[target_feature]` builds the CPU can run.
fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        if avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") {
            Level::Avx512
        } else if avx2 {
            Level::Avx2
        } else {
            Level::Portable
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Portable
    }
}

/// Defines a kernel that runs its body compiled for AVX-512 where [`avx512`]
/// allows, for AVX2 and FMA where [`avx2`] does, and as built (baseline
/// x86-64) elsewhere:
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
/// twin (enabling the listed features, which [`avx512`] must check), by an
/// `"avx2,fma"` twin and by the portable path, so all are the same code,
/// compiled three times. With `=> "...", FMA, { ... }` the body also sees a
/// `const FMA: bool`: true in the AVX-512 twin only (a body may call AVX-512
/// intrinsics under it; the AVX2 twin's wider loops come from the compiler).
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
            #[cfg(target_arch = "x86_64")]
            if $crate::cpu::avx2() {
                /// The body compiled for AVX2 and FMA.
                ///
                /// # Safety
                /// AVX2 and FMA must be available.
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn twin2 $(<$(const $g: usize),*>)? ($($a: $t),*) {
                    body::<$({ const $fma: bool = false; $fma },)? $($($g),*)?>($($a),*)
                }
                // SAFETY: the features were detected at run time.
                unsafe { twin2 $(::<$($g),*>)? ($($a),*) };
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
        let outer = (avx512(), avx2());
        assert!(!portable(avx512));
        assert!(!portable(avx2));
        assert!(portable(|| portable(forced_portable)));
        assert_eq!((avx512(), avx2()), outer);
        // One level at a time: a kernel asks for the widest first.
        assert!(!(avx512() && avx2()));
    }
}
