//! Reading and writing arrays and weights: `.npy`, `.npz`, `.safetensors`.
//!
//! Every reader treats its file as untrusted: sizes claimed by a header are
//! checked against the bytes really there before anything is allocated, and a
//! truncated, corrupt or hostile file gives an [`crate::Error::Format`] saying
//! what is wrong, never a panic or an unbounded allocation.

pub mod npy;
pub mod npz;
pub mod safetensors;
pub mod weights;

pub use npy::{read_npy, write_npy, write_npy_array, NpyArray, NpyData};
pub use npz::{write_npz, Npz};
pub use weights::{load_weights, save_weights, WeightsMeta};

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Reads a whole regular file. Devices, FIFOs and directories are refused (a
/// path such as `/dev/zero` would otherwise be read without end), and no more
/// than the size the file system reports is read.
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(path, "not a regular file"));
    }
    let len = meta.len();
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
    f.take(len)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    Ok(out)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over `path`. A crash or error midway leaves the
/// old file (if any) intact and no partial file under `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself; not every platform can open a directory.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
