//! Lowering a checked model ([`ir::Model`]) to the runtime's plan: one
//! [`LayerSpec`] per IR layer, arranged by [`Plan::sequential`].
//!
//! Every size is read from the IR (input/output shapes, padding split, kernel,
//! stride, dilation); nothing is recomputed here.

use crate::ir;
use cnn_plan::{Activation, Conv2dSpec, DenseSpec, LayerSpec, Plan, Pool2dSpec, PoolKind};

fn act(a: ir::Activation) -> Activation {
    match a {
        ir::Activation::Linear => Activation::Linear,
        ir::Activation::Relu => Activation::Relu,
        ir::Activation::Sigmoid => Activation::Sigmoid,
        ir::Activation::Tanh => Activation::Tanh,
        ir::Activation::Softmax => Activation::Softmax,
    }
}

/// `(H, W, C)` of a shape; a vector of `n` reads as `1 x 1 x n`. A checked IR
/// never puts a vector where an image belongs; if one did, the interpreter's own
/// consistency check would refuse the specs rather than this function panicking.
fn hwc(s: ir::Shape) -> (usize, usize, usize) {
    match s {
        ir::Shape::Image { h, w, c } => (h, w, c),
        ir::Shape::Vector { n } => (1, 1, n),
    }
}

/// The last axis of a shape: what softmax normalises over.
fn last_axis(s: ir::Shape) -> usize {
    match s {
        ir::Shape::Image { c, .. } => c,
        ir::Shape::Vector { n } => n,
    }
}

/// One runtime spec per IR layer, in order.
pub fn lower(m: &ir::Model) -> Vec<LayerSpec> {
    m.layers.iter().map(lower_layer).collect()
}

/// The plan of a checked model: the one lowering both the interpreter and the
/// code generator run. Errors only for an IR that breaks the checker's
/// invariants (layers that do not chain).
pub fn plan(m: &ir::Model) -> Result<Plan, String> {
    let (h, w, c) = hwc(m.input);
    Plan::sequential([h, w, c], &lower(m))
}

fn lower_layer(l: &ir::Layer) -> LayerSpec {
    let (in_h, in_w, in_c) = hwc(l.input);
    let (out_h, out_w, out_c) = hwc(l.output);
    match &l.op {
        ir::Op::Conv(c) => LayerSpec::Conv2d {
            spec: Conv2dSpec {
                in_h,
                in_w,
                in_c,
                out_h,
                out_w,
                out_c,
                kh: c.kernel[0],
                kw: c.kernel[1],
                sh: c.stride[0],
                sw: c.stride[1],
                dh: c.dilation[0],
                dw: c.dilation[1],
                pad_top: c.pad.top,
                pad_left: c.pad.left,
            },
            act: act(c.activation),
        },
        ir::Op::Pool(p) => LayerSpec::Pool2d(Pool2dSpec {
            kind: match p.kind {
                ir::PoolKind::Max => PoolKind::Max,
                ir::PoolKind::Avg => PoolKind::Avg,
                ir::PoolKind::Min => PoolKind::Min,
            },
            in_h,
            in_w,
            c: in_c,
            out_h,
            out_w,
            pad_top: p.pad.top,
            pad_left: p.pad.left,
            ph: p.window[0],
            pw: p.window[1],
            sh: p.stride[0],
            sw: p.stride[1],
        }),
        ir::Op::Flatten => LayerSpec::Flatten { len: l.input.len() },
        ir::Op::Dense(d) => LayerSpec::Dense {
            spec: DenseSpec {
                inputs: l.input.len(),
                units: d.units,
            },
            act: act(d.activation),
        },
        ir::Op::Activation(a) => LayerSpec::Activation {
            act: act(*a),
            len: l.input.len(),
            channels: last_axis(l.input),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn golden(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/oracle/goldens")
            .join(case)
    }

    fn compile_case(case: &str) -> ir::Model {
        let src = std::fs::read_to_string(golden(case).join("model.cnn")).unwrap();
        let c = crate::compile(&src, "Case");
        assert!(!c.has_errors(), "{case}: {:?}", c.diagnostics);
        c.models.into_iter().next().unwrap()
    }

    #[test]
    fn pads_and_sizes_come_from_the_ir() {
        // 8x8, conv 4 3x3 stride 2 same: total padding 1, all of it after (TF rule).
        let m = compile_case("same_conv3x3_s2_in8");
        match lower(&m)[..] {
            [LayerSpec::Conv2d { spec, act }] => {
                assert_eq!((spec.in_h, spec.out_h, spec.out_c, spec.sh), (8, 4, 4, 2));
                assert_eq!((spec.pad_top, spec.pad_left), (0, 0));
                assert_eq!(act, Activation::Linear);
            }
            ref other => panic!("{other:?}"),
        }
        // 7x7, conv 2 5x3 stride 2x1 same: pads 2/2 on H, 1/1 on W.
        let m = compile_case("same_conv5x3_s2x1_in7");
        match lower(&m)[..] {
            [LayerSpec::Conv2d { spec, .. }] => {
                assert_eq!((spec.kh, spec.kw, spec.sh, spec.sw), (5, 3, 2, 1));
                assert_eq!(
                    (spec.pad_top, spec.pad_left, spec.out_h, spec.out_w),
                    (2, 1, 4, 7)
                );
            }
            ref other => panic!("{other:?}"),
        }
        let m = compile_case("lenet5");
        let specs = lower(&m);
        assert_eq!(specs.len(), 8);
        assert!(matches!(specs[5], LayerSpec::Flatten { len: 120 }));
        assert!(matches!(
            specs[7],
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: 84,
                    units: 10
                },
                act: Activation::Softmax
            }
        ));
        assert!(matches!(
            specs[1],
            LayerSpec::Pool2d(Pool2dSpec {
                kind: PoolKind::Avg,
                ph: 2,
                out_h: 14,
                ..
            })
        ));
    }
}
