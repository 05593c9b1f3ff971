//! Lowering a checked model ([`ir::Model`]) to the runtime's plan: one
//! [`LayerSpec`] per IR layer, arranged by [`Plan::sequential`].
//!
//! Every size is read from the IR (input/output shapes, padding split, kernel,
//! stride, dilation); nothing is recomputed here.

use crate::ir;
use cnn_plan::{
    Activation, AugmentSpec, BatchNormSpec, Conv2dSpec, DenseSpec, GlobalPoolSpec, Interpolation,
    JoinKind, JoinSpec, LayerSpec, Node, NodeKind, Plan, Pool2dSpec, PoolKind, UpsampleSpec,
    ZeroPadSpec,
};

fn act(a: ir::Activation) -> Activation {
    match a {
        ir::Activation::Linear => Activation::Linear,
        ir::Activation::Relu => Activation::Relu,
        ir::Activation::Sigmoid => Activation::Sigmoid,
        ir::Activation::Tanh => Activation::Tanh,
        ir::Activation::Softmax => Activation::Softmax,
        ir::Activation::Relu6 => Activation::Relu6,
        ir::Activation::LeakyRelu(s) => Activation::LeakyRelu(s),
        ir::Activation::Elu => Activation::Elu,
        ir::Activation::Selu => Activation::Selu,
        ir::Activation::Gelu => Activation::Gelu,
        ir::Activation::Silu => Activation::Silu,
        ir::Activation::Softplus => Activation::Softplus,
        ir::Activation::HardSigmoid => Activation::HardSigmoid,
        ir::Activation::HardSilu => Activation::HardSilu,
    }
}

fn pool_kind(k: ir::PoolKind) -> PoolKind {
    match k {
        ir::PoolKind::Max => PoolKind::Max,
        ir::PoolKind::Avg => PoolKind::Avg,
        ir::PoolKind::Min => PoolKind::Min,
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

/// One runtime spec per IR layer, in order, for a model without graph
/// statements (`None` for one with them: see [`nodes`]).
pub fn lower(m: &ir::Model) -> Option<Vec<LayerSpec>> {
    m.layers
        .iter()
        .map(|l| match l.op {
            ir::Op::Graph(_) => None,
            _ => Some(lower_layer(l)),
        })
        .collect()
}

/// The plan's nodes of a model: one per layer, a join per `residual`, `add`
/// and `concat`; the layers of a `repeat` or a block use join the chain
/// around them.
pub fn nodes(m: &ir::Model) -> Vec<Node> {
    let mut out = Vec::with_capacity(m.layers.len());
    chain(&m.layers, &mut out);
    out
}

fn chain(layers: &[ir::Layer], out: &mut Vec<Node>) {
    for l in layers {
        let ir::Op::Graph(g) = &l.op else {
            out.push(Node {
                index: l.index,
                path: l.path.clone(),
                kind: NodeKind::Layer(lower_layer(l)),
            });
            continue;
        };
        if !g.joins() {
            for b in &g.branches {
                chain(b, out);
            }
            continue;
        }
        let kind = match g.kind {
            ir::GraphKind::Concat => JoinKind::Concat,
            _ => JoinKind::Add,
        };
        let (h, w, c) = hwc(l.output);
        let branches = g
            .branches
            .iter()
            .map(|b| {
                let mut v = Vec::with_capacity(b.len());
                chain(b, &mut v);
                v
            })
            .collect();
        out.push(Node {
            index: l.index,
            path: l.path.clone(),
            kind: NodeKind::Join {
                spec: JoinSpec {
                    kind,
                    inputs: g.branches.len(),
                    hw: h * w,
                    c,
                },
                branches,
            },
        });
    }
}

/// The plan of a checked model: the one lowering both the interpreter and the
/// code generator run. Errors only for an IR that breaks the checker's
/// invariants (layers that do not chain).
pub fn plan(m: &ir::Model) -> Result<Plan, String> {
    let (h, w, c) = hwc(m.input);
    Plan::graph([h, w, c], &nodes(m))
}

/// A window op's spec fields: the input, the output, and the leading padding
/// (implicit `same` padding plus an explicit `pad P`).
struct Geometry {
    input: (usize, usize, usize),
    output: (usize, usize, usize),
    pad: [usize; 2],
}

/// A convolution of `window` sizes on the layer's input and output.
fn conv_spec(
    g: &Geometry,
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [dh, dw]: [usize; 2],
) -> Conv2dSpec {
    let ((in_h, in_w, in_c), (out_h, out_w, out_c)) = (g.input, g.output);
    Conv2dSpec {
        in_h,
        in_w,
        in_c,
        out_h,
        out_w,
        out_c,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pad_top: g.pad[0],
        pad_left: g.pad[1],
    }
}

fn lower_layer(l: &ir::Layer) -> LayerSpec {
    let (in_h, in_w, in_c) = hwc(l.input);
    let (out_h, out_w, out_c) = hwc(l.output);
    let geometry = |pad: ir::Pad2, explicit: [usize; 2]| Geometry {
        input: (in_h, in_w, in_c),
        output: (out_h, out_w, out_c),
        pad: [pad.top + explicit[0], pad.left + explicit[1]],
    };
    match &l.op {
        ir::Op::Conv(c) => {
            let g = geometry(c.pad, c.explicit_pad);
            let spec = conv_spec(&g, c.kernel, c.stride, c.dilation);
            let (act, bias, groups) = (act(c.activation), c.bias, c.groups);
            LayerSpec::Conv2d {
                spec,
                act,
                bias,
                groups,
            }
        }
        ir::Op::DwConv(c) => {
            let g = geometry(c.pad, c.explicit_pad);
            let spec = conv_spec(&g, c.kernel, c.stride, c.dilation);
            let (act, bias) = (act(c.activation), c.bias);
            LayerSpec::DwConv2d { spec, act, bias }
        }
        ir::Op::SepConv(c) => {
            // The depthwise half ends on C*M channels at the output's size; the
            // pointwise half is a 1x1 conv from there to the filters.
            let mid = in_c * c.multiplier;
            let mut g = geometry(c.pad, [0, 0]);
            g.output.2 = mid;
            let depthwise = conv_spec(&g, c.kernel, c.stride, c.dilation);
            let point = Geometry {
                input: (out_h, out_w, mid),
                output: (out_h, out_w, out_c),
                pad: [0, 0],
            };
            LayerSpec::SepConv2d {
                depthwise,
                pointwise: conv_spec(&point, [1, 1], [1, 1], [1, 1]),
                act: act(c.activation),
                bias: c.bias,
            }
        }
        ir::Op::Deconv(d) => {
            // Described by the conv it transposes: that conv reads this layer's
            // output and writes its input, padded by the cells Keras crops.
            let g = Geometry {
                input: (out_h, out_w, out_c),
                output: (in_h, in_w, in_c),
                pad: d.crop,
            };
            LayerSpec::Deconv2d {
                spec: conv_spec(&g, d.kernel, d.stride, [1, 1]),
                act: act(d.activation),
                bias: d.bias,
            }
        }
        ir::Op::Pool(p) => {
            let pad = [
                p.pad.top + p.explicit_pad[0],
                p.pad.left + p.explicit_pad[1],
            ];
            LayerSpec::Pool2d(Pool2dSpec {
                kind: pool_kind(p.kind),
                in_h,
                in_w,
                c: in_c,
                out_h,
                out_w,
                pad_top: pad[0],
                pad_left: pad[1],
                ph: p.window[0],
                pw: p.window[1],
                sh: p.stride[0],
                sw: p.stride[1],
            })
        }
        ir::Op::Flatten => LayerSpec::Flatten { len: l.input.len() },
        ir::Op::Dense(d) => LayerSpec::Dense {
            spec: DenseSpec {
                inputs: l.input.len(),
                units: d.units,
            },
            act: act(d.activation),
            bias: d.bias,
        },
        ir::Op::Activation(a) => LayerSpec::Activation {
            act: act(*a),
            len: l.input.len(),
            channels: last_axis(l.input),
        },
        ir::Op::BatchNorm(b) => LayerSpec::BatchNorm(BatchNormSpec {
            len: l.input.len(),
            c: last_axis(l.input),
            momentum: b.momentum,
            epsilon: b.epsilon,
            scale: b.scale,
            center: b.center,
        }),
        ir::Op::Dropout(rate) => LayerSpec::Dropout {
            rate: *rate,
            len: l.input.len(),
        },
        ir::Op::GlobalPool(k) => LayerSpec::GlobalPool(GlobalPoolSpec {
            kind: pool_kind(*k),
            hw: in_h * in_w,
            c: in_c,
        }),
        ir::Op::ZeroPad(p) => LayerSpec::ZeroPad(ZeroPadSpec {
            in_h,
            in_w,
            c: in_c,
            top: p.top,
            bottom: p.bottom,
            left: p.left,
            right: p.right,
        }),
        ir::Op::Upsample {
            size,
            interpolation,
        } => LayerSpec::Upsample(UpsampleSpec {
            in_h,
            in_w,
            c: in_c,
            sh: size[0],
            sw: size[1],
            interpolation: match interpolation {
                ir::Interpolation::Nearest => Interpolation::Nearest,
                ir::Interpolation::Bilinear => Interpolation::Bilinear,
            },
        }),
        ir::Op::Augment(a) => LayerSpec::Augment(AugmentSpec {
            h: in_h,
            w: in_w,
            c: in_c,
            kind: a.plan(),
        }),
        // Graph statements are nodes of their own (`chain`); one reaching
        // here gives a plan error (a join outside a graph node), not a panic.
        ir::Op::Graph(_) => LayerSpec::Join(JoinSpec {
            kind: JoinKind::Add,
            inputs: 0,
            hw: 0,
            c: 0,
        }),
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
        match lower(&m).unwrap()[..] {
            [LayerSpec::Conv2d { spec, act, .. }] => {
                assert_eq!((spec.in_h, spec.out_h, spec.out_c, spec.sh), (8, 4, 4, 2));
                assert_eq!((spec.pad_top, spec.pad_left), (0, 0));
                assert_eq!(act, Activation::Linear);
            }
            ref other => panic!("{other:?}"),
        }
        // 7x7, conv 2 5x3 stride 2x1 same: pads 2/2 on H, 1/1 on W.
        let m = compile_case("same_conv5x3_s2x1_in7");
        match lower(&m).unwrap()[..] {
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
        let specs = lower(&m).unwrap();
        assert_eq!(specs.len(), 8);
        assert!(matches!(specs[5], LayerSpec::Flatten { len: 120 }));
        assert!(matches!(
            specs[7],
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: 84,
                    units: 10
                },
                act: Activation::Softmax,
                bias: true
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
