//! Saving and loading a model's weights: `.safetensors` or `.npz`, chosen by the
//! file's extension.
//!
//! Tensors are named `layer{i}.kernel` / `layer{i}.bias` in Keras layout, so a
//! `.npz` written from a Keras model's weights loads directly. Loading checks
//! every tensor the model has is present with the model's shape, that the file
//! holds no tensor the model lacks (a sign of a different architecture), and that
//! all values are finite; errors name the tensor.
//!
//! Metadata: class names. In `.safetensors` they are the `"classes"` entry of
//! `__metadata__`, a JSON list of strings. In `.npz` they are a member
//! `classes.json` holding the same JSON text (not an array: `np.load` returns it
//! as bytes).

use super::npy::npy_bytes;
use super::npz::Npz;
use super::safetensors::{read_safetensors, safetensors_bytes};
use crate::{Error, Model, Result};
use std::collections::HashMap;
use std::path::Path;

/// Member of an `.npz` holding the class names as JSON.
const NPZ_CLASSES: &str = "classes.json";
/// Longest class list accepted from a file (bytes of JSON).
const MAX_CLASSES_JSON: u64 = 1 << 20;

/// What a weights file carries besides the tensors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightsMeta {
    /// Class names, index = label (empty when unknown).
    pub classes: Vec<String>,
}

enum Kind {
    SafeTensors,
    Npz,
}

fn kind(path: &Path) -> Result<Kind> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("safetensors") => Ok(Kind::SafeTensors),
        Some("npz") => Ok(Kind::Npz),
        _ => Err(Error::Invalid(format!(
            "{}: unknown weights format (use a .safetensors or .npz file name)",
            path.display()
        ))),
    }
}

/// Writes the model's parameters (and `meta`) to `path`, atomically.
pub fn save_weights(model: &dyn Model, path: &Path, meta: &WeightsMeta) -> Result<()> {
    let params = model.params();
    let classes_json = serde_json::to_string(&meta.classes)
        .map_err(|e| Error::Invalid(format!("class names: {e}")))?;
    match kind(path)? {
        Kind::SafeTensors => {
            let tensors: Vec<(String, Vec<usize>, &[f32])> = params
                .iter()
                .map(|p| (p.name.clone(), p.shape.clone(), p.data))
                .collect();
            let mut md = HashMap::new();
            if !meta.classes.is_empty() {
                md.insert("classes".to_string(), classes_json);
            }
            let bytes = safetensors_bytes(&tensors, &md)?;
            super::write_atomic(path, &bytes)
        }
        Kind::Npz => {
            let mut arrays = Vec::with_capacity(params.len() + 1);
            for p in &params {
                arrays.push((p.name.clone(), npy_bytes(&p.shape, p.data)?));
            }
            // Arrays are `<name>.npy` members; the classes member is raw JSON.
            let mut entries: Vec<(String, Vec<u8>)> = arrays
                .into_iter()
                .map(|(n, b)| (format!("{n}.npy"), b))
                .collect();
            if !meta.classes.is_empty() {
                entries.push((NPZ_CLASSES.to_string(), classes_json.into_bytes()));
            }
            let bytes = super::npz::zip_stored(&entries)?;
            super::write_atomic(path, &bytes)
        }
    }
}

/// Loads parameters from `path` into `model`, returning the file's metadata.
/// The model is left unchanged when anything is wrong.
pub fn load_weights(model: &mut dyn Model, path: &Path) -> Result<WeightsMeta> {
    let (tensors, meta) = match kind(path)? {
        Kind::SafeTensors => {
            let (t, md) = read_safetensors(path)?;
            let classes = match md.get("classes") {
                Some(s) => parse_classes(s.as_bytes(), path)?,
                None => Vec::new(),
            };
            (t, WeightsMeta { classes })
        }
        Kind::Npz => {
            let npz = Npz::open(path)?;
            let mut t = Vec::new();
            for name in npz.names() {
                if name == NPZ_CLASSES {
                    continue;
                }
                let a = npz.read(name)?;
                let shape = a.shape.clone();
                let data = a.into_f32(path, name)?.into_raw_vec_and_offset().0;
                t.push((name.to_string(), shape, data));
            }
            let classes = match npz.raw(NPZ_CLASSES, MAX_CLASSES_JSON)? {
                Some(b) => parse_classes(&b, path)?,
                None => Vec::new(),
            };
            (t, WeightsMeta { classes })
        }
    };
    // Check everything before changing anything.
    let params = model.params();
    let mut plan = Vec::with_capacity(params.len());
    for (slot, p) in params.iter().enumerate() {
        let Some(k) = tensors.iter().position(|(n, _, _)| *n == p.name) else {
            return Err(Error::Weights(format!(
                "{}: tensor '{}' (shape {:?}) is missing",
                path.display(),
                p.name,
                p.shape
            )));
        };
        let (_, shape, data) = &tensors[k];
        if *shape != p.shape {
            return Err(Error::Weights(format!(
                "{}: tensor '{}' has shape {:?}, the model needs {:?}",
                path.display(),
                p.name,
                shape,
                p.shape
            )));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{}: tensor '{}' holds {} at flat index {i}",
                path.display(),
                p.name,
                data[i]
            )));
        }
        plan.push((slot, k));
    }
    let extra: Vec<&str> = tensors
        .iter()
        .map(|(n, _, _)| n.as_str())
        .filter(|n| !params.iter().any(|p| p.name == *n))
        .collect();
    if !extra.is_empty() {
        return Err(Error::Weights(format!(
            "{}: tensors {:?} are not parameters of this model (a different architecture?)",
            path.display(),
            extra
        )));
    }
    drop(params);
    let mut params = model.params_mut();
    for (slot, k) in plan {
        params[slot].data.copy_from_slice(&tensors[k].2);
    }
    Ok(meta)
}

fn parse_classes(bytes: &[u8], path: &Path) -> Result<Vec<String>> {
    serde_json::from_slice::<Vec<String>>(bytes).map_err(|e| {
        Error::format(
            path,
            format!("class names are not a JSON list of strings: {e}"),
        )
    })
}
