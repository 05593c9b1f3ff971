//! The two files Keras saves a model in, read to the model's config (JSON)
//! and each layer's weight arrays:
//!
//! - `.keras` (Keras 3): a zip of `config.json` and `model.weights.h5`, whose
//!   arrays are `layers/{store name}/vars/{i}` (the store name is the layer
//!   class in snake case, numbered from the second of a class on:
//!   `conv2d`, `conv2d_1`; see [`store_names`]);
//! - `.h5` (Keras 2, and Keras 3's legacy format): one HDF5 file whose root
//!   attribute `model_config` is the config and whose group
//!   `model_weights/{layer name}` lists its arrays in attribute
//!   `weight_names`.
//!
//! HDF5 is read by `hdf5-reader` (pure Rust, bounds-checked) with limits
//! that keep every allocation within a small multiple of the file's size;
//! the zip by the `zip` crate, each member read to at most its limit.

use std::io::{Cursor, Read};

use hdf5_reader::{Hdf5File, OpenOptions};
use serde_json::Value;

use super::super::ImportError;

/// The first bytes of an HDF5 file (at offset 0, as h5py writes them).
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";
/// The first bytes of a zip archive (a local file header).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// Largest `config.json` read from a `.keras` file.
const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// Largest `model.weights.h5` read from a `.keras` file.
const MAX_WEIGHTS_BYTES: u64 = 4 << 30;
/// Largest number of arrays of one layer.
const MAX_ARRAYS: usize = 64;

/// A weight array: its shape and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where the arrays are.
enum Store {
    /// Keras 3's `layers/{store name}/vars/{i}`.
    Vars,
    /// The legacy `model_weights/{layer name}` with `weight_names`.
    Legacy,
}

/// A saved model: its config and its weights file.
pub(crate) struct Saved {
    /// The model's config: `{"class_name": "Functional", "config": {...}}`.
    pub config: Value,
    /// The major version of the Keras that saved it, when the file says
    /// (`keras_version`): some activations changed meaning at Keras 3.
    pub keras_major: Option<u32>,
    h5: Hdf5File,
    /// The weights file's bytes (variable-length strings are read from them).
    bytes: Vec<u8>,
    store: Store,
}

fn bad(what: impl std::fmt::Display) -> ImportError {
    ImportError::NotKeras(what.to_string())
}

/// HDF5 `bytes` opened with limits fit for a file of that size: no read,
/// chunk or header larger than the file could hold (16 times its size, for
/// compressed data, and at least 1 MiB).
fn open_h5(bytes: &[u8]) -> Result<Hdf5File, ImportError> {
    let limit = bytes.len().saturating_mul(16).max(1 << 20);
    let options = OpenOptions::default()
        .with_max_read_bytes(limit)
        .with_max_chunk_bytes(limit)
        .with_max_object_header_bytes(limit.min(64 << 20))
        .with_chunk_cache_bytes(0);
    Hdf5File::from_bytes_with_options(bytes, options).map_err(|e| bad(format!("HDF5: {e}")))
}

/// Reads a `.keras` or `.h5` file's bytes (told apart by their first bytes).
pub(crate) fn read(bytes: &[u8]) -> Result<Saved, ImportError> {
    if bytes.starts_with(ZIP_MAGIC) {
        read_keras(bytes)
    } else if bytes.starts_with(HDF5_MAGIC) {
        read_h5(bytes.to_vec())
    } else {
        Err(bad(
            "neither a .keras file (a zip) nor an .h5 file (HDF5): the first bytes are neither's",
        ))
    }
}

/// Member `name` of the zip, at most `max` bytes of it.
fn member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    max: u64,
) -> Result<Vec<u8>, ImportError> {
    let f = zip
        .by_name(name)
        .map_err(|e| bad(format!("the .keras zip has no readable '{name}': {e}")))?;
    if f.size() > max {
        return Err(bad(format!(
            "'{name}' holds {} bytes, more than {max}",
            f.size()
        )));
    }
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("'{name}': {e}")))?;
    if out.len() as u64 > max {
        return Err(bad(format!("'{name}' inflates past {max} bytes")));
    }
    Ok(out)
}

fn read_keras(bytes: &[u8]) -> Result<Saved, ImportError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("a broken .keras zip: {e}")))?;
    let config = member(&mut zip, "config.json", MAX_CONFIG_BYTES)?;
    let config: Value = serde_json::from_slice(&config)
        .map_err(|e| bad(format!("config.json is not JSON: {e}")))?;
    let weights = member(&mut zip, "model.weights.h5", MAX_WEIGHTS_BYTES)?;
    if !weights.starts_with(HDF5_MAGIC) {
        return Err(bad("model.weights.h5 is not an HDF5 file"));
    }
    // `metadata.json` (optional): `{"keras_version": "3.15.1", ...}`.
    let keras_major = member(&mut zip, "metadata.json", 1 << 20)
        .ok()
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .and_then(|m| m.get("keras_version")?.as_str().and_then(major));
    Ok(Saved {
        config,
        keras_major,
        h5: open_h5(&weights)?,
        bytes: weights,
        store: Store::Vars,
    })
}

fn read_h5(bytes: Vec<u8>) -> Result<Saved, ImportError> {
    let h5 = open_h5(&bytes)?;
    let root = h5.root_group().map_err(|e| bad(format!("HDF5: {e}")))?;
    let text = strings(&root_attr(&root, "model_config")?, &bytes, &h5)?
        .into_iter()
        .next()
        .ok_or_else(|| bad("the attribute model_config is empty"))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("the attribute model_config is not JSON: {e}")))?;
    let keras_major = root
        .attribute("keras_version")
        .ok()
        .and_then(|a| strings(&a, &bytes, &h5).ok())
        .and_then(|v| v.first().and_then(|v| major(v)));
    Ok(Saved {
        config,
        keras_major,
        h5,
        bytes,
        store: Store::Legacy,
    })
}

/// The major version of a version string (`"2.15.0"` -> 2).
fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.trim().parse().ok()
}

fn root_attr(
    g: &hdf5_reader::group::Group,
    name: &str,
) -> Result<hdf5_reader::Attribute, ImportError> {
    g.attribute(name).map_err(|e| {
        bad(format!(
            "an HDF5 file without the attribute '{name}' of a Keras model ({e}); weights-only files (.weights.h5) hold no model"
        ))
    })
}

/// The strings of a string attribute, fixed or variable length.
fn strings(
    a: &hdf5_reader::Attribute,
    bytes: &[u8],
    h5: &Hdf5File,
) -> Result<Vec<String>, ImportError> {
    // h5py writes an empty list as an empty float array.
    if a.num_elements().is_ok_and(|n| n == 0) {
        return Ok(Vec::new());
    }
    a.read_strings()
        .or_else(|_| a.read_vlen_strings(bytes, h5.superblock().offset_size))
        .or_else(|_| a.read_string().map(|s| vec![s]))
        .map_err(|e| bad(format!("attribute '{}': {e}", a.name)))
}

impl Saved {
    /// The arrays of the layer named `layer` (`store`: its store name in a
    /// `.keras` file), in Keras's order of `layer.weights`; none for a layer
    /// the file keeps nothing for.
    pub(crate) fn arrays(&self, layer: &str, store: &str) -> Result<Vec<Array>, ImportError> {
        match self.store {
            Store::Vars => {
                let path = format!("/layers/{store}/vars");
                let Ok(g) = self.h5.group(&path) else {
                    return Ok(Vec::new());
                };
                let (_, names) = g
                    .member_names()
                    .map_err(|e| bad(format!("HDF5 group {path}: {e}")))?;
                if names.len() > MAX_ARRAYS {
                    return Err(bad(format!("{path} holds {} arrays", names.len())));
                }
                (0..names.len())
                    .map(|i| self.array(&format!("{path}/{i}")))
                    .collect()
            }
            Store::Legacy => {
                let path = format!("/model_weights/{layer}");
                let Ok(g) = self.h5.group(&path) else {
                    return Ok(Vec::new());
                };
                let names = match g.attribute("weight_names") {
                    Ok(a) => strings(&a, &self.bytes, &self.h5)?,
                    Err(_) => return Ok(Vec::new()),
                };
                if names.len() > MAX_ARRAYS {
                    return Err(bad(format!("{path} names {} arrays", names.len())));
                }
                names
                    .iter()
                    .map(|n| self.array(&format!("{path}/{n}")))
                    .collect()
            }
        }
    }

    /// The float array at `path`.
    fn array(&self, path: &str) -> Result<Array, ImportError> {
        let d = self
            .h5
            .dataset(path)
            .map_err(|e| bad(format!("HDF5 dataset {path}: {e}")))?;
        let shape: Vec<usize> = d
            .shape()
            .iter()
            .map(|&s| usize::try_from(s).map_err(|_| bad(format!("{path}: size {s}"))))
            .collect::<Result<_, _>>()?;
        let arr = d
            .read_array::<f32>()
            .map_err(|e| bad(format!("HDF5 dataset {path}: {e}")))?;
        let data: Vec<f32> = arr.iter().copied().collect();
        if data.len() != shape.iter().product::<usize>() {
            return Err(bad(format!(
                "{path}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        Ok(Array { shape, data })
    }
}

/// Keras 3's name of each layer's weights in a `.keras` file, in the
/// model's layer order: the class in snake case (`Conv2D` -> `conv2d`,
/// `BatchNormalization` -> `batch_normalization`), `_1`, `_2`... after the
/// first of a class.
pub(crate) fn store_names<'a>(classes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    classes
        .into_iter()
        .map(|c| {
            let base = snake_case(c);
            let n = seen.entry(base.clone()).or_insert(0);
            let name = if *n == 0 { base } else { format!("{base}_{n}") };
            *n += 1;
            name
        })
        .collect()
}

/// Keras's `to_snake_case`: word characters only, `_` before an upper-case
/// letter that starts a word (`BatchNormalization`) or follows a lower-case
/// letter or digit... as Keras's two regular expressions do, then lower case.
fn snake_case(name: &str) -> String {
    let cs: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // First pass: `(.)([A-Z][a-z]+)` -> `\1_\2`.
    let mut a: Vec<char> = Vec::with_capacity(cs.len() * 2);
    for (i, &c) in cs.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && cs.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        {
            a.push('_');
        }
        a.push(c);
    }
    // Second pass: `([a-z])([A-Z])` -> `\1_\2`.
    let mut b = String::with_capacity(a.len() * 2);
    for (i, &c) in a.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && a[i - 1].is_ascii_lowercase() {
            b.push('_');
        }
        b.push(c);
    }
    b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_follow_keras() {
        let names = store_names([
            "InputLayer",
            "Conv2D",
            "BatchNormalization",
            "Conv2D",
            "DepthwiseConv2D",
            "Conv2DTranspose",
            "SeparableConv2D",
            "Conv2D",
            "ReLU",
            "GlobalAveragePooling2D",
        ]);
        assert_eq!(
            names,
            [
                "input_layer",
                "conv2d",
                "batch_normalization",
                "conv2d_1",
                "depthwise_conv2d",
                "conv2d_transpose",
                "separable_conv2d",
                "conv2d_2",
                "re_lu",
                "global_average_pooling2d",
            ]
        );
    }

    #[test]
    fn other_bytes_are_refused() {
        for bytes in [&b""[..], b"PK", b"\x89HDF\r\n\x1a\n", b"PK\x03\x04junk"] {
            assert!(read(bytes).is_err());
        }
    }
}
