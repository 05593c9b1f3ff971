//! `cnnc check`, `cnnc summary`, `cnnc explain`.
use crate::CmdResult;
use clap::{Args, ValueEnum};
use cnn_compiler::{compile, model_name_from_stem, Code, Compiled, Severity};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format of diagnostics and summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: rustc-style diagnostics, a Keras-style table.
    Text,
    /// For editors and tests.
    Json,
}

/// When to colour diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stderr is a terminal (and NO_COLOR is unset).
    Auto,
    Always,
    Never,
}

#[derive(Args)]
pub struct CheckArgs {
    /// .cnn files to check
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// `text` prints diagnostics on stderr; `json` prints one JSON array of all
    /// diagnostics on stdout
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// The .cnn file
    pub file: PathBuf,
    /// Which model of the file (needed when it defines several, for json)
    #[arg(long)]
    pub model: Option<String>,
    /// `text`: a Keras-style table with FLOPs; `json`: one object
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E003 (or its name, e.g. "window too big")
    pub code: String,
}

fn use_color(c: Color) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Reads and compiles one file; the bare-body model is named after the stem.
fn compile_file(path: &Path) -> Result<(String, Compiled), String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let compiled = compile(&source, &model_name_from_stem(&stem));
    Ok((source, compiled))
}

fn counts(c: &Compiled) -> (usize, usize) {
    let e = c
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    (e, c.diagnostics.len() - e)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub fn check(a: CheckArgs) -> CmdResult {
    let color = use_color(a.color);
    let mut failed = false;
    let mut json = Vec::new();
    for path in &a.files {
        let name = path.display().to_string();
        let (source, compiled) = match compile_file(path) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        let (errors, warnings) = counts(&compiled);
        failed |= errors > 0;
        match a.format {
            Format::Json => {
                json.extend(cnn_compiler::to_json(&name, &source, &compiled.diagnostics));
            }
            Format::Text => {
                eprint!(
                    "{}",
                    cnn_compiler::render(&name, &source, &compiled.diagnostics, color)
                );
                if errors > 0 {
                    let w = if warnings > 0 {
                        format!("; {} emitted", plural(warnings, "warning"))
                    } else {
                        String::new()
                    };
                    eprintln!(
                        "error: could not compile `{name}` due to {}{w}",
                        plural(errors, "previous error")
                    );
                } else {
                    let names: Vec<&str> =
                        compiled.models.iter().map(|m| m.name.as_str()).collect();
                    let w = if warnings > 0 {
                        format!(", {}", plural(warnings, "warning"))
                    } else {
                        String::new()
                    };
                    eprintln!("ok: `{name}`: {}{w}", names.join(", "));
                }
            }
        }
    }
    if a.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn summary(a: SummaryArgs) -> CmdResult {
    let name = a.file.display().to_string();
    let (source, compiled) = compile_file(&a.file)?;
    let (errors, _) = counts(&compiled);
    if !compiled.diagnostics.is_empty() {
        eprint!(
            "{}",
            cnn_compiler::render(&name, &source, &compiled.diagnostics, use_color(a.color))
        );
    }
    if errors > 0 {
        eprintln!(
            "error: could not compile `{name}` due to {}",
            plural(errors, "previous error")
        );
        return Ok(ExitCode::FAILURE);
    }
    let models: Vec<&cnn_compiler::ir::Model> = match &a.model {
        Some(m) => {
            let found: Vec<_> = compiled.models.iter().filter(|x| &x.name == m).collect();
            if found.is_empty() {
                let names: Vec<&str> = compiled.models.iter().map(|m| m.name.as_str()).collect();
                return Err(
                    format!("no model `{m}` in {name}; it defines: {}", names.join(", ")).into(),
                );
            }
            found
        }
        None => compiled.models.iter().collect(),
    };
    match a.format {
        Format::Json => {
            if models.len() != 1 {
                let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                return Err(format!(
                    "{name} defines {} models ({}): choose one with --model NAME",
                    models.len(),
                    names.join(", ")
                )
                .into());
            }
            println!(
                "{}",
                serde_json::to_string(&cnn_compiler::summary::summary_json(models[0]))?
            );
        }
        Format::Text => {
            for (i, m) in models.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", cnn_compiler::summary::summary_text(m));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain(a: ExplainArgs) -> CmdResult {
    match Code::parse(&a.code) {
        Some(code) => {
            println!("{}", cnn_compiler::explain::explain(code));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let list: Vec<String> = Code::ALL
                .iter()
                .map(|c| format!("  {}  {}", c.as_str(), c.name()))
                .collect();
            Err(format!(
                "unknown diagnostic code `{}`; the codes are:\n{}",
                a.code,
                list.join("\n")
            )
            .into())
        }
    }
}
