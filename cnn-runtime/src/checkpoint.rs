//! Checkpoints of a training run, and exact resumes.
//!
//! A checkpoint is a folder `DIR/step-NNNNNNNNN` (the run's steps done so far)
//! holding `weights.safetensors` (the model's, loadable as any weights file),
//! `optimizer.safetensors` (the optimizer's vectors, its counters in the
//! metadata) and `state.json` (where the run stands: epoch and step, the
//! epoch's running sums, the model's count of training passes, the history,
//! and the run's settings, which a resume must share).
//!
//! Written atomically: the files go to a hidden folder `DIR/.tmp-...`, each
//! flushed to disk, and the folder is then renamed to its name in one step. An
//! older checkpoint is first renamed away (`DIR/.old-...`), then deleted. So
//! at any moment, a kill included, every `step-*` folder is complete; hidden
//! leftovers of a killed run are removed by the next checkpoint written.
//!
//! A resume replays the shuffles of the epochs before the checkpoint from the
//! run's seed and skips the steps done: with the weights, the optimizer's state
//! and the dropout pass count restored, it takes the very steps the
//! uninterrupted run would, so both end with bit-identical weights.

use crate::io::safetensors::{read_safetensors, safetensors_bytes};
use crate::io::{load_weights, save_weights, WeightsMeta};
use crate::optim::OptimizerState;
use crate::schedule::Plateau;
use crate::train::EpochStats;
use crate::{Error, Model, Optimizer, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where and how often [`crate::fit`] writes checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpointing {
    /// The folder of the checkpoints (made if missing; its parent must exist).
    pub dir: PathBuf,
    /// Also every this many optimizer steps of the run (each epoch's end
    /// always writes one).
    pub every: Option<usize>,
    /// Continue from the newest checkpoint in `dir` (from the start when it
    /// holds none yet).
    pub resume: bool,
    /// The caller's settings a resume must share (the model, the data, the
    /// optimizer), in words; `fit` adds its own (batch, epochs, seed, ...).
    pub settings: String,
}

/// Checkpoints kept: the newest and the one before.
const KEEP: usize = 2;
const FORMAT: u32 = 1;
const WEIGHTS: &str = "weights.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

/// Where a run stands at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub format: u32,
    /// The run's settings (see [`Checkpointing::settings`]).
    pub settings: String,
    /// Optimizer steps done in the run.
    pub done: usize,
    /// The epoch (1-based) the next step belongs to, and its steps done.
    pub epoch: usize,
    pub step_in_epoch: usize,
    /// That epoch's running sums: loss x samples, samples right, samples.
    pub loss_sum: f64,
    pub right: usize,
    pub seen: usize,
    /// The model's training passes ([`Model::training_passes`]).
    pub passes: u64,
    /// The epochs finished.
    pub history: Vec<EpochStats>,
    /// A plateau schedule's course.
    #[serde(default)]
    pub plateau: Plateau,
}

/// The checkpoints in `dir`, oldest first (none when `dir` does not exist).
pub fn checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        let step = name
            .to_str()
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            found.push((step, e.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Reads every file of the checkpoint at `path` into `model` and `opt`;
/// returns where the run stood. Nothing is changed unless all of it loads.
pub(crate) fn restore(
    path: &Path,
    model: &mut dyn Model,
    opt: &mut dyn Optimizer,
) -> Result<Position> {
    let pos = read_position(path)?;
    let state = read_optimizer(&path.join(OPTIMIZER))?;
    // The optimizer first: it checks its kind before the model is touched.
    let before = opt.state();
    opt.set_state(state)?;
    if let Err(e) = load_weights(model, &path.join(WEIGHTS)) {
        opt.set_state(before)?;
        return Err(e);
    }
    model.set_training_passes(pos.passes);
    Ok(pos)
}

/// Checks that the checkpoint at `path` is complete and loads into `model`
/// (the model's weights are replaced); returns the steps done it records.
pub fn verify(path: &Path, model: &mut dyn Model) -> Result<usize> {
    let pos = read_position(path)?;
    read_optimizer(&path.join(OPTIMIZER))?;
    load_weights(model, &path.join(WEIGHTS))?;
    Ok(pos.done)
}

/// Where the run of the checkpoint at `path` stood (its state file only).
pub(crate) fn peek(path: &Path) -> Result<Position> {
    read_position(path)
}

fn read_position(path: &Path) -> Result<Position> {
    let file = path.join(STATE);
    let bytes = crate::io::read_regular_file(&file)?;
    let pos: Position = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(&file, format!("not a checkpoint's state: {e}")))?;
    if pos.format != FORMAT {
        return Err(Error::format(
            &file,
            format!(
                "checkpoint format {} (this build reads {FORMAT})",
                pos.format
            ),
        ));
    }
    Ok(pos)
}

fn read_optimizer(file: &Path) -> Result<OptimizerState> {
    let (tensors, meta) = read_safetensors(file)?;
    let bad = |m: &str| Error::format(file, m.to_string());
    let kind = meta.get("kind").cloned().unwrap_or_default();
    let counters: Vec<(String, u64)> = match meta.get("counters") {
        Some(c) => serde_json::from_str(c).map_err(|_| bad("bad optimizer counters"))?,
        None => Vec::new(),
    };
    let vectors = tensors.into_iter().map(|(n, _, v)| (n, v)).collect();
    Ok(OptimizerState {
        kind,
        counters,
        vectors,
    })
}

/// Writes a checkpoint of the run at `pos` into `cp.dir`; removes all but the
/// newest [`KEEP`] and any leftovers of a killed run. Returns its folder.
pub(crate) fn write(
    cp: &Checkpointing,
    model: &dyn Model,
    opt: &dyn Optimizer,
    pos: &Position,
    classes: &[String],
) -> Result<PathBuf> {
    let dir = &cp.dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = format!("step-{:09}", pos.done);
    let done = dir.join(&name);
    if done.exists() {
        // The same step again (a resumed run's first epoch end): already there.
        return Ok(done);
    }
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let result = (|| {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let meta = WeightsMeta {
            classes: classes.to_vec(),
        };
        save_weights(model, &tmp.join(WEIGHTS), &meta)?;
        let state = opt.state();
        let mut md = HashMap::new();
        md.insert("kind".to_string(), state.kind.clone());
        let counters = serde_json::to_string(&state.counters)
            .map_err(|e| Error::Invalid(format!("optimizer counters: {e}")))?;
        md.insert("counters".to_string(), counters);
        let tensors: Vec<(String, Vec<usize>, &[f32])> = state
            .vectors
            .iter()
            .map(|(n, v)| (n.clone(), vec![v.len()], v.as_slice()))
            .collect();
        write_synced(&tmp.join(OPTIMIZER), &safetensors_bytes(&tensors, &md)?)?;
        let json = serde_json::to_vec_pretty(pos)
            .map_err(|e| Error::Invalid(format!("checkpoint state: {e}")))?;
        write_synced(&tmp.join(STATE), &json)?;
        sync_dir(&tmp);
        std::fs::rename(&tmp, &done).map_err(|e| Error::io(&done, e))?;
        sync_dir(dir);
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    prune(dir)?;
    Ok(done)
}

/// Removes all but the newest [`KEEP`] checkpoints (renamed away first, so a
/// kill midway leaves no half-deleted `step-*`) and hidden leftovers.
fn prune(dir: &Path) -> Result<()> {
    let all = checkpoints(dir)?;
    for old in &all[..all.len().saturating_sub(KEEP)] {
        let Some(name) = old.file_name() else {
            continue;
        };
        let away = dir.join(format!(".old-{}", name.to_string_lossy()));
        std::fs::rename(old, &away).map_err(|e| Error::io(old, e))?;
    }
    sync_dir(dir);
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let own = format!("-{}", std::process::id());
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let stale = name.starts_with(".old-") || name.starts_with(".tmp-") && !name.ends_with(&own);
        if stale {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Persists a folder's entries (renames); not every platform can open one.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
