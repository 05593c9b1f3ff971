//! `cnnc export`: a model in another framework's terms. `--to onnx` writes
//! an ONNX file with the trained weights (for ONNX Runtime, TensorRT,
//! Triton); `--to keras` a Python program that builds the model with Keras 3
//! and loads its weights (for training on Keras's engines, on one machine or
//! many).
use crate::output;
use crate::source::{self, Color};
use crate::CmdResult;
use clap::{Args, ValueEnum};
use cnn::onnx::{to_onnx, Layout, Options};
use cnn::runtime::io::write_atomic;
use cnn_compiler::keras_program::keras_program;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `cnnc export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// An ONNX model with the weights (`.onnx`; needs --weights)
    Onnx,
    /// A Python program using Keras 3's functional API (`.py`)
    Keras,
}

impl Target {
    /// The output's file extension.
    fn extension(self) -> &'static str {
        match self {
            Target::Onnx => "onnx",
            Target::Keras => "py",
        }
    }
}

/// `cnnc export FILE [--to onnx|keras] -o OUT [--weights W] [--nchw] [--model NAME]`
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
    /// What to write (default: from the output's extension, `.onnx` or `.py`)
    #[arg(long, value_enum)]
    pub to: Option<Target>,
    /// The file to write
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Trained weights (.safetensors or .npz): in the ONNX file, or what
    /// the Keras program loads by default
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// ONNX input and output in NCHW (for consumers that want it) instead
    /// of the model's NHWC
    #[arg(long)]
    pub nchw: bool,
}

/// Writes the model in the chosen form.
pub fn export(a: ExportArgs) -> CmdResult {
    let ext = a.output.extension().and_then(|e| e.to_str());
    let to = match a.to {
        Some(t) => t,
        None if ext == Some("py") => Target::Keras,
        None if ext == Some("onnx") => Target::Onnx,
        None => {
            return Err(format!(
                "{}: say what to write with --to onnx or --to keras (or name the output `.onnx` or `.py`)",
                a.output.display()
            )
            .into())
        }
    };
    if to == Target::Onnx && a.weights.is_none() {
        return Err("an ONNX file holds the weights: give them with --weights W".into());
    }
    if a.nchw && to != Target::Onnx {
        return Err("--nchw is for --to onnx (a Keras model is NHWC, as this one)".into());
    }
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
    let bytes = match (to, &a.weights) {
        (Target::Onnx, Some(w)) => {
            let mut net = cnn::lower::interpreter(m, 0)?;
            cnn::runtime::io::load_weights(&mut net, w)?;
            let layout = if a.nchw { Layout::Nchw } else { Layout::Nhwc };
            let opts = Options {
                name: m.name.clone(),
                layout,
            };
            to_onnx(&net, net.plan(), &opts)?
        }
        (Target::Onnx, None) => unreachable!("checked above"),
        (Target::Keras, _) => keras_program(m, &from, weights.as_deref()).into_bytes(),
    };
    write_atomic(&a.output, &bytes)?;
    eprintln!("wrote {} (model {})", a.output.display(), m.name);
    Ok(ExitCode::SUCCESS)
}
