//! The portable microkernel of [`super::gemm`], for CPUs without AVX-512 (or
//! with `CNN_PORTABLE=1`, see [`crate::cpu`]).

use super::{MR, NR};

/// Portable microkernel (same packed layout); the compiler vectorises the inner loop.
#[allow(clippy::too_many_arguments)]
pub(super) fn kernel_generic(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
) {
    let mut t = [[0f32; NR]; MR];
    for p in 0..kc {
        let bp: &[f32; NR] = b[p * NR..p * NR + NR].try_into().expect("panel");
        for i in 0..MR {
            let av = a[p * MR + i];
            for j in 0..NR {
                t[i][j] += av * bp[j];
            }
        }
    }
    for i in 0..mr {
        let row = &mut c[i * ldc..i * ldc + nr];
        for j in 0..nr {
            row[j] = if acc { row[j] + t[i][j] } else { t[i][j] };
        }
    }
}
