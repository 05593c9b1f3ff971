//! `cnnc build`.
use crate::CmdResult;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildArgs {
    pub file: PathBuf,
}

pub fn build(_a: BuildArgs) -> CmdResult {
    Err("not built yet".into())
}
