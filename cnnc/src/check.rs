//! `cnnc check`, `cnnc summary`, `cnnc explain`.
use crate::CmdResult;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CheckArgs {
    /// .cnn files to check
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}
#[derive(Args)]
pub struct SummaryArgs {
    pub file: PathBuf,
}
#[derive(Args)]
pub struct ExplainArgs {
    pub code: String,
}

pub fn check(_a: CheckArgs) -> CmdResult {
    Err("not built yet".into())
}
pub fn summary(_a: SummaryArgs) -> CmdResult {
    Err("not built yet".into())
}
pub fn explain(_a: ExplainArgs) -> CmdResult {
    Err("not built yet".into())
}
