//! Decoding and validation: the ONNX bytes through the generated protobuf
//! types, then everything the importer reads checked once, here, into plain
//! types: tensors whose dims agree with their data, attributes by kind,
//! nodes in topological order, one image input, one output.
//!
//! Nothing is allocated from a size the file states: every vector is built
//! from data the file holds (so memory stays of the order of its size), and
//! dimensions are only multiplied with overflow checks.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::ImportError;
use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto, AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};

/// Most nodes a graph may have: the structuring is quadratic in the worst
/// case, and no CNN the language can express comes near.
const MAX_NODES: usize = 10_000;
/// Largest spatial or channel size of the input accepted.
const MAX_DIM: i64 = 1 << 16;

/// A constant tensor: dims and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// The values of a [`Tensor`]: floats (weights) or integers (shapes, pads).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Tensor {
    /// The values as floats (integers converted), or `None` for integers
    /// too large to be exact.
    pub fn floats(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::F32(v) => Some(v.clone()),
            Data::I64(v) => v
                .iter()
                .map(|&x| (x.unsigned_abs() < 1 << 24).then_some(x as f32))
                .collect(),
        }
    }

    /// The values as integers, or `None` for floats.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }
}

/// An attribute's value, by kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Str(String),
    Tensor(Tensor),
    /// Graphs, sparse tensors, lists of strings...: never read.
    Other,
}

/// A node: op type, a name for messages, value names in and out, attributes.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The node's name, or `OpType#k` (its position) when it has none.
    pub name: String,
    pub op: String,
    /// Input value names; `""` is a missing optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<(String, Attr)>,
}

impl Node {
    /// The attribute `name`, if given.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// One dimension of the graph's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(usize),
    Symbolic,
}

/// A validated graph.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    /// Initializers and the outputs of `Constant` nodes, by value name.
    pub consts: HashMap<String, Tensor>,
    pub input: String,
    pub input_dims: Vec<Dim>,
    pub output: String,
    /// The `ai.onnx` opset the graph is written in.
    pub opset: i64,
}

fn invalid(msg: impl Into<String>) -> ImportError {
    ImportError::Invalid(msg.into())
}

/// Decodes and validates `bytes` as an ONNX model; `external` reads the
/// tensors kept in external data files.
pub(crate) fn decode(bytes: &[u8], external: ReadExternal<'_>) -> Result<Graph, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| invalid("no ai.onnx opset is imported"))?;
    if !(1..=1000).contains(&opset) {
        return Err(invalid(format!("opset {opset}")));
    }
    let g = model
        .graph
        .ok_or_else(|| invalid("the model has no graph"))?;
    if g.node.len() > MAX_NODES {
        return Err(invalid(format!(
            "{} nodes (at most {MAX_NODES} are imported)",
            g.node.len()
        )));
    }
    let mut consts = HashMap::new();
    for t in &g.initializer {
        let name = t.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(invalid("an initializer without a name"));
        }
        let tensor =
            tensor(t, external).map_err(|e| invalid(format!("initializer '{name}': {e}")))?;
        if consts.insert(name.clone(), tensor).is_some() {
            return Err(invalid(format!("two initializers named '{name}'")));
        }
    }
    // The data input: the one graph input that is not an initializer (IR
    // versions before 4 list initializers among the inputs too).
    let inputs: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|v| !consts.contains_key(v.name.as_deref().unwrap_or("")))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(invalid(format!(
            "{} data inputs (the language's models have one image input)",
            inputs.len()
        )));
    };
    let input_name = input.name.clone().unwrap_or_default();
    let input_dims = input_dims(input)?;
    let [output] = g.output.as_slice() else {
        return Err(invalid(format!(
            "{} outputs (the language's models have one)",
            g.output.len()
        )));
    };
    let output = output.name.clone().unwrap_or_default();

    // Nodes, in order: every input defined before it is read, every output
    // name new.
    let mut defined: HashSet<String> = consts.keys().cloned().collect();
    if input_name.is_empty() || !defined.insert(input_name.clone()) {
        return Err(invalid("the input has no name or a taken one"));
    }
    let mut nodes = Vec::with_capacity(g.node.len());
    // PyTorch writes a weight shared by two layers, or one it could not
    // fold, as an `Identity` of the initializer: such an output is another
    // name of the constant (a name, not a copy: a file of many such nodes
    // must not multiply the memory a tensor takes).
    let mut const_names: HashMap<String, String> = HashMap::new();
    for (k, n) in g.node.iter().enumerate() {
        let mut node = node(n, k)?;
        for i in &mut node.inputs {
            if let Some(source) = const_names.get(i) {
                i.clone_from(source);
            }
        }
        if !matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
            return Err(ImportError::Unsupported {
                node: node.name,
                op: node.op,
                reason: format!("operator domain '{}'", n.domain.as_deref().unwrap_or("")),
            });
        }
        for i in &node.inputs {
            if !i.is_empty() && !defined.contains(i) {
                return Err(invalid(format!(
                    "node '{}' ({}) reads '{i}', which no earlier node or initializer defines",
                    node.name, node.op
                )));
            }
        }
        for o in &node.outputs {
            if !o.is_empty() && !defined.insert(o.clone()) {
                return Err(invalid(format!(
                    "node '{}' ({}) writes '{o}', which is already defined",
                    node.name, node.op
                )));
            }
        }
        if let ("Identity", [source], [out]) = (
            node.op.as_str(),
            node.inputs.as_slice(),
            node.outputs.as_slice(),
        ) {
            if consts.contains_key(source) && !out.is_empty() {
                const_names.insert(out.clone(), source.clone());
                continue;
            }
        }
        if node.op == "Constant" {
            let [out] = node.outputs.as_slice() else {
                return Err(invalid(format!(
                    "Constant node '{}' with {} outputs",
                    node.name,
                    node.outputs.len()
                )));
            };
            let t = constant(&node)?;
            consts.insert(out.clone(), t);
            continue;
        }
        nodes.push(node);
    }
    if !defined.contains(&output) {
        return Err(invalid(format!("the output '{output}' is never computed")));
    }
    Ok(Graph {
        name: g.name.unwrap_or_default(),
        nodes,
        consts,
        input: input_name,
        input_dims,
        output,
        opset,
    })
}

/// The dims of the input's type: a float tensor with a known rank, each
/// axis a positive size or symbolic.
fn input_dims(v: &ValueInfoProto) -> Result<Vec<Dim>, ImportError> {
    let name = v.name.as_deref().unwrap_or("");
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(invalid(format!("the input '{name}' is not a tensor")));
    };
    if t.elem_type != Some(DataType::Float as i32) {
        return Err(invalid(format!(
            "the input '{name}' is not float32 (element type {:?})",
            t.elem_type
        )));
    }
    let shape = t
        .shape
        .as_ref()
        .ok_or_else(|| invalid(format!("the input '{name}' has no shape")))?;
    if shape.dim.len() > 8 {
        return Err(invalid(format!(
            "the input '{name}' has rank {}",
            shape.dim.len()
        )));
    }
    shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) if (1..=MAX_DIM).contains(&v) => {
                Ok(Dim::Fixed(v as usize))
            }
            Some(dimension::Value::DimValue(v)) => Err(invalid(format!(
                "the input '{name}' has a dimension of {v}"
            ))),
            _ => Ok(Dim::Symbolic),
        })
        .collect()
}

/// Converts a node, checking its attributes.
fn node(n: &NodeProto, k: usize) -> Result<Node, ImportError> {
    let op = n.op_type.clone().unwrap_or_default();
    let name = match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{op}#{k}"),
    };
    let mut attrs = Vec::with_capacity(n.attribute.len());
    for a in &n.attribute {
        let an = a.name.clone().unwrap_or_default();
        let v =
            attr(a).map_err(|e| invalid(format!("node '{name}' ({op}): attribute '{an}': {e}")))?;
        attrs.push((an, v));
    }
    Ok(Node {
        name,
        op,
        inputs: n.input.clone(),
        outputs: n.output.clone(),
        attrs,
    })
}

fn attr(a: &AttributeProto) -> Result<Attr, String> {
    let kind = a.r#type.and_then(|t| AttributeType::try_from(t).ok());
    Ok(match kind {
        Some(AttributeType::Int) => Attr::Int(a.i.ok_or("no value")?),
        Some(AttributeType::Float) => Attr::Float(a.f.ok_or("no value")?),
        Some(AttributeType::Ints) => Attr::Ints(a.ints.clone()),
        Some(AttributeType::Floats) => Attr::Floats(a.floats.clone()),
        Some(AttributeType::String) => {
            Attr::Str(String::from_utf8(a.s.clone().ok_or("no value")?).map_err(|_| "not UTF-8")?)
        }
        Some(AttributeType::Tensor) => {
            Attr::Tensor(tensor(a.t.as_ref().ok_or("no value")?, &|_, _, _| {
                Err("a node attribute's data in an external file".into())
            })?)
        }
        _ => Attr::Other,
    })
}

/// A `Constant` node's value.
fn constant(n: &Node) -> Result<Tensor, ImportError> {
    let err = |what: &str| ImportError::Unsupported {
        node: n.name.clone(),
        op: n.op.clone(),
        reason: what.to_string(),
    };
    let [(name, a)] = n.attrs.as_slice() else {
        return Err(err("a Constant needs exactly one value attribute"));
    };
    Ok(match (name.as_str(), a) {
        ("value", Attr::Tensor(t)) => t.clone(),
        ("value_float", Attr::Float(f)) => Tensor {
            dims: vec![],
            data: Data::F32(vec![*f]),
        },
        ("value_floats", Attr::Floats(f)) => Tensor {
            dims: vec![f.len()],
            data: Data::F32(f.clone()),
        },
        ("value_int", Attr::Int(i)) => Tensor {
            dims: vec![],
            data: Data::I64(vec![*i]),
        },
        ("value_ints", Attr::Ints(i)) => Tensor {
            dims: vec![i.len()],
            data: Data::I64(i.clone()),
        },
        _ => {
            return Err(err(&format!(
                "attribute '{name}' (only float and int64 values are read)"
            )))
        }
    })
}

/// Reads `len` bytes at `offset` of the external data file `location` (a
/// path relative to the model's folder, checked to stay inside it).
pub type ReadExternal<'a> = &'a dyn Fn(&str, u64, usize) -> Result<Vec<u8>, String>;

/// `location` if it names a file inside the model's folder: relative, no
/// `..`, no root or drive (ONNX's rule for external data).
fn external_location(location: &str) -> Result<&str, String> {
    let ok = !location.is_empty()
        && !location.contains('\\')
        && !location.contains(':')
        && std::path::Path::new(location)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(location)
    } else {
        Err(format!(
            "external data location '{}' is not a file inside the model's folder",
            location.escape_debug()
        ))
    }
}

/// The bytes of a tensor whose data is in an external file: `len` of them,
/// as its dims and type need (a stated `length` must agree).
fn external_bytes(t: &TensorProto, len: usize, read: ReadExternal<'_>) -> Result<Vec<u8>, String> {
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for e in &t.external_data {
        let value = e.value.as_deref().unwrap_or("");
        let number = || {
            value.parse::<u64>().map_err(|_| {
                format!(
                    "external data {}: '{}'",
                    e.key.as_deref().unwrap_or(""),
                    value.escape_debug()
                )
            })
        };
        match e.key.as_deref() {
            Some("location") => location = Some(value),
            Some("offset") => offset = number()?,
            Some("length") => length = Some(number()?),
            Some("checksum") => {}
            k => return Err(format!("external data key {k:?}")),
        }
    }
    let location = external_location(location.ok_or("external data without a location")?)?;
    if let Some(l) = length {
        if l != len as u64 {
            return Err(format!(
                "external data of {l} bytes, the dims and type need {len}"
            ));
        }
    }
    let bytes = read(location, offset, len)?;
    if bytes.len() != len {
        return Err(format!(
            "{} bytes read from '{location}', {len} needed",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A tensor's dims and values, checked to agree; float32, float64 (to
/// float32), int64 and int32 (to int64).
fn tensor(t: &TensorProto, external: ReadExternal<'_>) -> Result<Tensor, String> {
    let mut n: usize = 1;
    let mut dims = Vec::with_capacity(t.dims.len().min(16));
    if t.dims.len() > 16 {
        return Err(format!("rank {}", t.dims.len()));
    }
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("dimension {d}"))?;
        n = n.checked_mul(d).ok_or("its dimensions overflow")?;
        dims.push(d);
    }
    let kind = t.data_type.and_then(|k| DataType::try_from(k).ok());
    let ext = if t.data_location == Some(1) || !t.external_data.is_empty() {
        let width = match kind {
            Some(DataType::Float | DataType::Int32) => 4,
            Some(DataType::Double | DataType::Int64) => 8,
            other => {
                return Err(format!(
                    "element type {other:?} (float32, float64, int32 and int64 are read)"
                ))
            }
        };
        let len = n.checked_mul(width).ok_or("its dimensions overflow")?;
        Some(external_bytes(t, len, external)?)
    } else {
        None
    };
    let raw = ext.as_deref().or(t.raw_data.as_deref());
    let sized = |len: usize, width: usize| -> Result<(), String> {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "dims {dims:?} hold {n} values, the data {len}{}",
                if width > 0 {
                    format!(" ({width}-byte values)")
                } else {
                    String::new()
                }
            ))
        }
    };
    let data = match kind {
        Some(DataType::Float) => match raw {
            Some(r) => {
                if r.len() % 4 != 0 {
                    return Err(format!("{} bytes of float32 data", r.len()));
                }
                sized(r.len() / 4, 4)?;
                Data::F32(
                    r.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            None => {
                sized(t.float_data.len(), 0)?;
                Data::F32(t.float_data.clone())
            }
        },
        Some(DataType::Double) => match raw {
            Some(r) => {
                if r.len() % 8 != 0 {
                    return Err(format!("{} bytes of float64 data", r.len()));
                }
                sized(r.len() / 8, 8)?;
                Data::F32(
                    r.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                        .collect(),
                )
            }
            None => {
                sized(t.double_data.len(), 0)?;
                Data::F32(t.double_data.iter().map(|&v| v as f32).collect())
            }
        },
        Some(DataType::Int64) => match raw {
            Some(r) => {
                if r.len() % 8 != 0 {
                    return Err(format!("{} bytes of int64 data", r.len()));
                }
                sized(r.len() / 8, 8)?;
                Data::I64(
                    r.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                )
            }
            None => {
                sized(t.int64_data.len(), 0)?;
                Data::I64(t.int64_data.clone())
            }
        },
        Some(DataType::Int32) => match raw {
            Some(r) => {
                if r.len() % 4 != 0 {
                    return Err(format!("{} bytes of int32 data", r.len()));
                }
                sized(r.len() / 4, 4)?;
                Data::I64(
                    r.chunks_exact(4)
                        .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                        .collect(),
                )
            }
            None => {
                sized(t.int32_data.len(), 0)?;
                Data::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
        },
        other => {
            return Err(format!(
                "element type {other:?} (float32, float64, int32 and int64 are read)"
            ))
        }
    };
    Ok(Tensor { dims, data })
}
