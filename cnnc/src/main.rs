//! `cnnc`: the command-line compiler of the cnn model language.

#![forbid(unsafe_code)]

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

mod build;
mod check;
mod diagram;
mod export;
mod images;
mod import;
mod output;
mod raster;
mod source;
mod train;
mod viz;

#[derive(Parser)]
#[command(
    name = "cnnc",
    version,
    about = "Compile, check, train and run .cnn models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check .cnn files; diagnostics on stderr, exit 1 when any error.
    Check(check::CheckArgs),
    /// Print a Keras-style summary (layers, output shapes, parameters, FLOPs).
    Summary(check::SummaryArgs),
    /// Explain a diagnostic code (e.g. `cnnc explain E003`).
    Explain(check::ExplainArgs),
    /// Write the Rust code the `cnn!` macro generates for a model.
    Build(build::BuildArgs),
    /// Train a model (interpreted, no code generation).
    Train(Box<train::TrainArgs>),
    /// Evaluate a model's loss and accuracy.
    Eval(train::EvalArgs),
    /// Run a model on inputs and write its outputs.
    Predict(train::PredictArgs),
    /// Draw feature maps and filters of a trained model as PNG grids.
    Viz(viz::VizArgs),
    /// Draw a model's architecture as an SVG diagram.
    Diagram(diagram::DiagramArgs),
    /// Write a data set as a folder of PNG images, one sub-folder per class.
    Images(images::ImagesArgs),
    /// Write a model for another framework: a Keras 3 program (`--to keras`)
    Export(export::ExportArgs),
    /// Turn an ONNX or Keras (.keras, .h5) model into a .cnn model and a weights file.
    Import(import::ImportArgs),
    /// Print a shell completion script (e.g. `cnnc completions bash > ~/.local/share/bash-completion/completions/cnnc`).
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => check::check(a),
        Command::Summary(a) => check::summary(a),
        Command::Explain(a) => check::explain(a),
        Command::Build(a) => build::build(a),
        Command::Train(a) => train::train(*a),
        Command::Eval(a) => train::eval(a),
        Command::Predict(a) => train::predict(a),
        Command::Viz(a) => viz::viz(a),
        Command::Diagram(a) => diagram::diagram(a),
        Command::Images(a) => images::images(a),
        Command::Export(a) => export::export(a),
        Command::Import(a) => import::import(a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cnnc", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a command returns: an exit code, or an error printed as `error: ...`.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;
