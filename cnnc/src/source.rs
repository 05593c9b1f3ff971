//! Reading a `.cnn` file for a subcommand: read it, compile it, print its
//! diagnostics, pick a model. Every subcommand goes through here, so a file is
//! read, coloured and reported the same way (and with the same error texts)
//! whatever the command.
use clap::{Args, ValueEnum};
use cnn_compiler::{compile, ir, model_name_from_stem, Compiled, Severity};
use std::io::{IsTerminal, Read};
use std::path::Path;

/// When to colour diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stderr is a terminal (and NO_COLOR is unset).
    Auto,
    // `always` wins over NO_COLOR: the flag is the user's explicit choice.
    // (Plain comments: a doc comment would become `--help` text.)
    Always,
    Never,
}

/// Output format of a command's results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: rustc-style diagnostics, tables, lines.
    Text,
    /// For editors, scripts and tests: JSON on stdout.
    Json,
}

/// `--format` and `--color`, as every command that reports results takes them.
#[derive(Args, Debug, Clone, Copy)]
pub struct Style {
    /// `text` for people; `json` for scripts (on stdout)
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

impl Style {
    /// Whether results are JSON.
    pub fn json(self) -> bool {
        self.format == Format::Json
    }
}

impl Color {
    /// Whether diagnostics printed on stderr get colours.
    pub fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            // no-color.org: a set, non-empty NO_COLOR turns default colours off.
            Color::Auto => {
                let no_color = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
                std::io::stderr().is_terminal() && !no_color
            }
        }
    }
}

/// Largest .cnn file read: the language needs nothing near this, and a wrong
/// argument (a data file, a device) should fail fast instead of filling memory.
const MAX_SOURCE_BYTES: u64 = 16 << 20;

/// A `.cnn` file's text.
#[derive(Debug)]
pub struct Source {
    /// The path as the user gave it, as diagnostics and errors show it.
    pub shown: String,
    /// The file's contents.
    pub text: String,
    /// The name of a bare model body: the file stem in UpperCamelCase.
    default_name: String,
}

impl Source {
    /// Reads `path`; the error says which file and why.
    pub fn read(path: &Path) -> Result<Source, String> {
        let shown = path.display().to_string();
        let cannot = |e: std::io::Error| format!("cannot read {shown}: {e}");
        let file = std::fs::File::open(path).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        if len > MAX_SOURCE_BYTES {
            return Err(format!(
                "cannot read {shown}: file too large for a model ({len} bytes)"
            ));
        }
        let mut text = String::new();
        // `take` also bounds files whose size the metadata does not tell (pipes).
        file.take(MAX_SOURCE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(cannot)?;
        if text.len() as u64 > MAX_SOURCE_BYTES {
            return Err(format!("cannot read {shown}: file too large for a model"));
        }
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        Ok(Source {
            default_name: model_name_from_stem(&stem),
            shown,
            text,
        })
    }

    /// Parses and checks the text (nothing is printed).
    pub fn compile(&self) -> Compiled {
        compile(&self.text, &self.default_name)
    }
}

/// A file that compiled without error.
#[derive(Debug)]
pub struct Loaded {
    /// The file as read.
    pub source: Source,
    /// Its models and warnings (already printed).
    pub compiled: Compiled,
}

impl Loaded {
    /// The number of warnings.
    pub fn warnings(&self) -> usize {
        self.compiled.diagnostics.len()
    }

    /// The models' names, comma-separated, in file order.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self
            .compiled
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        names.join(", ")
    }

    /// Every model of the file, or only the one named `--model NAME`.
    pub fn models(&self, name: Option<&str>) -> Result<Vec<&ir::Model>, String> {
        match name {
            Some(n) => Ok(vec![self.named(n)?]),
            None if self.compiled.models.is_empty() => {
                Err(format!("{}: defines no model", self.source.shown))
            }
            None => Ok(self.compiled.models.iter().collect()),
        }
    }

    /// The one model a command works on: the named one, or the file's only model.
    pub fn model(&self, name: Option<&str>) -> Result<&ir::Model, String> {
        let models = self.models(name)?;
        match models[..] {
            [m] => Ok(m),
            _ => Err(format!(
                "{} defines several models ({}): choose one with --model NAME",
                self.source.shown,
                self.names()
            )),
        }
    }

    fn named(&self, name: &str) -> Result<&ir::Model, String> {
        self.compiled
            .models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                format!(
                    "{}: no model named `{name}`; the file defines {}",
                    self.source.shown,
                    self.names()
                )
            })
    }
}

/// Reads and compiles `path` and prints its diagnostics on stderr. `Ok(None)`
/// when the file has an error: the diagnostics and a last `error: could not
/// compile` line are printed, and the command should exit with status 1.
/// `Err` when the file cannot be read.
pub fn load(path: &Path, color: Color) -> Result<Option<Loaded>, String> {
    let source = Source::read(path)?;
    let compiled = source.compile();
    if !compiled.diagnostics.is_empty() {
        eprint!(
            "{}",
            cnn_compiler::render(
                &source.shown,
                &source.text,
                &compiled.diagnostics,
                color.enabled()
            )
        );
    }
    let errors = compiled
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        let warnings = compiled.diagnostics.len() - errors;
        let emitted = if warnings > 0 {
            format!("; {} emitted", plural(warnings, "warning"))
        } else {
            String::new()
        };
        eprintln!(
            "error: could not compile `{}` due to {}{emitted}",
            source.shown,
            plural(errors, "previous error")
        );
        return Ok(None);
    }
    Ok(Some(Loaded { source, compiled }))
}

/// `1 warning`, `2 warnings`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(dir: &Path, name: &str, text: &str) -> Option<Loaded> {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        load(&p, Color::Never).unwrap()
    }

    #[test]
    fn picks_the_named_or_only_model() {
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(
            dir.path(),
            "two.cnn",
            "model A { input 4x4x1; flatten }\nmodel B { input 2x2x1; flatten; dense 3 }\n",
        )
        .unwrap();
        assert_eq!(l.model(Some("B")).unwrap().name, "B");
        assert_eq!(l.models(None).unwrap().len(), 2);
        let e = l.model(None).unwrap_err();
        assert!(e.contains("--model") && e.contains("A, B"), "{e}");
        let e = l.models(Some("C")).unwrap_err();
        assert!(e.contains("`C`") && e.contains("A, B"), "{e}");
        let l = loaded(dir.path(), "small_net.cnn", "input 4x4x1; flatten").unwrap();
        assert_eq!(l.model(None).unwrap().name, "SmallNet");
    }

    #[test]
    fn a_file_with_an_error_or_missing_gives_no_model() {
        let dir = tempfile::tempdir().unwrap();
        assert!(loaded(dir.path(), "bad.cnn", "input 4x4x1; dense 2").is_none());
        let e = load(&dir.path().join("missing.cnn"), Color::Never).unwrap_err();
        assert!(
            e.starts_with("cannot read ") && e.contains("missing.cnn"),
            "{e}"
        );
        assert_eq!(plural(1, "warning"), "1 warning");
        assert_eq!(plural(2, "warning"), "2 warnings");
    }
}
