//! ONNX import: an ONNX model's bytes to `.cnn` source and the weights the
//! runtime loads for it (see the crate's documentation for what maps to
//! what).
//!
//! The work goes in stages, one file each: [`decode`] (protobuf to checked
//! plain types), [`fuse`] (multi-node spellings of one layer made one node,
//! dead nodes dropped), [`ops`] (nodes to statements and joins, tracking each
//! value's layout), [`structure`] (forks and joins to nested blocks),
//! [`render`] (text and weight names).

mod decode;
mod fuse;
mod keras;
mod ops;
mod render;
mod structure;
mod window;

pub use decode::ReadExternal;
pub use keras::import_keras;

/// A weight tensor of the imported model: its name in weight files
/// (`layer0.kernel`), its Keras shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// `layer{i}[.branch.j...].{kernel|bias|gamma|...}`.
    pub name: String,
    /// The Keras shape (`(KH, KW, CIN, F)` for a conv kernel...).
    pub shape: Vec<usize>,
    /// The values, row-major in `shape`.
    pub data: Vec<f32>,
}

/// An imported model: `.cnn` source with one `model` block, and its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The model's name (the `model` block's).
    pub name: String,
    /// The `.cnn` text.
    pub source: String,
    /// Every parameter of the model, in statement order.
    pub weights: Vec<Weight>,
}

/// Why an ONNX model could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// A model that breaks ONNX's rules or this importer's limits.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// A node the language cannot express, with why (the attribute or input
    /// at fault).
    #[error("node '{node}' ({op}): {reason}")]
    Unsupported {
        /// The node's name (or `Op#k`, its position, when it has none).
        node: String,
        /// Its operator type.
        op: String,
        /// Which attribute or input, with what value, and what the
        /// language would need.
        reason: String,
    },
    /// Bytes that are not a Keras model file (`.keras` or `.h5`), or one
    /// whose config or weights break Keras's format.
    #[error("not a Keras model: {0}")]
    NotKeras(String),
    /// A Keras layer the language cannot express, or whose weights do not
    /// fit it.
    #[error("layer '{layer}' ({class}): {reason}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// Its class (`Conv2D`...).
        class: String,
        /// Which setting, with what value, and what the language has.
        reason: String,
    },
    /// A graph whose forks and joins do not nest as the language's blocks.
    #[error("graph structure: {0}")]
    Structure(String),
}

/// The `.cnn` model and weights of the ONNX model `bytes`. `name` names the
/// model block (default: from the graph's name).
///
/// # Errors
/// [`ImportError`]: bytes that are not a valid ONNX model, or a node or a
/// graph shape the language cannot express; never a different model.
///
/// ```
/// let err = cnn_onnx::import(b"not onnx", None).unwrap_err();
/// assert!(err.to_string().starts_with("not an ONNX model") || err.to_string().starts_with("invalid"));
/// ```
pub fn import(bytes: &[u8], name: Option<&str>) -> Result<Imported, ImportError> {
    import_with_external(bytes, name, &|location, _, _| {
        Err(format!(
            "its data is in the external file '{}', which this call does not read (cnnc import reads it from the model's folder; see import_with_external)",
            location.escape_debug()
        ))
    })
}

/// [`import`] of a model whose tensors may be in external data files, as
/// PyTorch's dynamo exporter writes them (`model.onnx.data` beside
/// `model.onnx`): `external(location, offset, len)` gives `len` bytes at
/// `offset` of the file `location`, a path relative to the model's folder
/// that the import has checked to stay inside it (no `..`, no root).
///
/// # Errors
/// As [`import`]'s, and `external`'s errors, naming the initializer.
///
/// ```
/// let err = cnn_onnx::import_with_external(b"", None, &|_, _, _| Err("no files".into()));
/// assert!(err.is_err());
/// ```
pub fn import_with_external(
    bytes: &[u8],
    name: Option<&str>,
    external: ReadExternal<'_>,
) -> Result<Imported, ImportError> {
    let g = decode::decode(bytes, external)?;
    let nodes = fuse::fuse(&g);
    let items = ops::map(&g, &nodes)?;
    let tree = structure::structure(&items)?;
    let name = render::model_name(name.unwrap_or(&g.name));
    let comment = format!(
        "Imported from ONNX (graph '{}', opset {}).",
        g.name
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>(),
        g.opset
    );
    let r = render::render(&name, &comment, &items, &tree);
    Ok(Imported {
        name,
        source: r.source,
        weights: r.weights,
    })
}
