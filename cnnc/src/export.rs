//! `cnnc export`: a model in another framework's terms. `--to keras` writes
//! a Python program that builds the model with Keras 3 and loads its weights
//! (for training on Keras's engines, on one machine or many).
use crate::output;
use crate::source::{self, Color};
use crate::CmdResult;
use clap::{Args, ValueEnum};
use cnn::runtime::io::write_atomic;
use cnn_compiler::keras_program::keras_program;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `cnnc export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Python program using Keras 3's functional API (`.py`)
    Keras,
}

impl Target {
    /// The output's file extension.
    fn extension(self) -> &'static str {
        match self {
            Target::Keras => "py",
        }
    }
}

/// `cnnc export FILE --to keras -o model.py [--weights W] [--model NAME]`
#[derive(Args)]
pub struct ExportArgs {
    /// The .cnn file
    pub file: PathBuf,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Which model of the file (default: the only one)
    #[arg(long)]
    pub model: Option<String>,
    /// What to write (default: from the output's extension, `.py` for keras)
    #[arg(long, value_enum)]
    pub to: Option<Target>,
    /// The file to write
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Trained weights (.safetensors or .npz) the program loads by default
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

/// Writes the model in the chosen form.
pub fn export(a: ExportArgs) -> CmdResult {
    let ext = a.output.extension().and_then(|e| e.to_str());
    let to = match a.to {
        Some(t) => t,
        None if ext == Some("py") => Target::Keras,
        None => {
            return Err(format!(
                "{}: say what to write with --to keras (or name the output `.py`)",
                a.output.display()
            )
            .into())
        }
    };
    let mut inputs = vec![a.file.as_path()];
    if let Some(w) = &a.weights {
        if !w.is_file() {
            return Err(format!("{}: no such weights file", w.display()).into());
        }
        inputs.push(w);
    }
    output::check(&a.output, &[to.extension()], &inputs)?;
    let Some(loaded) = source::load(&a.file, a.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let m = loaded.model(a.model.as_deref())?;
    let from = a.file.display().to_string();
    let weights = a.weights.as_ref().map(|w| w.display().to_string());
    let text = match to {
        Target::Keras => keras_program(m, &from, weights.as_deref()),
    };
    write_atomic(&a.output, text.as_bytes())?;
    eprintln!("wrote {} (model {})", a.output.display(), m.name);
    Ok(ExitCode::SUCCESS)
}
