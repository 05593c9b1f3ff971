//! Output paths, checked before any work: a training run, a build or a drawing
//! that cannot be written is refused in the first milliseconds, not after the
//! work is done, and no output ever replaces a model source or an input.
//!
//! What is checked: the extension is one the command writes (never `.cnn`);
//! the path is not one of the command's inputs; its folder exists and takes a
//! new file; the path is not a folder. Files are then written with
//! [`cnn::runtime::io::write_atomic`], so an existing output is replaced whole
//! or not at all.

use std::path::Path;

/// Checks that `path` can take the output of a command whose inputs are
/// `inputs`; `exts` are the extensions it may have (lowercase, without the dot).
pub fn check(path: &Path, exts: &[&str], inputs: &[&Path]) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("{shown}: is a folder; give a file name in it"));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let listed = exts
        .iter()
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(" or ");
    match ext.as_deref() {
        Some("cnn") => {
            return Err(format!(
            "{shown}: refusing to write over a .cnn file (a model source); write a {listed} file"
        ))
        }
        Some(e) if exts.contains(&e) => {}
        Some(e) => {
            return Err(format!(
                "{shown}: cannot write .{e} here; write a {listed} file"
            ))
        }
        None => return Err(format!("{shown}: give the file an extension: {listed}")),
    }
    for input in inputs {
        if same_file(path, input) {
            return Err(format!(
                "{shown}: is also an input of this command ({}); write the output elsewhere",
                input.display()
            ));
        }
    }
    takes_new_files(path, parent(path))
}

/// The folder `path` is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Checks that `dir`, where `output` will be written, exists and takes a new
/// file. The only sure test is to make one there (permissions, read-only
/// mounts, quotas alike).
fn takes_new_files(output: &Path, dir: &Path) -> Result<(), String> {
    let shown = output.display();
    if !dir.is_dir() {
        return Err(format!(
            "{shown}: the folder {} does not exist; create it first",
            dir.display()
        ));
    }
    let probe = dir.join(format!(".cnnc-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "{shown}: cannot write in the folder {}: {e}",
            dir.display()
        )),
    }
}

/// Checks that `dir` can hold a command's output folder (checkpoints): an
/// existing folder that takes new files, or a new one whose parent does.
pub fn check_dir(dir: &Path, inputs: &[&Path]) -> Result<(), String> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{shown}: is a file; give a folder"));
    }
    if inputs.iter().any(|i| same_file(dir, i)) {
        return Err(format!("{shown}: is an input of this command"));
    }
    // An existing folder takes the files itself; a new one, its parent.
    takes_new_files(dir, if dir.is_dir() { dir } else { parent(dir) })
}

/// Whether two paths name one existing file (through links and `..` alike).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_lose_work() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.cnn");
        std::fs::write(&model, "input 4x4x1;").unwrap();
        let ok = dir.path().join("w.safetensors");
        assert_eq!(check(&ok, &["safetensors", "npz"], &[&model]), Ok(()));
        let cases = [
            (model.clone(), "refusing to write over a .cnn"),
            (dir.path().join("w.txt"), "cannot write .txt here"),
            (dir.path().join("w"), "give the file an extension"),
            (dir.path().join("nope/w.npz"), "does not exist"),
            (dir.path().to_path_buf(), "is a folder"),
        ];
        for (path, says) in cases {
            let err = check(&path, &["safetensors", "npz"], &[&model]).unwrap_err();
            assert!(err.contains(says), "{}: {err}", path.display());
        }
        // The output named as an input through another spelling of its path.
        let input = dir.path().join("x.npy");
        std::fs::write(&input, b"x").unwrap();
        let again = dir.path().join("sub/../x.npy");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = check(&again, &["npy"], &[&input]).unwrap_err();
        assert!(err.contains("also an input"), "{err}");
        // No probe file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".cnnc-probe"))
            .collect();
        assert!(left.is_empty());
    }
}
