//! `cnnc import`: an ONNX model (this project's export, or PyTorch's
//! `torch.onnx.export` of a CNN) or a Keras model (`.keras`, `.h5`) as a
//! `.cnn` model and a weights file that `cnnc predict --weights`, `eval` and
//! `train --init` load. The format is told by the file's first bytes.
use crate::output;
use crate::CmdResult;
use clap::Args;
use cnn::runtime::io::{read_regular_file, save_weights, write_atomic, WeightsMeta};
use cnn::runtime::Model;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest model file read (protobuf's own limit for ONNX).
const MAX_MODEL_BYTES: u64 = 2 << 30;

/// `cnnc import MODEL.onnx|MODEL.keras|MODEL.h5 [-o MODEL.cnn] [--weights-out W] [--name NAME] [--force]`
#[derive(Args)]
pub struct ImportArgs {
    /// The model: ONNX (.onnx), Keras 3 (.keras) or legacy Keras HDF5 (.h5)
    pub file: PathBuf,
    /// The .cnn file to write (default: the text on standard output)
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// The weights file to write (.safetensors or .npz; default: next to
    /// the -o file, with the extension .safetensors)
    #[arg(long)]
    pub weights_out: Option<PathBuf>,
    /// The model's name (default: from the ONNX graph's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Replace an existing .cnn file
    #[arg(long)]
    pub force: bool,
}

/// Checks the `.cnn` output path: a `.cnn` name, not the input, not a
/// folder, and no existing model source replaced unless asked.
fn check_source_out(path: &Path, input: &Path, force: bool) -> Result<(), String> {
    let shown = path.display();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref() != Some("cnn") {
        return Err(format!("{shown}: the model is written to a .cnn file"));
    }
    if path.is_dir() {
        return Err(format!("{shown}: is a folder; give a file name in it"));
    }
    if path.exists() && !force {
        return Err(format!(
            "{shown}: exists; give --force to replace it (a model source)"
        ));
    }
    if path
        .canonicalize()
        .ok()
        .is_some_and(|p| input.canonicalize().ok() == Some(p))
    {
        return Err(format!("{shown}: is the input"));
    }
    Ok(())
}

/// `len` bytes at `offset` of the external data file `location` (checked by
/// the import to be a relative path inside the folder): the file must be a
/// regular file holding them, so nothing larger than it is read.
fn read_external(
    folder: &Path,
    location: &str,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let path = folder.join(location);
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > meta.len()) {
        return Err(format!(
            "{shown}: {len} bytes at offset {offset} are past its end ({} bytes)",
            meta.len()
        ));
    }
    let mut f = std::fs::File::open(&path).map_err(|e| format!("{shown}: {e}"))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut out = vec![0u8; len];
    f.read_exact(&mut out)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(out)
}

/// Imports the model and writes its text and weights.
pub fn import(a: ImportArgs) -> CmdResult {
    let weights_out = match (&a.weights_out, &a.output) {
        (Some(w), _) => Some(w.clone()),
        (None, Some(o)) => Some(o.with_extension("safetensors")),
        (None, None) => None,
    };
    // Outputs first, so that nothing is read or computed for a run that
    // cannot write.
    if let Some(o) = &a.output {
        check_source_out(o, &a.file, a.force)?;
    }
    if let Some(w) = &weights_out {
        let mut inputs = vec![a.file.as_path()];
        if let Some(o) = &a.output {
            inputs.push(o.as_path());
        }
        output::check(w, &["safetensors", "npz"], &inputs)?;
    }
    let size = std::fs::metadata(&a.file)
        .map_err(|e| format!("cannot read {}: {e}", a.file.display()))?
        .len();
    if size > MAX_MODEL_BYTES {
        return Err(format!(
            "{}: {size} bytes, more than a model file this reads ({MAX_MODEL_BYTES})",
            a.file.display()
        )
        .into());
    }
    let bytes = read_regular_file(&a.file)?;
    // A zip (.keras) or an HDF5 file (.h5) is Keras's; anything else is
    // read as ONNX, whose protobuf has no magic bytes.
    let keras = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"\x89HDF\r\n\x1a\n");
    let folder = a.file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let imported = if keras {
        cnn_onnx::import_keras(&bytes, a.name.as_deref())
    } else {
        cnn_onnx::import_with_external(&bytes, a.name.as_deref(), &|location, offset, len| {
            read_external(&folder, location, offset, len)
        })
    }
    .map_err(|e| format!("{}: {e}", a.file.display()))?;

    // The text must be a model the compiler takes, with exactly the
    // weights the import gives: checked before anything is written.
    let compiled = cnn_compiler::compile(&imported.source, &imported.name);
    if compiled.has_errors() || compiled.models.len() != 1 {
        let msgs: Vec<String> = compiled
            .diagnostics
            .iter()
            .map(|d| format!("{d:?}"))
            .collect();
        return Err(format!(
            "the imported model does not compile (a bug of the importer):\n{}\n{}",
            imported.source,
            msgs.join("\n")
        )
        .into());
    }
    let mut net = cnn::lower::interpreter(&compiled.models[0], 0)?;
    let mut filled = 0;
    for p in net.params_mut() {
        let w = imported
            .weights
            .iter()
            .find(|w| w.name == p.name)
            .ok_or_else(|| {
                format!(
                    "the import gave no tensor '{}' (a bug of the importer)",
                    p.name
                )
            })?;
        if w.shape != p.shape {
            return Err(format!(
                "tensor '{}': shape {:?} imported, the model's is {:?} (a bug of the importer)",
                p.name, w.shape, p.shape
            )
            .into());
        }
        p.data.copy_from_slice(&w.data);
        filled += 1;
    }
    if filled != imported.weights.len() {
        return Err(format!(
            "{} tensors imported for a model of {filled} (a bug of the importer)",
            imported.weights.len()
        )
        .into());
    }
    let params: usize = imported.weights.iter().map(|w| w.data.len()).sum();
    match &a.output {
        Some(o) => {
            write_atomic(o, imported.source.as_bytes())?;
            eprintln!("wrote {} (model {})", o.display(), imported.name);
        }
        None => print!("{}", imported.source),
    }
    match &weights_out {
        Some(w) => {
            save_weights(&net, w, &WeightsMeta::default())?;
            eprintln!("wrote {} ({params} parameters)", w.display());
        }
        None => eprintln!(
            "note: the weights ({params} parameters) were not written; give -o or --weights-out"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
