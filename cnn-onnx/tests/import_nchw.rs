//! Graphs written the way PyTorch's exporter writes CNNs (NCHW, explicit
//! pads, `Gemm` with `transB`, a C,H,W `Flatten` before the dense layer,
//! `Clip` for relu6, `x * sigmoid(x)`, grouped and depthwise convs,
//! `count_include_pad`...), built here with the protobuf types, run in tract
//! and, imported, in the interpreter: the outputs must agree within 1e-5.
//! Plus refusals that must name the node, the op and the attribute, and a
//! flatten-order case checked against values worked out by hand.

mod support;

use cnn_onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use cnn_runtime::Model;
use prost::Message;

/// A graph under construction.
struct G {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// Makes the weights: deterministic values in about [-0.5, 0.5].
    seed: u32,
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl G {
    fn new() -> G {
        G {
            nodes: Vec::new(),
            inits: Vec::new(),
            seed: 1,
        }
    }

    /// A float initializer of `dims` with the values `data`.
    fn init(&mut self, name: &str, dims: &[i64], data: Vec<f32>) -> String {
        self.inits.push(TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            float_data: data,
            ..Default::default()
        });
        name.into()
    }

    /// A float initializer of `dims` with made-up values.
    fn weights(&mut self, name: &str, dims: &[i64]) -> String {
        let n: i64 = dims.iter().product();
        let data = (0..n)
            .map(|_| {
                self.seed = self.seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((self.seed >> 16) % 1000) as f32 / 1000.0 - 0.5
            })
            .collect();
        self.init(name, dims, data)
    }

    fn int64s(&mut self, name: &str, data: &[i64]) -> String {
        self.inits.push(TensorProto {
            name: Some(name.into()),
            dims: vec![data.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name.into()
    }

    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.to_string()],
            attribute: attrs,
            ..Default::default()
        });
        name.into()
    }

    /// The model's bytes: input `x` of `[1, c, h, w]`, output `out`.
    fn bytes(self, input: [i64; 4], out: &str, opset: i64) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                name: Some("torch_style".into()),
                node: self.nodes,
                initializer: self.inits,
                input: vec![value("x", &input)],
                output: vec![ValueInfoProto {
                    name: Some(out.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// A made-up NCHW input of `[1, c, h, w]`.
fn input([_, c, h, w]: [i64; 4]) -> Vec<f32> {
    (0..c * h * w)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect()
}

/// Imports `bytes`, runs the model in the interpreter on the NCHW input
/// `x` (moved to NHWC), and returns the text and the output (an image
/// output moved back to NCHW).
fn imported(bytes: &[u8], shape: [i64; 4], x: &[f32]) -> (String, Vec<f32>) {
    let m = cnn_onnx::import(bytes, None).unwrap_or_else(|e| panic!("{e}"));
    let plan = support::plan_of(&m.source);
    let mut net = support::interpreter(&m);
    let [_, c, h, w] = shape.map(|d| d as usize);
    let mut nhwc = vec![0.0; x.len()];
    for k in 0..c {
        for i in 0..h * w {
            nhwc[i * c + k] = x[k * h * w + i];
        }
    }
    let x4 = ndarray::Array4::from_shape_vec((1, h, w, c), nhwc).unwrap();
    let y = net.forward_batch(x4.view()).unwrap();
    let mut y: Vec<f32> = y.iter().copied().collect();
    if let [oh, ow, oc] = plan.output_shape[..] {
        let mut nchw = vec![0.0; y.len()];
        for k in 0..oc {
            for i in 0..oh * ow {
                nchw[k * oh * ow + i] = y[i * oc + k];
            }
        }
        y = nchw;
    }
    (m.source, y)
}

/// Runs `bytes` in tract and imported; asserts they agree; returns the text.
fn agrees(bytes: &[u8], shape: [i64; 4]) -> String {
    let x = input(shape);
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let (_, want) = support::run(bytes, &dims, &x).expect("tract");
    let (text, got) = imported(bytes, shape, &x);
    assert_eq!(got.len(), want.len(), "{text}");
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "[{i}]: {a} vs tract's {b}\n{text}"
        );
    }
    text
}

#[test]
fn a_lenet_as_pytorch_writes_it() {
    let mut g = G::new();
    let w = g.weights("conv1.weight", &[6, 1, 5, 5]);
    let b = g.weights("conv1.bias", &[6]);
    let y = g.node(
        "Conv",
        "conv1",
        &["x", &w, &b],
        vec![ints("kernel_shape", &[5, 5]), ints("pads", &[2, 2, 2, 2])],
    );
    let y = g.node("Relu", "relu1", &[&y], vec![]);
    let y = g.node(
        "MaxPool",
        "pool1",
        &[&y],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    );
    let w = g.weights("conv2.weight", &[16, 6, 5, 5]);
    let b = g.weights("conv2.bias", &[16]);
    let y = g.node(
        "Conv",
        "conv2",
        &[&y, &w, &b],
        vec![ints("kernel_shape", &[5, 5])],
    );
    let y = g.node("Tanh", "tanh2", &[&y], vec![]);
    let y = g.node(
        "AveragePool",
        "pool2",
        &[&y],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    );
    let y = g.node("Flatten", "flatten", &[&y], vec![int("axis", 1)]);
    let w = g.weights("fc1.weight", &[32, 64]);
    let b = g.weights("fc1.bias", &[32]);
    let y = g.node("Gemm", "fc1", &[&y, &w, &b], vec![int("transB", 1)]);
    let y = g.node("Relu", "relu3", &[&y], vec![]);
    let w = g.weights("fc2.weight", &[10, 32]);
    let b = g.weights("fc2.bias", &[10]);
    let y = g.node(
        "Gemm",
        "fc2",
        &[&y, &w, &b],
        vec![int("transB", 1), float("alpha", 1.0), float("beta", 1.0)],
    );
    let y = g.node("Softmax", "softmax", &[&y], vec![int("axis", 1)]);
    let text = agrees(&g.bytes([1, 1, 16, 16], &y, 13), [1, 1, 16, 16]);
    let body: Vec<&str> = text.lines().skip(2).map(str::trim).collect();
    assert_eq!(
        body,
        [
            "input 16x16x1;",
            "conv 6 5x5 same relu;",
            "maxpool 2;",
            "conv 16 5x5 tanh;",
            "avgpool 2;",
            "flatten;",
            "dense 32 relu;",
            "dense 10 softmax;",
            "}"
        ]
    );
}

#[test]
fn a_residual_block_with_batchnorm_relu6_and_grouped_convs() {
    let mut g = G::new();
    let w = g.weights("stem.weight", &[8, 3, 3, 3]);
    let y = g.node(
        "Conv",
        "stem",
        &["x", &w],
        vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])],
    );
    let bn: Vec<String> = ["s", "b", "m"]
        .iter()
        .map(|p| g.weights(&format!("bn.{p}"), &[8]))
        .collect();
    let var = g.init("bn.v", &[8], (0..8).map(|i| 0.5 + i as f32 / 8.0).collect());
    let y = g.node(
        "BatchNormalization",
        "bn",
        &[&y, &bn[0], &bn[1], &bn[2], &var],
        vec![float("epsilon", 1e-5), float("momentum", 0.9)],
    );
    let (lo, hi) = (
        g.init("zero", &[], vec![0.0]),
        g.init("six", &[], vec![6.0]),
    );
    let y = g.node("Clip", "relu6", &[&y, &lo, &hi], vec![]);
    // Depthwise 3x3 (group = channels), then a grouped 1x1, then sigmoid-weighted (silu).
    let w = g.weights("dw.weight", &[8, 1, 3, 3]);
    let b = g.weights("dw.bias", &[8]);
    let r = g.node(
        "Conv",
        "dw",
        &[&y, &w, &b],
        vec![ints("pads", &[1, 1, 1, 1]), int("group", 8)],
    );
    let w = g.weights("pw.weight", &[8, 4, 1, 1]);
    let r = g.node("Conv", "pw", &[&r, &w], vec![int("group", 2)]);
    let s = g.node("Sigmoid", "sig", &[&r], vec![]);
    let r = g.node("Mul", "silu", &[&r, &s], vec![]);
    let y = g.node("Add", "add", &[&y, &r], vec![]);
    let y = g.node(
        "ReduceMean",
        "mean",
        &[&y],
        vec![ints("axes", &[2, 3]), int("keepdims", 0)],
    );
    let w = g.weights("fc.weight", &[8, 5]);
    let y = g.node("MatMul", "fc", &[&y, &w], vec![]);
    let b = g.weights("fc.bias", &[5]);
    let y = g.node("Add", "fc_bias", &[&y, &b], vec![]);
    let text = agrees(&g.bytes([1, 3, 8, 8], &y, 13), [1, 3, 8, 8]);
    for want in [
        "batchnorm epsilon 0.00001 momentum 0.9;",
        "relu6;",
        "add {\n    } {",
        "dwconv 3x3 same;",
        "conv 8 1x1 groups 2 nobias silu;",
        "globalavgpool;\n    dense 5;",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn an_inception_block_with_padded_pools_deconv_resize_and_more_activations() {
    let mut g = G::new();
    let w = g.weights("a.weight", &[4, 4, 1, 1]);
    let a = g.node("Conv", "a", &["x", &w], vec![]);
    let a = g.node("LeakyRelu", "a_act", &[&a], vec![float("alpha", 0.1)]);
    // An average pool that counts its padding: a zeropad then a valid pool.
    let b = g.node(
        "AveragePool",
        "b",
        &["x"],
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            ints("strides", &[1, 1]),
            int("count_include_pad", 1),
        ],
    );
    let b = g.node(
        "HardSigmoid",
        "b_act",
        &[&b],
        vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)],
    );
    // One that does not: a pad 1 pool.
    let c = g.node(
        "AveragePool",
        "c",
        &["x"],
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            ints("strides", &[1, 1]),
        ],
    );
    let c = g.node("HardSwish", "c_act", &[&c], vec![]);
    // A dilated conv with one-sided padding: a zeropad before.
    let w = g.weights("d.weight", &[2, 4, 3, 3]);
    let d = g.node(
        "Conv",
        "d",
        &["x", &w],
        vec![ints("dilations", &[2, 2]), ints("pads", &[2, 2, 2, 2])],
    );
    let d = g.node("Elu", "d_act", &[&d], vec![]);
    let y = g.node("Concat", "cat", &[&a, &b, &c, &d], vec![int("axis", 1)]);
    let w = g.weights("up.weight", &[14, 3, 4, 4]);
    let bias = g.weights("up.bias", &[3]);
    let y = g.node(
        "ConvTranspose",
        "up",
        &[&y, &w, &bias],
        vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
    );
    let y = g.node(
        "MaxPool",
        "mp",
        &[&y],
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ],
    );
    let scales = g.init("scales", &[4], vec![1.0, 1.0, 2.0, 2.0]);
    let y = g.node(
        "Resize",
        "resize",
        &[&y, "", &scales],
        vec![
            string("mode", "nearest"),
            string("coordinate_transformation_mode", "asymmetric"),
            string("nearest_mode", "floor"),
        ],
    );
    let pads = g.int64s("pads", &[0, 0, 1, 0, 0, 0, 0, 2]);
    let y = g.node("Pad", "pad", &[&y, &pads], vec![]);
    let y = g.node("Tanh", "out", &[&y], vec![]);
    let text = agrees(&g.bytes([1, 4, 6, 6], &y, 13), [1, 4, 6, 6]);
    for want in [
        "concat {",
        "leaky_relu 0.1;",
        "zeropad 1x1x1x1;\n",
        "avgpool 3 stride 1;",
        "avgpool 3 stride 1 same;",
        "deconv 3 4x4 stride 2 same;",
        "maxpool 3 stride 2 pad 1;",
        "upsample 2;",
        "zeropad 1x0x0x2;",
        "hard_silu;",
        "hard_sigmoid;",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn the_exact_gelu_as_pytorch_spells_it() {
    let mut g = G::new();
    let w = g.weights("w", &[3, 2, 1, 1]);
    let y = g.node("Conv", "conv", &["x", &w], vec![]);
    let sqrt2 = g.init("sqrt2", &[], vec![std::f32::consts::SQRT_2]);
    let (one, half) = (
        g.init("one", &[], vec![1.0]),
        g.init("half", &[], vec![0.5]),
    );
    let t = g.node("Div", "div", &[&y, &sqrt2], vec![]);
    let t = g.node("Erf", "erf", &[&t], vec![]);
    let t = g.node("Add", "add1", &[&t, &one], vec![]);
    let t = g.node("Mul", "mul", &[&y, &t], vec![]);
    let t = g.node("Mul", "gelu", &[&t, &half], vec![]);
    let text = agrees(&g.bytes([1, 2, 3, 3], &t, 13), [1, 2, 3, 3]);
    assert!(text.contains("conv 3 1x1 nobias gelu;"), "{text}");
}

#[test]
fn a_chw_flatten_gets_its_dense_rows_in_hwc_order() {
    // x[c, h, w] = 100 c + 10 h + w on 2x2x2; PyTorch's flatten gives
    // index c*4 + h*2 + w. A dense of one unit picking index 5 (c=1, h=0,
    // w=1: value 101) must pick that same cell in the language's H,W,C
    // flatten, where it is index (0*2 + 1)*2 + 1 = 3.
    let mut g = G::new();
    let y = g.node("Flatten", "flatten", &["x"], vec![]);
    let mut k = vec![0.0; 8];
    k[5] = 1.0;
    let w = g.init("pick", &[8, 1], k);
    let y = g.node("MatMul", "dense", &[&y, &w], vec![]);
    let bytes = g.bytes([1, 2, 2, 2], &y, 13);
    let x: Vec<f32> = (0..8)
        .map(|i| (100 * (i / 4) + 10 * (i / 2 % 2) + i % 2) as f32)
        .collect();
    let (_, y) = imported(&bytes, [1, 2, 2, 2], &x);
    assert_eq!(y, [101.0]);
    let m = cnn_onnx::import(&bytes, None).unwrap();
    let row = m.weights[0].data.iter().position(|&v| v == 1.0);
    assert_eq!(row, Some(3));
}

#[test]
fn a_vector_input_is_a_one_pixel_image_flattened() {
    let mut g = G::new();
    let w = g.weights("fc1.weight", &[5, 6]);
    let b = g.weights("fc1.bias", &[5]);
    let y = g.node("Gemm", "fc1", &["x", &w, &b], vec![int("transB", 1)]);
    let y = g.node("Sigmoid", "act", &[&y], vec![]);
    let mut bytes = g.bytes([1, 6, 1, 1], &y, 13);
    // The same graph with a [N, 6] input.
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    m.graph.as_mut().unwrap().input = vec![value("x", &[1, 6])];
    bytes = m.encode_to_vec();
    let x = input([1, 6, 1, 1]);
    let (_, want) = support::run(&bytes, &[1, 6], &x).expect("tract");
    let (text, got) = imported(&bytes, [1, 6, 1, 1], &x);
    assert!(
        text.contains("input 1x1x6;\n    flatten;\n    dense 5 sigmoid;"),
        "{text}"
    );
    for (a, b) in got.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{a} vs tract's {b}"
        );
    }
    assert_eq!(got.len(), 5);
}

/// The import error of `bytes`, as text.
#[test]
fn a_weight_passed_through_identity_is_the_weight() {
    // PyTorch writes a weight two layers share, or one it did not fold, as
    // an `Identity` of the initializer (torchvision's ResNet-18 has one
    // before its first conv): the conv reads the initializer itself.
    let mut g = G::new();
    let w = g.weights("conv.weight", &[4, 3, 3, 3]);
    let w = g.node("Identity", "Identity_0", &[&w], vec![]);
    let w = g.node("Identity", "Identity_1", &[&w], vec![]);
    let y = g.node(
        "Conv",
        "conv",
        &["x", &w],
        vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
    );
    let y = g.node("Relu", "relu", &[&y], vec![]);
    let text = agrees(&g.bytes([1, 3, 6, 6], &y, 13), [1, 3, 6, 6]);
    assert!(text.contains("conv 4 3x3 same nobias relu"), "{text}");
}

fn refusal(bytes: &[u8]) -> String {
    cnn_onnx::import(bytes, None)
        .expect_err("refused")
        .to_string()
}

#[test]
fn what_the_language_cannot_say_is_refused_by_node_op_and_attribute() {
    // A softmax over the width.
    let mut g = G::new();
    let y = g.node("Softmax", "sm", &["x"], vec![int("axis", 3)]);
    let e = refusal(&g.bytes([1, 2, 3, 3], &y, 13));
    assert!(
        e.starts_with("node 'sm' (Softmax): attribute axis = 3"),
        "{e}"
    );
    // ceil_mode that adds a window.
    let mut g = G::new();
    let y = g.node(
        "MaxPool",
        "mp",
        &["x"],
        vec![
            ints("kernel_shape", &[2, 2]),
            ints("strides", &[2, 2]),
            int("ceil_mode", 1),
        ],
    );
    let e = refusal(&g.bytes([1, 2, 5, 5], &y, 13));
    assert!(
        e.starts_with("node 'mp' (MaxPool): attribute ceil_mode = 1"),
        "{e}"
    );
    // A one-sided max-pool padding.
    let mut g = G::new();
    let y = g.node(
        "MaxPool",
        "mp2",
        &["x"],
        vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 0, 0, 0])],
    );
    let e = refusal(&g.bytes([1, 2, 5, 5], &y, 13));
    assert!(
        e.starts_with("node 'mp2' (MaxPool): attribute pads = [1, 0, 0, 0]"),
        "{e}"
    );
    // A kernel computed in the graph.
    let mut g = G::new();
    let y = g.node("Conv", "conv", &["x", "x"], vec![]);
    let e = refusal(&g.bytes([1, 2, 5, 5], &y, 13));
    assert!(e.starts_with("node 'conv' (Conv): "), "{e}");
    // An elementwise product of two branches.
    let mut g = G::new();
    let a = g.node("Relu", "a", &["x"], vec![]);
    let y = g.node("Mul", "prod", &["x", &a], vec![]);
    let e = refusal(&g.bytes([1, 2, 5, 5], &y, 13));
    assert!(e.starts_with("node 'prod' (Mul): "), "{e}");
    // A join that closes two forks at once (not series-parallel).
    let mut g = G::new();
    let a = g.node("Relu", "a", &["x"], vec![]);
    let b = g.node("Sigmoid", "b", &["x"], vec![]);
    let c = g.node("Add", "c", &[&a, &b], vec![]);
    let d = g.node("Add", "d", &[&a, &c], vec![]);
    let e = refusal(&g.bytes([1, 2, 5, 5], &d, 13));
    assert!(e.starts_with("graph structure: node '"), "{e}");
    // A batchnorm of an NHWC tensor: ONNX's axis 1 is its rows.
    let mut g = G::new();
    let t = g.node(
        "Transpose",
        "to_nhwc",
        &["x"],
        vec![ints("perm", &[0, 2, 3, 1])],
    );
    let p: Vec<String> = ["s", "b", "m", "v"]
        .iter()
        .map(|p| g.init(p, &[3], vec![1.5; 3]))
        .collect();
    let y = g.node(
        "BatchNormalization",
        "bn",
        &[&t, &p[0], &p[1], &p[2], &p[3]],
        vec![],
    );
    let e = refusal(&g.bytes([1, 2, 3, 3], &y, 13));
    assert!(
        e.starts_with("node 'bn' (BatchNormalization): normalises axis 1 of an NHWC"),
        "{e}"
    );
    // A C,H,W flatten as the output.
    let mut g = G::new();
    let y = g.node("Flatten", "flat", &["x"], vec![]);
    let e = refusal(&g.bytes([1, 2, 3, 3], &y, 13));
    assert!(e.contains("C,H,W order"), "{e}");
}
