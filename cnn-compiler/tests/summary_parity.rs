//! The generated `Model::summary()` is the table `cnnc summary` prints: for
//! every model of `examples/models/` and `grammar/valid/`, the code generator
//! embeds exactly `summary::summary_text` (what `cnnc summary` prints).

use cnn_compiler::codegen::{generate, to_source, Options};
use std::path::Path;

#[test]
fn generated_summary_equals_cnnc_summary_for_every_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for dir in ["examples/models", "grammar/valid"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cnn"))
            .collect();
        files.sort();
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            let stem = f.file_stem().unwrap().to_string_lossy();
            let c = cnn_compiler::compile(&src, &cnn_compiler::model_name_from_stem(&stem));
            assert!(!c.has_errors(), "{}", f.display());
            for m in &c.models {
                let code = to_source(&generate(m, &Options::default())).unwrap();
                let want = cnn_compiler::summary::summary_text(m);
                let line = format!("const SUMMARY: &'static str = {want:?};");
                assert!(code.contains(&line), "{}: {}", f.display(), m.name);
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} models");
}
