//! `.safetensors` files through the `safetensors` crate, which validates the
//! header (size cap, offsets contiguous and inside the file, sizes matching
//! shapes) before any tensor is touched.

use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use safetensors::SafeTensorError;
use std::collections::HashMap;
use std::path::Path;

/// What went wrong, in words (the crate's error names, such as
/// `MetadataIncompleteBuffer`, mean nothing to a user).
fn describe(e: &SafeTensorError) -> String {
    use SafeTensorError as E;
    match e {
        E::HeaderTooSmall => "the file is too short to hold a header (truncated?)".into(),
        E::HeaderTooLarge => {
            "the header claims more than 100 MB (corrupt, or not a safetensors file)".into()
        }
        E::InvalidHeaderLength => {
            "the header's length runs past the end of the file (truncated?)".into()
        }
        E::InvalidHeader | E::InvalidHeaderStart => "the header is not JSON text".into(),
        E::InvalidHeaderDeserialization | E::JsonError(_) => {
            "the header is not the JSON of a safetensors file".into()
        }
        E::MetadataIncompleteBuffer => {
            "the tensors take more bytes than the file holds (truncated?)".into()
        }
        E::InvalidOffset(name) => format!("tensor '{name}' has offsets that overlap or leave gaps"),
        E::TensorInvalidInfo => "a tensor's shape and byte size disagree".into(),
        E::ValidationOverflow => "a tensor's size overflows".into(),
        E::TensorNotFound(name) => format!("no tensor '{name}'"),
        E::InvalidTensorView(dtype, shape, len) => {
            format!("{len} bytes cannot hold a {dtype:?} tensor of shape {shape:?}")
        }
        E::IoError(err) => err.to_string(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// A tensor read from a file: name, shape, `f32` data (row-major).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Reads every tensor of a `.safetensors` file as `f32` (`F32` stored as is,
/// `F64` rounded; other dtypes are refused), in file order, with the
/// `__metadata__` map (empty when absent).
pub fn read_safetensors(path: &Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let bytes = super::read_regular_file(path)?;
    parse_safetensors(&bytes, path)
}

/// As [`read_safetensors`], from bytes in memory (`path` names them in errors).
pub fn parse_safetensors(
    bytes: &[u8],
    path: &Path,
) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let fmt = |m: String| Error::format(path, m);
    let bad = |e: SafeTensorError| fmt(format!("not a valid safetensors file: {}", describe(&e)));
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    // Keep the file's order (offset order) so that messages and listings are stable.
    let mut views: Vec<(String, TensorView<'_>)> = st.tensors();
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    let mut out = Vec::with_capacity(views.len());
    for (name, v) in views {
        let data: Vec<f32> = match v.dtype() {
            Dtype::F32 => v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => v
                .data()
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
            d => {
                return Err(fmt(format!(
                    "tensor '{name}': dtype {d:?} is not supported (F32 or F64)"
                )))
            }
        };
        out.push((name, v.shape().to_vec(), data));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// The bytes of a `.safetensors` file holding `f32` tensors and `metadata`.
pub fn safetensors_bytes(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), bytes) in tensors.iter().zip(&raw) {
        let v = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::Invalid(format!("tensor '{name}': {e:?}")))?;
        views.push((name.clone(), v));
    }
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    safetensors::serialize(views, &meta).map_err(|e| Error::Invalid(format!("safetensors: {e:?}")))
}
