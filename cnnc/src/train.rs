//! `cnnc train`, `cnnc eval`, `cnnc predict`.
use crate::CmdResult;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    pub file: PathBuf,
}
#[derive(Args)]
pub struct EvalArgs {
    pub file: PathBuf,
}
#[derive(Args)]
pub struct PredictArgs {
    pub file: PathBuf,
}

pub fn train(_a: TrainArgs) -> CmdResult {
    Err("not built yet".into())
}
pub fn eval(_a: EvalArgs) -> CmdResult {
    Err("not built yet".into())
}
pub fn predict(_a: PredictArgs) -> CmdResult {
    Err("not built yet".into())
}
