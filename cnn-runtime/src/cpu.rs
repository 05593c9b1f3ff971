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
    use crate::gemm::{self, Strided};
    use crate::ops::{conv2d_backward, conv2d_forward, Conv2dScratch};
    use crate::{Activation, Conv2dSpec};

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    #[test]
    fn portable_forcing_is_scoped() {
        let outer = avx512();
        assert!(!portable(avx512));
        assert!(portable(|| portable(forced_portable)));
        assert_eq!(avx512(), outer);
    }

    /// A GEMM and a conv forward / backward give the same results with the
    /// portable paths forced as through the switch's own choice (AVX-512 on an
    /// AVX-512 machine without `CNN_PORTABLE`; otherwise portable both times).
    #[test]
    fn portable_paths_match_the_avx512_paths() {
        // GEMM: the blocked path and the streaming few-row paths, both
        // operand orientations, on all cores and on one.
        for &(m, n, k) in &[(3, 70, 33), (20, 40, 33), (29, 70, 600), (200, 40, 30)] {
            for tb in [false, true] {
                let ad = data(m * k, 1);
                let bd = data(k * n, 2);
                let a = Strided::row_major(&ad, k);
                let b = if tb {
                    Strided::transposed(&bd, k)
                } else {
                    Strided::row_major(&bd, n)
                };
                let run = || {
                    let mut c = vec![f32::NAN; m * n];
                    gemm::gemm_par(m, n, k, &a, 0, &b, &mut c, n, false);
                    let mut c1 = vec![f32::NAN; m * n];
                    gemm::gemm(m, n, k, &a, 0, &b, &mut c1, n, false);
                    (c, c1)
                };
                let (wide, wide1) = run();
                let (slow, slow1) = portable(run);
                for (x, y) in wide.iter().chain(&wide1).zip(slow.iter().chain(&slow1)) {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "gemm {m}x{n}x{k} {tb}: {x} vs {y}"
                    );
                }
            }
        }
        // Conv: stride 1 with enough channels for the direct input gradient,
        // and a single-channel input (vectorised kernel gradient).
        for &(h, c, f, pad) in &[(10, 16, 20, 1), (12, 1, 6, 2)] {
            let k = 2 * pad + 1;
            let s = Conv2dSpec {
                in_h: h,
                in_w: h,
                in_c: c,
                out_h: h,
                out_w: h,
                out_c: f,
                kh: k,
                kw: k,
                sh: 1,
                sw: 1,
                dh: 1,
                dw: 1,
                pad_top: pad,
                pad_left: pad,
            };
            let batch = 3;
            let x = data(batch * h * h * c, 3);
            let kern = data(k * k * c * f, 4);
            let bias = data(f, 5);
            let dz = data(batch * h * h * f, 6);
            let run = || {
                let mut scratch = Conv2dScratch::default();
                let mut y = vec![f32::NAN; dz.len()];
                conv2d_forward(
                    &s,
                    Activation::Relu,
                    batch,
                    &x,
                    &kern,
                    &bias,
                    &mut y,
                    &mut scratch,
                );
                let mut dx = vec![f32::NAN; x.len()];
                let mut dk = vec![f32::NAN; kern.len()];
                let mut db = vec![f32::NAN; f];
                conv2d_backward(
                    &s,
                    batch,
                    &x,
                    &kern,
                    &dz,
                    Some(&mut dx),
                    &mut dk,
                    &mut db,
                    &mut scratch,
                );
                [y, dx, dk, db]
            };
            let wide = run();
            let slow = portable(run);
            for (name, a, b) in [
                ("y", &wide[0], &slow[0]),
                ("dx", &wide[1], &slow[1]),
                ("dk", &wide[2], &slow[2]),
                ("db", &wide[3], &slow[3]),
            ] {
                let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (u, v) in a.iter().zip(b) {
                    assert!((u - v).abs() <= 1e-5 * scale, "{s:?} {name}: {u} vs {v}");
                }
            }
        }
    }
}
