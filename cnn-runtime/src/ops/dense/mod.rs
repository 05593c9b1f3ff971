//! Fully connected layer, `y = act(x W + b)` with `W: (inputs, units)`.

#[cfg(test)]
mod gradcheck;

use super::activation::bias_activation;
use crate::gemm::{matmul_par, Strided};
use crate::{Activation, DenseSpec};

fn check(spec: &DenseSpec, batch: usize, x: usize, k: usize, y: usize) {
    assert_eq!(x, batch * spec.inputs, "dense: x has the wrong length");
    assert_eq!(
        k,
        spec.inputs * spec.units,
        "dense: kernel has the wrong length"
    );
    assert_eq!(y, batch * spec.units, "dense: output has the wrong length");
}

/// Forward pass.
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn dense_forward(
    spec: &DenseSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    check(spec, batch, x.len(), kernel.len(), y.len());
    if let Some(bias) = bias {
        assert_eq!(bias.len(), spec.units, "dense: bias has the wrong length");
    }
    let (i, u) = (spec.inputs, spec.units);
    let (xm, km) = (Strided::row_major(x, i), Strided::row_major(kernel, u));
    matmul_par((batch, u, i), &xm, &km, y);
    bias_activation(y, bias, u, act);
}

/// Backward pass from `dz = dL/d(pre-activation)`; overwrites `dkernel` and,
/// when given, `dbias` (`None` without a bias) and `dx`.
///
/// # Panics
/// When a slice length does not match the spec and batch.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward(
    spec: &DenseSpec,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    dz: &[f32],
    dx: Option<&mut [f32]>,
    dkernel: &mut [f32],
    dbias: Option<&mut [f32]>,
) {
    check(spec, batch, x.len(), kernel.len(), dz.len());
    assert_eq!(
        dkernel.len(),
        kernel.len(),
        "dense: dkernel has the wrong length"
    );
    let (i, u) = (spec.inputs, spec.units);
    // dW = x^T dz
    let (xt, dzm) = (Strided::transposed(x, i), Strided::row_major(dz, u));
    matmul_par((i, u, batch), &xt, &dzm, dkernel);
    if let Some(dbias) = dbias {
        assert_eq!(dbias.len(), u, "dense: dbias has the wrong length");
        dbias.fill(0.0);
        for row in dz.chunks_exact(u.max(1)) {
            for (d, v) in dbias.iter_mut().zip(row) {
                *d += v;
            }
        }
    }
    if let Some(dx) = dx {
        assert_eq!(dx.len(), x.len(), "dense: dx has the wrong length");
        // dx = dz W^T
        let kt = Strided::transposed(kernel, u);
        matmul_par((batch, i, u), &dzm, &kt, dx);
    }
}
