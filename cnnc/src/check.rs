//! `cnnc check`, `cnnc summary`, `cnnc explain`.
pub use crate::source::Format;
use crate::source::{self, plural, Color, Source};
use crate::CmdResult;
use clap::Args;
use cnn_compiler::Code;
use std::path::PathBuf;
use std::process::ExitCode;

/// `cnnc check FILE... [--format F] [--color C]`
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

/// `cnnc summary FILE [--model NAME] [--format F] [--color C]`
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

/// `cnnc explain CODE`
#[derive(Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E003 (or its name, e.g. "window too big")
    pub code: String,
}

/// `cnnc check`: every file, every diagnostic; exit 1 when any file has an error.
pub fn check(a: CheckArgs) -> CmdResult {
    let mut failed = false;
    let mut json = Vec::new();
    for path in &a.files {
        match a.format {
            // Diagnostics as data, nothing rendered.
            Format::Json => {
                let src = match Source::read(path) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed = true;
                        continue;
                    }
                };
                let compiled = src.compile();
                failed |= compiled.has_errors();
                json.extend(cnn_compiler::to_json(
                    &src.shown,
                    &src.text,
                    &compiled.diagnostics,
                ));
            }
            Format::Text => match source::load(path, a.color) {
                Ok(Some(l)) => {
                    let w = match l.warnings() {
                        0 => String::new(),
                        n => format!(", {}", plural(n, "warning")),
                    };
                    eprintln!("ok: `{}`: {}{w}", l.source.shown, l.names());
                }
                Ok(None) => failed = true,
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            },
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

/// `cnnc summary`: the table of every model (or of `--model`), or one model's JSON.
pub fn summary(a: SummaryArgs) -> CmdResult {
    let Some(loaded) = source::load(&a.file, a.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    match a.format {
        Format::Json => {
            let m = loaded.model(a.model.as_deref())?;
            println!(
                "{}",
                serde_json::to_string(&cnn_compiler::summary::summary_json(m))?
            );
        }
        Format::Text => {
            for (i, m) in loaded.models(a.model.as_deref())?.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", cnn_compiler::summary::summary_text(m));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cnnc explain`: a code's explanation, or the list of codes.
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
