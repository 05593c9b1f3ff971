//! `cnnc build`: the Rust code the `cnn!` macro generates, formatted, for use
//! with `include!` in a crate that depends on `cnn`.
use crate::output;
use crate::source::{self, Color};
use crate::CmdResult;
use clap::Args;
use cnn::runtime::io::write_atomic;
use cnn_compiler::build::{compile_source, file_options};
use std::path::PathBuf;
use std::process::ExitCode;

/// `cnnc build FILE [-o OUT] [--model NAME]`
#[derive(Args)]
pub struct BuildArgs {
    /// The .cnn file to compile
    pub file: PathBuf,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Write the code here instead of standard output
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Only this model of the file (by name); default: all of them
    #[arg(long)]
    pub model: Option<String>,
}

/// Writes the generated code of the file's models (or of `--model`).
pub fn build(a: BuildArgs) -> CmdResult {
    if let Some(out) = &a.output {
        output::check(out, &["rs"], &[&a.file])?;
    }
    let Some(loaded) = source::load(&a.file, a.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    // Checks the name, with the error text every subcommand gives.
    loaded.models(a.model.as_deref())?;
    // The file is pulled in with `include!`: its models are public. This
    // compiles the text a second time (cheap); the diagnostics were printed, in
    // colour, by `load`.
    let text = compile_source(
        &a.file,
        &loaded.source.text,
        &file_options(),
        a.model.as_deref(),
    )?
    .0;
    match a.output {
        Some(path) => write_atomic(&path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_formatted_code_for_the_chosen_model() {
        let dir = std::env::temp_dir().join(format!("cnnc-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("two.cnn");
        std::fs::write(
            &file,
            "model A { input 4x4x1; flatten; dense 2 }\nmodel B { input 6x6x2; conv 3 3x3; }\n",
        )
        .unwrap();
        let out = dir.join("b.rs");
        let args = BuildArgs {
            color: Color::Never,
            file: file.clone(),
            output: Some(out.clone()),
            model: Some("B".into()),
        };
        assert_eq!(
            format!("{:?}", build(args).unwrap()),
            format!("{:?}", ExitCode::SUCCESS)
        );
        let code = std::fs::read_to_string(&out).unwrap();
        assert!(code.contains("pub struct B"), "{code}");
        assert!(!code.contains("struct A"), "{code}");
        assert!(
            code.contains("impl ::cnn::__private::runtime::Model for B"),
            "{code}"
        );
        // An unknown model name is an error; a file with an error exits 1.
        let args = BuildArgs {
            color: Color::Never,
            file: file.clone(),
            output: Some(out.clone()),
            model: Some("C".into()),
        };
        assert!(build(args).is_err());
        std::fs::write(&file, "input 4x4x1; conv 2 5x5;").unwrap();
        let args = BuildArgs {
            color: Color::Never,
            file,
            output: Some(out),
            model: None,
        };
        assert_eq!(
            format!("{:?}", build(args).unwrap()),
            format!("{:?}", ExitCode::FAILURE)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
