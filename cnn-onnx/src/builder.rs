//! Writing ONNX graph pieces: nodes with fresh output names, initializers,
//! attributes, and the value descriptions of the graph's input and output.
//! Everything that touches the generated protobuf types directly lives here,
//! so the lowering reads as a list of operators.

use std::collections::HashSet;

use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
    tensor_shape_proto::dimension, type_proto, AttributeProto, NodeProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The nodes and initializers of the graph under construction, in order
/// (ONNX wants nodes topologically sorted; they are appended as the plan's
/// steps, which are in topological order, are lowered).
#[derive(Default)]
pub(crate) struct Builder {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    /// Every name given to a value so far: ONNX needs them unique in a graph.
    names: HashSet<String>,
}

impl Builder {
    /// `hint` itself if no value has that name yet, else `hint.1`, `hint.2`, ...
    pub fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_string();
        let mut n = 0;
        while self.names.contains(&name) {
            n += 1;
            name = format!("{hint}.{n}");
        }
        self.names.insert(name.clone());
        name
    }

    /// Appends an `op` node reading `inputs` (`""` for a missing optional
    /// input) and returns the name of its one output, made fresh from `out`.
    pub fn node(
        &mut self,
        op: &str,
        out: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh(out);
        self.nodes.push(NodeProto {
            op_type: Some(op.to_string()),
            name: Some(output.clone()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute: attributes,
            ..Default::default()
        });
        output
    }

    /// A float initializer of `dims` holding `data` (row-major), named fresh
    /// from `name`; returns its name.
    pub fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(name);
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(raw),
            ..Default::default()
        });
        name
    }

    /// An int64 initializer (shapes, pads, axes), as [`Builder::init_f32`].
    pub fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(name);
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Int64 as i32),
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name
    }

    /// A float scalar shared by every node that needs the same constant:
    /// named after `name`, created on first use.
    pub fn scalar(&mut self, name: &str, v: f32) -> String {
        if !self.inits.iter().any(|t| t.name.as_deref() == Some(name)) {
            let made = self.init_f32(name, &[], &[v]);
            debug_assert_eq!(made, name, "a constant's name taken by a value");
        }
        name.to_string()
    }
}

fn attribute(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// An integer attribute.
pub(crate) fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attribute(name, AttributeType::Int)
    }
}

/// A list-of-integers attribute (sizes are never near `i64::MAX`).
pub(crate) fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        ints: v.iter().map(|&x| x as i64).collect(),
        ..attribute(name, AttributeType::Ints)
    }
}

/// A float attribute.
pub(crate) fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attribute(name, AttributeType::Float)
    }
}

/// A string attribute.
pub(crate) fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attribute(name, AttributeType::String)
    }
}

/// A graph input or output: a float tensor whose first axis is the batch
/// (the symbolic `N`, so one file serves every batch size) and whose other
/// axes are `dims`.
pub(crate) fn batched_value(name: &str, dims: &[usize]) -> ValueInfoProto {
    let batch = tensor_shape_proto::Dimension {
        value: Some(dimension::Value::DimParam("N".to_string())),
        ..Default::default()
    };
    let rest = dims.iter().map(|&d| tensor_shape_proto::Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    });
    let shape = TensorShapeProto {
        dim: std::iter::once(batch).chain(rest).collect(),
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `data` (row-major, of `shape`) with its axes permuted: axis `k` of the
/// result is axis `perm[k]` of the input (NumPy's `transpose(perm)`). How
/// Keras's kernel layouts become ONNX's.
pub(crate) fn permute(data: &[f32], shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<f32>) {
    debug_assert_eq!(shape.len(), perm.len());
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    let rank = shape.len();
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    // Row-major strides of the input, taken in the output's axis order.
    let mut strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    let in_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..data.len() {
        let src: usize = idx.iter().zip(&in_strides).map(|(i, s)| i * s).sum();
        out.push(data[src]);
        // Odometer over the output's indices, last axis fastest.
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    (out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_is_numpy_transpose() {
        // A (2, 3) matrix transposed.
        let (s, d) = permute(&[0., 1., 2., 3., 4., 5.], &[2, 3], &[1, 0]);
        assert_eq!(s, [3, 2]);
        assert_eq!(d, [0., 3., 1., 4., 2., 5.]);
        // (KH, KW, CIN, F) = (1, 2, 2, 3) to (F, CIN, KH, KW): element
        // [0, kw, ci, f] lands at [f, ci, 0, kw].
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (s, d) = permute(&data, &[1, 2, 2, 3], &[3, 2, 0, 1]);
        assert_eq!(s, [3, 2, 1, 2]);
        let at = |kw: usize, ci: usize, f: usize| data[kw * 6 + ci * 3 + f];
        for f in 0..3 {
            for ci in 0..2 {
                for kw in 0..2 {
                    assert_eq!(d[f * 4 + ci * 2 + kw], at(kw, ci, f));
                }
            }
        }
    }

    #[test]
    fn names_are_made_unique() {
        let mut b = Builder::default();
        assert_eq!(b.fresh("x"), "x");
        assert_eq!(b.fresh("x"), "x.1");
        assert_eq!(b.fresh("x"), "x.2");
        assert_eq!(b.scalar("six", 6.0), "six");
        assert_eq!(b.scalar("six", 6.0), "six");
        assert_eq!(b.inits.len(), 1);
    }
}
