//! What runs at the end of every epoch of [`crate::fit_with`]: Keras's
//! callbacks, under Keras's names. [`CsvLogger`] writes the history as a CSV
//! file, [`EarlyStopping`] stops a run whose validation loss stopped falling
//! and puts back the best epoch's weights, [`ModelCheckpoint`] keeps the
//! best epoch's weights in a file. A [`Callback`] of one's own can do
//! anything else an epoch's end allows.

use crate::io::{save_weights, write_atomic, WeightsMeta};
use crate::train::EpochStats;
use crate::{Model, Result};
use std::path::PathBuf;

/// Whether training goes on after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Called by [`crate::fit_with`] at the end of every epoch (after its
/// validation) and once when training ends.
pub trait Callback {
    /// `stats` is the epoch just finished; `model` holds its weights.
    fn on_epoch_end(&mut self, stats: &EpochStats, model: &mut dyn Model) -> Result<Flow>;
    /// After the last epoch (or a [`Flow::Stop`]); not after an error.
    fn on_train_end(&mut self, model: &mut dyn Model) -> Result<()> {
        let _ = model;
        Ok(())
    }
}

/// Keras's `CSVLogger`: one row per epoch, `epoch` (0-based, as Keras) then
/// the logs in Keras's order (sorted names): `accuracy`, `learning_rate`,
/// `loss`, and `val_accuracy`, `val_loss` when there is validation data. The
/// whole file is rewritten atomically after every epoch, so a run killed at
/// any moment leaves the rows of its finished epochs.
#[derive(Debug, Clone)]
pub struct CsvLogger {
    pub path: PathBuf,
    text: String,
}

impl CsvLogger {
    pub fn new(path: impl Into<PathBuf>) -> CsvLogger {
        CsvLogger {
            path: path.into(),
            text: String::new(),
        }
    }
}

impl Callback for CsvLogger {
    fn on_epoch_end(&mut self, s: &EpochStats, _: &mut dyn Model) -> Result<Flow> {
        let val = s.val_loss.zip(s.val_accuracy);
        if self.text.is_empty() {
            self.text = "epoch,accuracy,learning_rate,loss".into();
            if val.is_some() {
                self.text += ",val_accuracy,val_loss";
            }
            self.text += "\n";
        }
        let mut row = format!("{},{},{},{}", s.epoch - 1, s.accuracy, s.lr, s.loss);
        if let Some((loss, acc)) = val {
            row += &format!(",{acc},{loss}");
        }
        self.text += &row;
        self.text += "\n";
        write_atomic(&self.path, self.text.as_bytes())?;
        Ok(Flow::Continue)
    }
}

/// Keras's `ModelCheckpoint(path, monitor="val_loss", save_best_only=True)`:
/// writes the weights (atomically) after every epoch whose validation loss
/// (the training loss without validation data) is the lowest so far.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    pub path: PathBuf,
    /// Class names written with the weights.
    pub classes: Vec<String>,
    best: Option<(f32, usize)>,
}

impl ModelCheckpoint {
    pub fn new(path: impl Into<PathBuf>, classes: Vec<String>) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.into(),
            classes,
            best: None,
        }
    }

    /// The epoch (1-based) whose weights the file holds, and its loss.
    pub fn best(&self) -> Option<(usize, f32)> {
        self.best.map(|(l, e)| (e, l))
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, s: &EpochStats, model: &mut dyn Model) -> Result<Flow> {
        let loss = s.val_loss.unwrap_or(s.loss);
        if self.best.is_none_or(|(b, _)| loss < b) {
            let meta = WeightsMeta {
                classes: self.classes.clone(),
            };
            save_weights(model, &self.path, &meta)?;
            self.best = Some((loss, s.epoch));
        }
        Ok(Flow::Continue)
    }
}

/// Keras's `EarlyStopping(monitor="val_loss", patience, min_delta=0,
/// restore_best_weights=True)`: stops once the validation loss (the training
/// loss without validation data) has not fallen for `patience` epochs, and
/// puts back the weights of the best epoch when training ends.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    pub patience: usize,
    best: Option<(f32, usize)>,
    wait: usize,
    weights: Vec<Vec<f32>>,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> EarlyStopping {
        EarlyStopping {
            patience,
            best: None,
            wait: 0,
            weights: Vec::new(),
        }
    }

    /// The best epoch so far (1-based) and its monitored loss.
    pub fn best(&self) -> Option<(usize, f32)> {
        self.best.map(|(l, e)| (e, l))
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, s: &EpochStats, model: &mut dyn Model) -> Result<Flow> {
        let loss = s.val_loss.unwrap_or(s.loss);
        if self.best.is_none_or(|(b, _)| loss < b) {
            self.best = Some((loss, s.epoch));
            self.wait = 0;
            self.weights = model.params().iter().map(|p| p.data.to_vec()).collect();
            return Ok(Flow::Continue);
        }
        self.wait += 1;
        Ok(match self.wait >= self.patience.max(1) {
            true => Flow::Stop,
            false => Flow::Continue,
        })
    }

    fn on_train_end(&mut self, model: &mut dyn Model) -> Result<()> {
        if self.weights.is_empty() {
            return Ok(());
        }
        for (p, w) in model.params_mut().into_iter().zip(&self.weights) {
            p.data.copy_from_slice(w);
        }
        Ok(())
    }
}
