//! ONNX operators to language statements. The nodes are read in order, each
//! value's form tracked (an NCHW or NHWC image, a vector in the language's
//! H,W,C order or in PyTorch's C,H,W order, a global pool's `[N, C, 1, 1]`):
//! layout moves (transposes, identities) become aliases of their input,
//! layers become [`Layer`]s with their weights in the runtime's Keras
//! layouts, `Add`/`Sum`/`Concat` of two computed values become joins. A
//! dense layer reading a C,H,W vector gets its kernel rows permuted to the
//! language's H,W,C flatten order.

use std::collections::HashMap;

use super::decode::{Attr, Dim, Graph, Node, Tensor};
use super::fuse::{GELU, HARD_SILU, MINPOOL, SILU, SOFTPLUS};
use super::window::{self, Pad};
use super::ImportError;
use crate::builder::permute;

mod joins;
mod layers;
mod shapes;

/// Largest size of an axis or of a value per sample.
const MAX_SIZE: usize = 1 << 32;

/// How a value is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `[N, C, H, W]`: an image.
    Image { h: usize, w: usize, c: usize },
    /// `[N, H, W, C]`: an image (between the exporter's edge transposes).
    Nhwc { h: usize, w: usize, c: usize },
    /// `[N, C, 1, 1]` out of a global pool: a vector of `C` in the language.
    Pooled(usize),
    /// `[N, n]`; `chw` when the values are an image's in C,H,W order (a
    /// PyTorch flatten), which the language's H,W,C flatten is not.
    Vector { n: usize, chw: Option<[usize; 3]> },
}

impl Form {
    fn len(self) -> usize {
        match self {
            Form::Image { h, w, c } | Form::Nhwc { h, w, c } => {
                h.saturating_mul(w).saturating_mul(c)
            }
            Form::Pooled(n) | Form::Vector { n, .. } => n,
        }
    }
}

/// A weight tensor of a statement: its last path segment (`kernel`, ...),
/// Keras shape and values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer {
    /// The statement's words before its options `nobias` and the activation.
    pub words: String,
    /// Whether the statement takes an activation option (conv, dwconv,
    /// deconv, dense).
    pub takes_act: bool,
    /// `nobias`.
    pub nobias: bool,
    pub act: Option<String>,
    /// A standalone activation statement (its word is `act`).
    pub is_act: bool,
    pub params: Vec<Param>,
}

impl Layer {
    fn plain(words: impl Into<String>) -> Layer {
        Layer {
            words: words.into(),
            takes_act: false,
            nobias: false,
            act: None,
            is_act: false,
            params: Vec::new(),
        }
    }

    fn act(word: String) -> Layer {
        Layer {
            words: String::new(),
            act: Some(word),
            is_act: true,
            ..Layer::plain("")
        }
    }
}

/// A join of branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    Add,
    Concat,
}

/// What an item computes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Layer(Layer),
    Join(JoinKind),
}

/// A step of the imported graph: reads values, writes one.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The ONNX node's name (for messages).
    pub node: String,
    pub op: String,
    pub kind: Kind,
    pub inputs: Vec<usize>,
    pub output: usize,
}

/// The graph as items over numbered values; value 0 is the input.
#[derive(Debug, Clone)]
pub(crate) struct Items {
    pub items: Vec<Item>,
    /// The input's `[H, W, C]`.
    pub input: [usize; 3],
    pub output: usize,
    pub values: usize,
}

fn unsupported(n: &Node, reason: impl Into<String>) -> ImportError {
    ImportError::Unsupported {
        node: n.name.clone(),
        op: n.op.clone(),
        reason: reason.into(),
    }
}

/// The mapping under way.
struct Mapper<'g> {
    g: &'g Graph,
    /// ONNX value name to (value number, form).
    names: HashMap<String, (usize, Form)>,
    items: Vec<Item>,
    /// The item writing each value (value 0: none).
    producer: Vec<Option<usize>>,
    /// How many nodes read each ONNX value name.
    readers: HashMap<String, usize>,
    /// Integer vectors computed from shapes (`None`: the batch size).
    shapes: HashMap<String, Vec<Option<i64>>>,
    /// The input's batch size when the file fixes it (PyTorch's dynamo
    /// exporter writes `Reshape(x, [B, -1])` with it).
    batch: Option<i64>,
}

/// Maps the (fused, live) `nodes` of `g`.
pub(crate) fn map(g: &Graph, nodes: &[Node]) -> Result<Items, ImportError> {
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        for i in &n.inputs {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    *readers.entry(g.output.clone()).or_default() += 1;
    let dims = match g.input_dims.as_slice() {
        [_, Dim::Fixed(a), Dim::Fixed(b), Dim::Fixed(c)] => [*a, *b, *c],
        // A vector input (a multilayer perceptron): `input 1x1xN; flatten`.
        [_, Dim::Fixed(n)] => [*n, 1, 1],
        d => {
            return Err(ImportError::Invalid(format!(
                "the input '{}' has shape {d:?}; the language takes [N, C, H, W], [N, H, W, C] or [N, n] with fixed sizes",
                g.input
            )))
        }
    };
    let vector = g.input_dims.len() == 2;
    // NHWC when every reader of the input moves its channels first (as the
    // exporter's NHWC files do), else ONNX's NCHW.
    let perm_first = |n: &&Node| {
        n.op == "Transpose" && matches!(n.attr("perm"), Some(Attr::Ints(p)) if p == &[0, 3, 1, 2])
    };
    let input_readers: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.inputs.contains(&g.input))
        .collect();
    let nhwc = !vector && !input_readers.is_empty() && input_readers.iter().all(perm_first);
    let (form, input) = if nhwc {
        let [h, w, c] = dims;
        (Form::Nhwc { h, w, c }, [h, w, c])
    } else {
        let [c, h, w] = dims;
        (Form::Image { h, w, c }, [h, w, c])
    };
    let mut m = Mapper {
        g,
        names: HashMap::from([(g.input.clone(), (0, form))]),
        items: Vec::new(),
        producer: vec![None],
        readers,
        shapes: HashMap::new(),
        batch: match g.input_dims.first() {
            Some(Dim::Fixed(b)) => i64::try_from(*b).ok(),
            _ => None,
        },
    };
    if vector {
        let n = dims[0];
        let layer = Layer::plain("flatten");
        m.producer.push(Some(0));
        m.items.push(Item {
            node: g.input.clone(),
            op: "input".to_string(),
            kind: Kind::Layer(layer),
            inputs: vec![0],
            output: 1,
        });
        m.names
            .insert(g.input.clone(), (1, Form::Vector { n, chw: None }));
    }
    for n in nodes {
        m.node(n)?;
    }
    let &(output, form) = m.names.get(&g.output).ok_or_else(|| {
        ImportError::Invalid(format!(
            "the output '{}' is not computed from the input",
            g.output
        ))
    })?;
    if let Form::Vector { chw: Some(_), .. } = form {
        return Err(ImportError::Structure(format!(
            "the output '{}' is an image flattened in C,H,W order; the language flattens H,W,C (flatten in NHWC, or add a dense layer after the flatten)",
            g.output
        )));
    }
    Ok(Items {
        items: m.items,
        input,
        output,
        values: m.producer.len(),
    })
}

/// Integer attribute `name` or `default`.
fn int(n: &Node, name: &str, default: i64) -> Result<i64, ImportError> {
    match n.attr(name) {
        None => Ok(default),
        Some(Attr::Int(v)) => Ok(*v),
        Some(a) => Err(unsupported(
            n,
            format!("attribute {name} = {a:?} is not an integer"),
        )),
    }
}

fn float(n: &Node, name: &str, default: f32) -> Result<f32, ImportError> {
    match n.attr(name) {
        None => Ok(default),
        Some(Attr::Float(v)) => Ok(*v),
        Some(a) => Err(unsupported(
            n,
            format!("attribute {name} = {a:?} is not a float"),
        )),
    }
}

fn string<'n>(n: &'n Node, name: &str, default: &'n str) -> Result<&'n str, ImportError> {
    match n.attr(name) {
        None => Ok(default),
        Some(Attr::Str(s)) => Ok(s),
        Some(a) => Err(unsupported(
            n,
            format!("attribute {name} = {a:?} is not a string"),
        )),
    }
}

/// A list of `len` positive sizes (attribute `name`), or `default`.
fn sizes(
    n: &Node,
    name: &str,
    len: usize,
    default: Option<usize>,
) -> Result<Vec<usize>, ImportError> {
    match n.attr(name) {
        None => default
            .map(|d| vec![d; len])
            .ok_or_else(|| unsupported(n, format!("attribute {name} is missing"))),
        Some(Attr::Ints(v)) if v.len() == len && v.iter().all(|&x| (1..=1 << 16).contains(&x)) => {
            Ok(v.iter().map(|&x| x as usize).collect())
        }
        Some(a) => Err(unsupported(
            n,
            format!("attribute {name} = {a:?} (wants {len} sizes from 1 to 65536)"),
        )),
    }
}

/// A shortest decimal that reads back as `v` (Rust's shortest round-trip
/// form, never in exponent notation).
pub(crate) fn decimal(v: f32) -> String {
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `2` for a square pair, else `2x3`.
pub(crate) fn pair([a, b]: [usize; 2]) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}x{b}")
    }
}

impl<'g> Mapper<'g> {
    /// The constant input `i` of `n`, if it is one.
    fn constant(&self, n: &Node, i: usize) -> Option<&'g Tensor> {
        n.inputs.get(i).and_then(|name| self.g.consts.get(name))
    }

    fn required(&self, n: &Node, i: usize, what: &str) -> Result<&'g Tensor, ImportError> {
        self.constant(n, i).ok_or_else(|| {
            unsupported(
                n,
                format!("input {i} ({what}) must be a constant (an initializer)"),
            )
        })
    }

    /// Float values of constant input `i` with exactly `dims`.
    fn floats(
        &self,
        n: &Node,
        i: usize,
        what: &str,
        dims: &[usize],
    ) -> Result<Vec<f32>, ImportError> {
        let t = self.required(n, i, what)?;
        if t.dims != dims {
            return Err(unsupported(
                n,
                format!("{what} has shape {:?}, expected {dims:?}", t.dims),
            ));
        }
        let v = t
            .floats()
            .ok_or_else(|| unsupported(n, format!("{what} is not float")))?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(unsupported(
                n,
                format!("{what} holds a value that is not finite"),
            ));
        }
        Ok(v)
    }

    /// The computed (non-constant) inputs of `n` with their forms.
    fn data(&self, n: &Node) -> Result<Vec<(usize, Form)>, ImportError> {
        n.inputs
            .iter()
            .filter(|i| {
                !i.is_empty() && !self.g.consts.contains_key(*i) && !self.shapes.contains_key(*i)
            })
            .map(|i| {
                self.names.get(i).copied().ok_or_else(|| {
                    unsupported(
                        n,
                        format!("reads '{i}', which comes from no imported value"),
                    )
                })
            })
            .collect()
    }

    /// The one computed input of `n`, which must be its first.
    fn one(&self, n: &Node) -> Result<(usize, Form), ImportError> {
        let d = self.data(n)?;
        let first_is_data = n
            .inputs
            .first()
            .is_some_and(|i| !self.g.consts.contains_key(i));
        match d.as_slice() {
            [x] if first_is_data => Ok(*x),
            _ => Err(unsupported(
                n,
                format!(
                    "{} computed inputs where one (the first) is expected",
                    d.len()
                ),
            )),
        }
    }

    fn out_name<'n>(&self, n: &'n Node) -> Result<&'n str, ImportError> {
        n.outputs
            .first()
            .map(String::as_str)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| unsupported(n, "no output"))
    }

    /// `n`'s output is `x` itself.
    fn alias(&mut self, n: &Node, x: usize, form: Form) -> Result<(), ImportError> {
        let o = self.out_name(n)?.to_string();
        self.names.insert(o, (x, form));
        Ok(())
    }

    /// Records an item for `n` and its output value.
    fn item(
        &mut self,
        n: &Node,
        kind: Kind,
        inputs: Vec<usize>,
        form: Form,
    ) -> Result<(), ImportError> {
        let o = self.out_name(n)?.to_string();
        // Sizes stay far from overflow (the compiler has its own, lower, limits).
        let dims_ok = match form {
            Form::Image { h, w, c } | Form::Nhwc { h, w, c } => {
                [h, w, c].iter().all(|&d| d <= MAX_SIZE)
            }
            Form::Pooled(n) | Form::Vector { n, .. } => n <= MAX_SIZE,
        };
        if !dims_ok || form.len() > MAX_SIZE {
            return Err(unsupported(n, format!("an output of {form:?}, too large")));
        }
        let v = self.producer.len();
        self.producer.push(Some(self.items.len()));
        self.items.push(Item {
            node: n.name.clone(),
            op: n.op.clone(),
            kind,
            inputs,
            output: v,
        });
        self.names.insert(o, (v, form));
        Ok(())
    }

    fn layer(&mut self, n: &Node, x: usize, layer: Layer, form: Form) -> Result<(), ImportError> {
        self.item(n, Kind::Layer(layer), vec![x], form)
    }

    fn node(&mut self, n: &Node) -> Result<(), ImportError> {
        if self.shape_op(n)? {
            return Ok(());
        }
        match n.op.as_str() {
            "Identity" => {
                let (x, f) = self.one(n)?;
                self.alias(n, x, f)
            }
            "Dropout" => {
                let (x, f) = self.one(n)?;
                let ratio = match self.constant(n, 1) {
                    Some(t) => t.floats().filter(|v| v.len() == 1).map(|v| v[0]),
                    None => Some(float(n, "ratio", 0.5)?),
                };
                match ratio {
                    Some(r) if (0.0..1.0).contains(&r) => {
                        self.layer(n, x, Layer::plain(format!("dropout {}", decimal(r))), f)
                    }
                    _ => Err(unsupported(n, "ratio must be a constant in [0, 1)")),
                }
            }
            "Transpose" => self.transpose(n),
            "Flatten" => {
                let (x, f) = self.one(n)?;
                if int(n, "axis", 1)? != 1 {
                    return Err(unsupported(
                        n,
                        "attribute axis must be 1 (keep the batch axis)",
                    ));
                }
                self.flatten(n, x, f)
            }
            "Reshape" => self.reshape(n),
            "Conv" => self.conv(n),
            "ConvTranspose" => self.deconv(n),
            "MaxPool" | "AveragePool" | MINPOOL => self.pool(n),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let (x, f) = self.one(n)?;
                let Form::Image { c, .. } = f else {
                    return Err(unsupported(n, format!("needs an image, gets {f:?}")));
                };
                let word = if n.op == "GlobalAveragePool" {
                    "globalavgpool"
                } else {
                    "globalmaxpool"
                };
                self.layer(n, x, Layer::plain(word), Form::Pooled(c))
            }
            "ReduceMean" | "ReduceMax" => self.reduce(n),
            "BatchNormalization" => self.batchnorm(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "Add" | "Sum" => self.add(n),
            "Concat" => self.concat(n),
            "Pad" => self.pad(n),
            "Resize" | "Upsample" => self.resize(n),
            _ => match self.activation(n)? {
                Some(word) => {
                    let (x, f) = self.one(n)?;
                    self.layer(n, x, Layer::act(word), f)
                }
                None => Err(unsupported(
                    n,
                    "this operator has no counterpart in the language",
                )),
            },
        }
    }

    /// The activation word of an activation node, `None` for other ops.
    fn activation(&self, n: &Node) -> Result<Option<String>, ImportError> {
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        let word = match n.op.as_str() {
            "Relu" => "relu".to_string(),
            "Sigmoid" => "sigmoid".to_string(),
            "Tanh" => "tanh".to_string(),
            "HardSwish" | HARD_SILU => "hard_silu".to_string(),
            "Softplus" | SOFTPLUS => "softplus".to_string(),
            GELU => "gelu".to_string(),
            SILU => "silu".to_string(),
            "Gelu" => match string(n, "approximate", "none")? {
                "none" => "gelu".to_string(),
                a => {
                    return Err(unsupported(
                        n,
                        format!(
                            "attribute approximate = '{a}' (the language's gelu is the exact one)"
                        ),
                    ))
                }
            },
            "Elu" => {
                let a = float(n, "alpha", 1.0)?;
                if !close(a, 1.0) {
                    return Err(unsupported(
                        n,
                        format!("attribute alpha = {a} (the language's elu has alpha 1)"),
                    ));
                }
                "elu".to_string()
            }
            "Selu" => {
                let (a, g) = (
                    float(n, "alpha", 1.673_263_2)?,
                    float(n, "gamma", 1.050_701)?,
                );
                if !close(a, 1.673_263_2) || !close(g, 1.050_701) {
                    return Err(unsupported(n, format!("attributes alpha = {a}, gamma = {g} (the language's selu has the standard constants)")));
                }
                "selu".to_string()
            }
            "LeakyRelu" => {
                let a = float(n, "alpha", 0.01)?;
                if !(0.0..=1e6).contains(&a) {
                    return Err(unsupported(n, format!("attribute alpha = {a} (the language's slope is a non-negative decimal)")));
                }
                format!("leaky_relu {}", decimal(a))
            }
            "HardSigmoid" => {
                let (a, b) = (float(n, "alpha", 0.2)?, float(n, "beta", 0.5)?);
                if !close(a, 1.0 / 6.0) || !close(b, 0.5) {
                    return Err(unsupported(n, format!("attributes alpha = {a}, beta = {b} (the language's hard_sigmoid is relu6(x + 3) / 6: alpha 1/6, beta 0.5)")));
                }
                "hard_sigmoid".to_string()
            }
            "Clip" => {
                let bound = |i: usize, attr: &str| -> Result<Option<f32>, ImportError> {
                    if self.g.opset < 11 {
                        return Ok(match n.attr(attr) {
                            Some(Attr::Float(v)) => Some(*v),
                            _ => None,
                        });
                    }
                    match n.inputs.get(i).filter(|s| !s.is_empty()) {
                        None => Ok(None),
                        Some(_) => match self.constant(n, i).and_then(|t| t.floats()) {
                            Some(v) if v.len() == 1 => Ok(Some(v[0])),
                            _ => Err(unsupported(
                                n,
                                format!("input {i} ({attr}) must be a constant scalar"),
                            )),
                        },
                    }
                };
                match (bound(1, "min")?, bound(2, "max")?) {
                    (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => "relu6".to_string(),
                    (Some(0.0), None) => "relu".to_string(),
                    (lo, hi) => {
                        return Err(unsupported(n, format!("bounds min = {lo:?}, max = {hi:?} (only [0, 6], relu6, and [0, inf), relu, are layers)")))
                    }
                }
            }
            "Softmax" => {
                let (_, f) = self.one(n)?;
                let axis = int(n, "axis", if self.g.opset < 13 { 1 } else { -1 })?;
                let ok = match f {
                    // Before opset 13 softmax works on the flattened trailing axes.
                    Form::Image { h, w, .. } if self.g.opset < 13 => axis == 1 && h * w == 1,
                    Form::Image { .. } => axis == 1 || axis == -3,
                    Form::Nhwc { .. } => axis == 3 || axis == -1,
                    Form::Pooled(_) => axis == 1 || (self.g.opset >= 13 && axis == -3),
                    Form::Vector { .. } => axis == 1 || axis == -1,
                };
                if !ok {
                    return Err(unsupported(n, format!("attribute axis = {axis} on {f:?} (the language's softmax is over the channels)")));
                }
                "softmax".to_string()
            }
            _ => return Ok(None),
        };
        Ok(Some(word))
    }

    fn transpose(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let perm = match n.attr("perm") {
            Some(Attr::Ints(p)) => p.as_slice(),
            _ => &[],
        };
        let to = match (f, perm) {
            (Form::Image { h, w, c }, [0, 2, 3, 1]) => Form::Nhwc { h, w, c },
            (Form::Nhwc { h, w, c }, [0, 3, 1, 2]) => Form::Image { h, w, c },
            _ => {
                return Err(unsupported(
                    n,
                    format!(
                        "attribute perm = {perm:?} on {f:?} (only NCHW <-> NHWC moves are layout)"
                    ),
                ))
            }
        };
        self.alias(n, x, to)
    }

    fn flatten(&mut self, n: &Node, x: usize, f: Form) -> Result<(), ImportError> {
        match f {
            Form::Image { h, w, c } => {
                let chw = (h * w > 1 && c > 1).then_some([h, w, c]);
                self.layer(
                    n,
                    x,
                    Layer::plain("flatten"),
                    Form::Vector { n: h * w * c, chw },
                )
            }
            Form::Nhwc { h, w, c } => self.layer(
                n,
                x,
                Layer::plain("flatten"),
                Form::Vector {
                    n: h * w * c,
                    chw: None,
                },
            ),
            Form::Pooled(c) => self.alias(n, x, Form::Vector { n: c, chw: None }),
            Form::Vector { .. } => self.alias(n, x, f),
        }
    }

    /// A reshape that is a flatten (`[0 | -1 | 1 | B, n | -1]`, `B` the
    /// input's fixed batch size), or a pooled vector kept as `[N, C, 1, 1]`.
    fn reshape(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let target = self.reshape_target(n)?;
        let shape = target.as_slice();
        let len = f.len() as i64;
        let batch = |a: &i64| (-1..=1).contains(a) || Some(*a) == self.batch;
        match (shape, f) {
            ([a, b], _) if batch(a) && (*b == len || *b == -1) && !(*a == -1 && *b == -1) => {
                self.flatten(n, x, f)
            }
            ([a, c, 1, 1], Form::Pooled(k)) if batch(a) && *c == k as i64 => self.alias(n, x, f),
            _ => Err(unsupported(
                n,
                format!(
                    "a reshape of {f:?} to {shape:?} (only a flatten to [N, {len}] is a layer)"
                ),
            )),
        }
    }
}
