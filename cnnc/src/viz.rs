//! `cnnc viz`, `cnnc diagram`.
use crate::CmdResult;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct VizArgs {
    pub file: PathBuf,
}
#[derive(Args)]
pub struct DiagramArgs {
    pub file: PathBuf,
}

pub fn viz(_a: VizArgs) -> CmdResult {
    Err("not built yet".into())
}
pub fn diagram(_a: DiagramArgs) -> CmdResult {
    Err("not built yet".into())
}
