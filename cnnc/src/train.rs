//! `cnnc train`, `cnnc eval`, `cnnc predict`: run a `.cnn` model with the
//! interpreter (no code generation): the file is checked by the compiler, lowered
//! with `cnn::lower`, and trained or run on the runtime.
//!
//! `--limit N` keeps the first N examples (of the training set for `train`, of
//! the evaluation set for `eval`): quick checks and CI runs on real data.
//!
//! `--lr-schedule` changes the learning rate during the run (see
//! `cnn_runtime::LrSchedule`): `constant`, `cosine[:ALPHA]`,
//! `exponential:RATE`, `step:EVERY[:FACTOR]`, `multistep:F1,F2,...[:FACTOR]`
//! or `plateau[:PATIENCE[:FACTOR]]`.
//!
//! The default is `plateau` (`plateau:1:0.2`, Keras's `ReduceLROnPlateau`
//! with patience 1 and factor 0.2): the rate times 0.2 after each epoch whose
//! validation loss is not lower. The validation data is the split of
//! `--validation-split F` when given, else the data set's test split (as
//! Keras users pass `validation_data`), else the training loss. Why it: it
//! decays a long run when it stops improving and leaves a short run that is
//! still learning alone, where fixed decays cost a short run what they give a
//! long one. Measured (release, AVX2, seed 0; every figure the same on 1 or 2
//! threads): LeNet-5 on MNIST, 10 epochs, test accuracy 98.93% (cuts after
//! epochs 5, 7 and 9), against 98.60% constant, 98.87% with `plateau:2:0.2`,
//! 98.92% with `multistep:0.5,0.75`, 98.84% with `cosine`; `shapes_small.cnn`
//! on `shapes:3000`, 8 epochs, batch 16: 85.50% against 85.83% constant
//! (multistep and cosine cost such a run 10-15 points at stop 19).
//!
//! LeNet-5 on MNIST to 99.0% test accuracy in one command: Adam at 0.001 for 6
//! epochs, then a tenth of it for 2 more (a step decay; a constant rate levels
//! off near 98.5%, 98.46% after 8 epochs):
//!
//! ```text
//! cnnc train examples/models/lenet5.cnn --data mnist:DIR --epochs 8 --batch 32 \
//!     --optimizer adam --lr 0.001 --lr-schedule step:6:0.1 --save lenet5.safetensors
//! cnnc eval examples/models/lenet5.cnn --weights lenet5.safetensors --data mnist:DIR
//! ```
//!
//! Measured (release build, seed 0): 99.03% on the 10,000 test images, the same
//! weights bit for bit on every rerun; 44-59 s wall time on 2 cores shared with
//! other builds (about 2.7 s an epoch when the machine is idle). Seeds 1-5 gave
//! 98.89, 99.02, 98.81, 99.07 and 98.85% (mean of the six 98.95%).
//! Cosine decay over 10 epochs did worse (98.84%: it ends over-fitted, 99.9% of
//! the training set right), as did momentum SGD (98.86-98.91%) and batches of 64.

use crate::output;
use crate::source::{self, Source, Style};
use crate::CmdResult;
use clap::{Args, ValueEnum};
use cnn::runtime::callbacks::{Callback, CsvLogger, EarlyStopping, ModelCheckpoint};
use cnn::runtime::checkpoint::Checkpointing;
use cnn::runtime::data::{folder, DataSource, Dataset};
use cnn::runtime::interp::Sequential;
use cnn::runtime::io::{self, load_weights, save_weights, WeightsMeta};
use cnn::runtime::report::ClassReport;
use cnn::runtime::{
    evaluate, fit_with, predict as run_predict, Adam, Culprit, EpochStats, FitOptions, LrSchedule,
    Model, Optimizer, Progress, Sgd, StepOptions,
};
use cnn_compiler::label::dims_text;
use cnn_compiler::{ir, render::line_col};
use ndarray::{Array4, Axis, Ix4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The learning-rate schedule without `--lr-schedule` (see the module docs).
const DEFAULT_SCHEDULE: LrSchedule = LrSchedule::PLATEAU;

/// Batch size of evaluation and prediction (memory only; results do not depend on it).
const EVAL_BATCH: usize = 256;

/// One epoch of a run as a JSON object, with Keras's history keys.
fn epoch_json(e: &EpochStats) -> serde_json::Value {
    serde_json::json!({
        "epoch": e.epoch,
        "steps": e.steps,
        "loss": e.loss,
        "accuracy": e.accuracy,
        "val_loss": e.val_loss,
        "val_accuracy": e.val_accuracy,
        "lr": e.lr,
        "seconds": e.seconds,
    })
}

/// The optimizers `train` offers, with Keras's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    /// Plain SGD (default learning rate 0.01).
    Sgd,
    /// SGD with momentum 0.9 (default learning rate 0.01).
    Momentum,
    /// Adam (default learning rate 0.001).
    Adam,
    /// Adam with decoupled weight decay (Keras's AdamW; default decay 0.004).
    Adamw,
}

/// Where the examples come from: `--data SOURCE` or `--x X.npy --labels L.npy`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// A data set: `mnist:DIR` (IDX files, gzipped or not), `fashion-mnist:DIR`
    /// (the same with Fashion-MNIST's class names; also chosen by `mnist:DIR` when
    /// the folder's name contains "fashion"), `shapes[:COUNT]` (synthetic shapes)
    /// or `folder:DIR` (one sub-folder per class)
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["x", "labels"])]
    pub data: Option<String>,
    /// Inputs as a float .npy array of shape (N, H, W, C)
    #[arg(long, value_name = "X.npy", requires = "labels")]
    pub x: Option<PathBuf>,
    /// Integer class labels as a .npy array of shape (N,)
    #[arg(long, value_name = "L.npy", requires = "x")]
    pub labels: Option<PathBuf>,
    /// Use only the first N examples (of the training set for `train`, of the
    /// evaluation set for `eval`), e.g. for quick checks
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// The model a command runs: a `.cnn` file and, when it defines several, which.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The .cnn model file
    pub file: PathBuf,
    /// Which model of the file (when it defines several)
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
}

/// `cnnc train FILE DATA [options]`
#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub target: ModelArgs,
    #[command(flatten)]
    pub style: Style,
    /// Start from these weights (.safetensors or .npz) instead of a fresh initialisation
    #[arg(long, value_name = "W")]
    pub init: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Passes over the training data (default 1)
    #[arg(long, value_name = "E", conflicts_with = "steps")]
    pub epochs: Option<usize>,
    /// Exactly S optimizer steps (batches taken in order, continuing into a new pass)
    #[arg(long, value_name = "S")]
    pub steps: Option<usize>,
    /// Examples per step
    #[arg(long, value_name = "B", default_value_t = 32)]
    pub batch: usize,
    /// The update rule
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerKind,
    /// Learning rate (default: 0.01 for sgd and momentum, 0.001 for adam)
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// How the learning rate changes over the run: `constant`; `cosine[:ALPHA]`
    /// (half a cosine from LR down to ALPHA x LR, default 0, per step);
    /// `exponential:RATE` (times RATE per epoch, smoothly); `step:EVERY[:FACTOR]`
    /// (times FACTOR, default 0.1, after every EVERY epochs);
    /// `multistep:F1,F2,...[:FACTOR]` (times FACTOR, default 0.1, at each share
    /// F of the run, e.g. `multistep:0.5,0.75`); `plateau[:PATIENCE[:FACTOR]]`
    /// (times FACTOR after PATIENCE epochs without a better validation loss,
    /// Keras's ReduceLROnPlateau). Default: `plateau` (plateau:1:0.2)
    #[arg(long, value_name = "SCHEDULE")]
    pub lr_schedule: Option<LrSchedule>,
    /// Seed of the initialisation, the shuffling and synthetic data
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Keep the data's order (no shuffling between epochs)
    #[arg(long)]
    pub no_shuffle: bool,
    /// Write the trained weights here (.safetensors or .npz)
    #[arg(long, value_name = "OUT")]
    pub save: Option<PathBuf>,
    /// Draw the loss and accuracy curves as an SVG
    #[arg(long, value_name = "CURVE.svg")]
    pub plot: Option<PathBuf>,
    /// Decoupled weight decay, `p -= lr * W * p` every step (Keras's
    /// weight_decay; default 0.004 with adamw, none otherwise)
    #[arg(long, value_name = "W", allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Train against smoothed labels: 1 - S + S/K for the label, S/K for the
    /// other classes (Keras's label_smoothing)
    #[arg(
        long,
        value_name = "S",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub label_smoothing: f32,
    /// Scale each gradient tensor down to this L2 norm when larger (Keras's
    /// clipnorm)
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Stop once the validation loss has not fallen for PATIENCE epochs, and
    /// keep the best epoch's weights (Keras's EarlyStopping with
    /// restore_best_weights)
    #[arg(long, value_name = "PATIENCE", conflicts_with_all = ["checkpoint", "resume"])]
    pub early_stop: Option<usize>,
    /// Keep the weights of the epoch with the lowest validation loss in this
    /// file, written after each such epoch (Keras's ModelCheckpoint with
    /// save_best_only)
    #[arg(long, value_name = "BEST.safetensors")]
    pub save_best: Option<PathBuf>,
    /// Write one CSV row per epoch (Keras's CSVLogger columns)
    #[arg(long, value_name = "METRICS.csv")]
    pub log: Option<PathBuf>,
    /// Hold out the last F of the training data (Keras's `validation_split`)
    /// as the validation data evaluated after every epoch, which the default
    /// schedule follows; the data set's own test split is then scored once,
    /// at the end
    #[arg(long, value_name = "F")]
    pub validation_split: Option<f32>,
    /// Write a checkpoint (weights, optimizer state, position, history) into
    /// this folder after every epoch, atomically; the two newest are kept
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub checkpoint: Option<PathBuf>,
    /// Also write a checkpoint every N optimizer steps
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue the run whose checkpoints are in DIR (the same command, plus
    /// this flag) and keep writing them there; it ends with the weights the
    /// uninterrupted run would have, to the bit
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

impl TrainArgs {
    /// The files the run reads, which no output may replace.
    fn inputs(&self) -> Vec<&Path> {
        let d = &self.data;
        [
            Some(&self.target.file),
            self.init.as_ref(),
            d.x.as_ref(),
            d.labels.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }
}

/// `cnnc eval FILE --weights W DATA`
#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub target: ModelArgs,
    #[command(flatten)]
    pub style: Style,
    /// The weights to evaluate (.safetensors or .npz)
    #[arg(long, value_name = "W")]
    pub weights: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Seed of synthetic data (`shapes`): use the one training used
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Also print per-class precision, recall and F1, top-k accuracy and
    /// the confusion matrix
    #[arg(long)]
    pub report: bool,
    /// The k of the report's top-k accuracy (with --report)
    #[arg(long, value_name = "K", default_value_t = 5, requires = "report")]
    pub top_k: usize,
    /// Draw the confusion matrix as a heat map with the class names (`.svg`
    /// or `.png`)
    #[arg(long, value_name = "OUT.png|OUT.svg")]
    pub confusion: Option<PathBuf>,
}

/// `cnnc predict FILE --weights W --input X [-o Y.npy]`
#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub target: ModelArgs,
    #[command(flatten)]
    pub style: Style,
    /// The weights to use (.safetensors or .npz)
    #[arg(long, value_name = "W")]
    pub weights: PathBuf,
    /// Inputs: a float .npy array (N, H, W, C) or (H, W, C), or one image file
    /// (.png, .jpg), resized to the model's input
    #[arg(long, value_name = "X")]
    pub input: PathBuf,
    /// Write the outputs here as .npy, shape (N, ...output shape); without it the
    /// top classes are printed
    #[arg(long, value_name = "Y.npy")]
    pub output: Option<PathBuf>,
}

/// Reads `--x` / `--labels` into a data set, checking them against the model.
fn load_arrays(x: &Path, labels: &Path, model: &dyn Model) -> Result<Dataset, String> {
    let input = model.input_shape();
    let classes = model.output_shape().iter().product::<usize>();
    let xa = io::read_npy(x).map_err(|e| e.to_string())?;
    let xa = xa.into_f32(x, "--x").map_err(|e| e.to_string())?;
    let images: Array4<f32> = xa.into_dimensionality::<Ix4>().map_err(|_| {
        format!(
            "{}: --x must have shape (N, H, W, C); the model takes {}",
            x.display(),
            dims_text(&input)
        )
    })?;
    if images.shape()[1..] != input[..] {
        return Err(format!(
            "{}: samples are {}, but the model takes {}",
            x.display(),
            dims_text(&images.shape()[1..]),
            dims_text(&input)
        ));
    }
    let la = io::read_npy(labels).map_err(|e| e.to_string())?;
    let labels_v = la
        .into_labels(labels, Some(classes))
        .map_err(|e| e.to_string())?;
    if labels_v.len() != images.shape()[0] {
        return Err(format!(
            "{} holds {} labels for {} samples in {}",
            labels.display(),
            labels_v.len(),
            images.shape()[0],
            x.display()
        ));
    }
    Ok(Dataset {
        images,
        labels: labels_v,
        classes: Vec::new(),
    })
}

/// The first `n` examples of `d` (all when it has fewer).
/// A run that diverged, with the place in the `.cnn` file of the layer where
/// the first NaN or infinity appeared; other errors as they are.
fn diverged(e: cnn::runtime::Error, m: &ir::Model, src: &Source) -> Box<dyn std::error::Error> {
    let cnn::runtime::Error::Diverged(d) = &e else {
        return e.into();
    };
    let layer = match d.culprit {
        // A join is its graph statement (joins are not numbered as leaves).
        Culprit::Output {
            index, join: true, ..
        } => m.layers.get(index),
        Culprit::Output { statement, .. }
        | Culprit::Gradient { statement, .. }
        | Culprit::Update { statement, .. } => m
            .walk()
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| !matches!(l.op, ir::Op::Graph(_)))
            .nth(statement),
        Culprit::Loss => None,
    };
    let Some(l) = layer else {
        return format!("{e}; nothing was saved").into();
    };
    let (line, _) = line_col(&src.text, l.span.start);
    let text = src.text.get(l.span.start..l.span.end).unwrap_or("");
    let text = text.lines().next().unwrap_or("");
    format!(
        "{e}\n  --> {}:{line}: `{text}` (layer{})\n  = note: nothing was saved",
        src.shown, l.path
    )
    .into()
}

fn take(d: Dataset, n: Option<usize>) -> Dataset {
    match n {
        Some(n) if n < d.len() => Dataset {
            images: d
                .images
                .slice_axis(Axis(0), ndarray::Slice::from(..n))
                .to_owned(),
            labels: d.labels[..n].to_vec(),
            classes: d.classes,
        },
        _ => d,
    }
}

fn percent(a: f32) -> String {
    format!("{:.2}%", 100.0 * a)
}

fn warn_classes(d: &Dataset, model: &dyn Model) {
    let outputs = model.output_shape().iter().product::<usize>();
    if !d.classes.is_empty() && d.classes.len() != outputs {
        eprintln!(
            "warning: the data has {} classes but the model has {outputs} outputs",
            d.classes.len()
        );
    }
}

/// What to say when weights trained on one set of class names meet data with
/// another (`None` when either side has no names, or they agree).
fn class_mismatch(trained: &[String], data: &[String]) -> Option<String> {
    if trained.is_empty() || data.is_empty() || trained == data {
        return None;
    }
    let show = |c: &[String]| {
        let mut s = c.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
        if c.len() > 4 {
            s += ", ...";
        }
        s
    };
    Some(format!(
        "these weights were trained on the classes {} but the data's classes are {}: labels may not mean what the model learned",
        show(trained),
        show(data)
    ))
}

fn report_skipped(skipped: &[String]) {
    for s in skipped {
        eprintln!("warning: skipped {s}");
    }
}

/// `cnnc train`.
pub fn train(a: TrainArgs) -> CmdResult {
    // Before any work: a run that cannot work, or whose weights cannot be
    // saved, is refused now.
    for (flag, v) in [
        ("--batch", Some(a.batch)),
        ("--epochs", a.epochs),
        ("--steps", a.steps),
        ("--checkpoint-every", a.checkpoint_every),
        ("--early-stop", a.early_stop),
    ] {
        if v == Some(0) {
            return Err(format!("{flag} must be at least 1").into());
        }
    }
    let lr = a.lr.unwrap_or(match a.optimizer {
        OptimizerKind::Adam | OptimizerKind::Adamw => 0.001,
        _ => 0.01,
    });
    if !(lr.is_finite() && lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {lr}").into());
    }
    let wd = match (a.optimizer, a.weight_decay) {
        (_, Some(w)) if !(w.is_finite() && w >= 0.0) => {
            return Err(format!("--weight-decay must be a number >= 0, got {w}").into())
        }
        (_, Some(w)) => w,
        (OptimizerKind::Adamw, None) => 0.004,
        _ => 0.0,
    };
    if !(0.0..1.0).contains(&a.label_smoothing) {
        let s = a.label_smoothing;
        return Err(format!("--label-smoothing must be in [0, 1), got {s}").into());
    }
    if let Some(c) = a.clip_norm.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(format!("--clip-norm must be a positive number, got {c}").into());
    }
    let inputs = a.inputs();
    if let Some(out) = &a.save {
        output::check(out, &["safetensors", "npz"], &inputs)?;
    }
    if let Some(out) = &a.plot {
        output::check(out, &["svg"], &inputs)?;
    }
    if let Some(out) = &a.log {
        output::check(out, &["csv"], &inputs)?;
    }
    if let Some(out) = &a.save_best {
        output::check(out, &["safetensors", "npz"], &inputs)?;
        if a.save.as_ref().is_some_and(|s| s == out) {
            return Err("--save-best and --save name the same file; give two".into());
        }
    }
    let checkpoint_dir = a.checkpoint.as_ref().or(a.resume.as_ref());
    if let Some(dir) = checkpoint_dir {
        output::check_dir(dir, &inputs)?;
    }
    if a.checkpoint_every.is_some() && checkpoint_dir.is_none() {
        return Err("--checkpoint-every needs --checkpoint DIR (or --resume DIR)".into());
    }
    let Some(loaded) = source::load(&a.target.file, a.style.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let m = loaded.model(a.target.model.as_deref())?;
    let mut net: Sequential = cnn::lower::interpreter(m, a.seed)?;
    let mut classes = Vec::new();
    if let Some(w) = &a.init {
        classes = load_weights(&mut net, w)?.classes;
    }
    let (train, test) = match (&a.data.data, &a.data.x, &a.data.labels) {
        (Some(src), _, _) => {
            let src: DataSource = src.parse()?;
            let splits = src.load_train(net.input_shape(), a.seed)?;
            report_skipped(&splits.skipped);
            (splits.train, splits.test)
        }
        (None, Some(x), Some(l)) => (load_arrays(x, l, &net)?, None),
        _ => {
            return Err("give the training data: --data SOURCE, or --x X.npy --labels L.npy".into())
        }
    };
    let train = take(train, a.data.limit);
    let (train, validation) = match a.validation_split {
        Some(f) => {
            let (t, v) = train.split(f)?;
            (t, Some(v))
        }
        None => (train, None),
    };
    warn_classes(&train, &net);
    if !train.classes.is_empty() {
        classes = train.classes.clone();
    }
    let sgd = |mut o: Sgd| {
        o.weight_decay = wd;
        o
    };
    let mut opt: Box<dyn Optimizer> = match a.optimizer {
        OptimizerKind::Sgd => Box::new(sgd(Sgd::new(lr))),
        OptimizerKind::Momentum => Box::new(sgd(Sgd::with_momentum(lr, 0.9, false))),
        OptimizerKind::Adam | OptimizerKind::Adamw => Box::new(Adam::adamw(lr, wd)),
    };
    let lr_schedule = a.lr_schedule.unwrap_or(DEFAULT_SCHEDULE);
    let opts = FitOptions {
        epochs: a.epochs.unwrap_or(1),
        steps: a.steps,
        batch_size: a.batch,
        shuffle: !a.no_shuffle,
        seed: a.seed,
        validation: validation.as_ref().or(test.as_ref()),
        progress: Progress::Auto,
        lr_schedule,
        step: StepOptions {
            label_smoothing: a.label_smoothing,
            clip_norm: a.clip_norm,
        },
        checkpoint: checkpoint_dir.map(|dir| Checkpointing {
            dir: dir.clone(),
            every: a.checkpoint_every,
            resume: a.resume.is_some(),
            // What the runtime cannot see: the model, the data, the optimizer.
            settings: format!(
                "model {} ({} parameters, {} statements); data {:?} limit {:?} split {:?}; {:?} decay {wd}; smoothing {} clip {:?}",
                m.name,
                m.total_params,
                m.walk().len(),
                a.data.data.as_deref().unwrap_or("--x/--labels arrays"),
                a.data.limit,
                a.validation_split,
                a.optimizer,
                a.label_smoothing,
                a.clip_norm
            ),
        }),
    };
    let schedule = match (lr_schedule, a.lr_schedule) {
        (LrSchedule::Constant, _) => String::new(),
        (s, Some(_)) => format!(" ({s})"),
        (s, None) => {
            let on = match (&validation, &test) {
                (Some(_), _) => "loss on the validation split",
                (None, Some(_)) => "loss on the test data",
                (None, None) => "training loss",
            };
            match s {
                LrSchedule::Plateau { patience, factor } => format!(
                    " (the default, {s}: times {factor} after {patience} epoch{} without a lower {on})",
                    if patience == 1 { "" } else { "s" }
                ),
                s => format!(" (the default, {s})"),
            }
        }
    };
    eprintln!(
        "training {} on {} examples ({} parameters), {:?} lr {lr}{schedule}, batch {}",
        m.name,
        train.len(),
        m.total_params,
        a.optimizer,
        a.batch
    );
    let start = Instant::now();
    let mut log = a.log.as_ref().map(CsvLogger::new);
    let mut early = a.early_stop.map(EarlyStopping::new);
    let mut best = a
        .save_best
        .as_ref()
        .map(|p| ModelCheckpoint::new(p, classes.clone()));
    let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
    if let Some(l) = log.as_mut() {
        callbacks.push(l);
    }
    if let Some(b) = best.as_mut() {
        callbacks.push(b);
    }
    if let Some(e) = early.as_mut() {
        callbacks.push(e);
    }
    let history = fit_with(&mut net, &train, &opts, opt.as_mut(), &mut callbacks)
        .map_err(|e| diverged(e, m, &loaded.source))?;
    if let Some((epoch, loss)) = early.as_ref().and_then(EarlyStopping::best) {
        eprintln!("kept the weights of epoch {epoch} (validation loss {loss:.4})");
    }
    if let (Some((epoch, loss)), Some(p)) =
        (best.as_ref().and_then(ModelCheckpoint::best), &a.save_best)
    {
        eprintln!(
            "{} holds the weights of epoch {epoch} (validation loss {loss:.4})",
            p.display()
        );
    }
    let steps: usize = history.epochs.iter().map(|e| e.steps).sum();
    eprintln!(
        "trained {steps} steps in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    // With a validation split, the test data is scored once, at the end.
    // So is it after early stopping, which put back the best epoch's weights.
    let test_accuracy = match (&validation, &test) {
        (Some(_), Some(t)) => Some(evaluate(&mut net, t, EVAL_BATCH)?.accuracy),
        (None, Some(t)) if early.is_some() => Some(evaluate(&mut net, t, EVAL_BATCH)?.accuracy),
        (Some(_), None) => None,
        (None, _) => history.epochs.last().and_then(|e| e.val_accuracy),
    };
    if a.style.json() {
        // One line per epoch (Keras's history keys), then the run's totals.
        for e in &history.epochs {
            println!("{}", epoch_json(e));
        }
        let last = history.epochs.last();
        let done = serde_json::json!({
            "steps": steps,
            "seconds": start.elapsed().as_secs_f64(),
            "loss": last.map(|e| e.loss),
            "accuracy": last.map(|e| e.accuracy),
            "val_accuracy": last.and_then(|e| e.val_accuracy),
            "test_accuracy": test_accuracy,
            "saved": a.save.as_ref().map(|p| p.display().to_string()),
        });
        println!("{done}");
    } else if let Some(last) = history.epochs.last() {
        println!("loss: {:.6}", last.loss);
        println!("accuracy: {}", percent(last.accuracy));
        if let (Some(acc), Some(_)) = (last.val_accuracy, &validation) {
            println!("validation accuracy: {}", percent(acc));
        }
        if let Some(acc) = test_accuracy {
            println!("test accuracy: {}", percent(acc));
        }
    }
    if let Some(out) = &a.save {
        save_weights(&net, out, &WeightsMeta { classes })?;
        eprintln!("saved weights to {}", out.display());
    }
    if let Some(p) = &a.plot {
        history.plot_svg(p)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `cnnc eval`.
pub fn eval(a: EvalArgs) -> CmdResult {
    let Some(loaded) = source::load(&a.target.file, a.style.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let m = loaded.model(a.target.model.as_deref())?;
    if let Some(out) = &a.confusion {
        let inputs = [a.target.file.as_path(), a.weights.as_path()];
        output::check(out, &["svg", "png"], &inputs)?;
    }
    if a.top_k == 0 {
        return Err("--top-k must be at least 1".into());
    }
    let mut net = cnn::lower::interpreter(m, 0)?;
    let meta = load_weights(&mut net, &a.weights)?;
    let data = match (&a.data.data, &a.data.x, &a.data.labels) {
        (Some(src), _, _) => {
            let src: DataSource = src.parse()?;
            let (d, skipped) = src.load_eval(net.input_shape(), a.seed)?;
            report_skipped(&skipped);
            d
        }
        (None, Some(x), Some(l)) => load_arrays(x, l, &net)?,
        _ => {
            return Err(
                "give the evaluation data: --data SOURCE, or --x X.npy --labels L.npy".into(),
            )
        }
    };
    let data = take(data, a.data.limit);
    warn_classes(&data, &net);
    if let Some(w) = class_mismatch(&meta.classes, &data.classes) {
        eprintln!("warning: {}: {w}", a.weights.display());
    }
    let start = Instant::now();
    let e = evaluate(&mut net, &data, EVAL_BATCH)?;
    eprintln!(
        "evaluated {} examples in {:.1}s",
        data.len(),
        start.elapsed().as_secs_f64()
    );
    let report = match a.report || a.confusion.is_some() {
        true => {
            let out = run_predict(&mut net, data.images.view(), EVAL_BATCH)?;
            let classes = if data.classes.is_empty() {
                &meta.classes
            } else {
                &data.classes
            };
            Some(ClassReport::new(
                out.view(),
                &data.labels,
                classes,
                &[1, a.top_k],
            ))
        }
        false => None,
    };
    if a.style.json() {
        let mut out =
            serde_json::json!({"examples": data.len(), "loss": e.loss, "accuracy": e.accuracy});
        if let (Some(r), true) = (&report, a.report) {
            let per_class: Vec<_> = r
                .classes
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    serde_json::json!({"class": name, "precision": r.precision(c),
                        "recall": r.recall(c), "f1": r.f1(c), "support": r.support(c)})
                })
                .collect();
            out["classes"] = per_class.into();
            out["confusion"] = serde_json::json!(r.confusion);
            out["top_k"] = serde_json::json!(r.top_k);
        }
        println!("{out}");
    } else {
        println!("loss: {:.6}", e.loss);
        println!("accuracy: {}", percent(e.accuracy));
        if let (Some(r), true) = (&report, a.report) {
            print!("\n{}", r.text());
        }
    }
    if let (Some(r), Some(path)) = (&report, &a.confusion) {
        let svg = r.svg();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            let (png, has_fonts) = crate::raster::svg_to_png(&svg)?;
            if !has_fonts {
                eprintln!(
                    "warning: this system has no fonts: {} has no class names (an .svg has them)",
                    path.display()
                );
            }
            io::write_atomic(path, &png)?;
        } else {
            io::write_atomic(path, svg.as_bytes())?;
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// `cnnc predict`.
pub fn predict(a: PredictArgs) -> CmdResult {
    if let Some(out) = &a.output {
        let inputs = [a.target.file.as_path(), &a.weights, &a.input];
        output::check(out, &["npy"], &inputs)?;
    }
    let Some(loaded) = source::load(&a.target.file, a.style.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let m = loaded.model(a.target.model.as_deref())?;
    let mut net = cnn::lower::interpreter(m, 0)?;
    let meta = load_weights(&mut net, &a.weights)?;
    let input = net.input_shape();
    let x: Array4<f32> = if is_image(&a.input) {
        let (x, size) = folder::load_image_sized(&a.input, input)?;
        if let Some(note) = folder::resize_note(size, [input[0], input[1]]) {
            eprintln!("warning: {}: {note}", a.input.display());
        }
        x.insert_axis(Axis(0))
    } else {
        let arr = io::read_npy(&a.input)?.into_f32(&a.input, "--input")?;
        let arr = if arr.ndim() == 3 {
            arr.insert_axis(Axis(0))
        } else {
            arr
        };
        let x = arr.into_dimensionality::<Ix4>().map_err(|_| {
            format!(
                "{}: --input must have shape (N, H, W, C) or (H, W, C); the model takes {}",
                a.input.display(),
                dims_text(&input)
            )
        })?;
        if x.shape()[1..] != input[..] {
            return Err(format!(
                "{}: samples are {}, but the model takes {}",
                a.input.display(),
                dims_text(&x.shape()[1..]),
                dims_text(&input)
            )
            .into());
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            let per = input.iter().product::<usize>();
            return Err(format!(
                "{}: sample {} holds a non-finite value",
                a.input.display(),
                i / per
            )
            .into());
        }
        x
    };
    let y = run_predict(&mut net, x.view(), EVAL_BATCH)?;
    if let Some(out) = &a.output {
        let mut shape = vec![y.nrows()];
        shape.extend(net.output_shape());
        let flat = y.as_slice().ok_or("the model's output is not contiguous")?;
        io::write_npy(out, &shape, flat)?;
        eprintln!("wrote {} outputs to {}", y.nrows(), out.display());
        if a.style.json() {
            let out = serde_json::json!({"samples": y.nrows(), "output": out.display().to_string(), "shape": shape});
            println!("{out}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    // No output file: print the top classes of each sample.
    let name = |i: usize| {
        meta.classes
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    };
    let mut json = Vec::new();
    for (k, row) in y.outer_iter().enumerate() {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
        if a.style.json() {
            let top: Vec<_> = idx
                .iter()
                .take(5)
                .map(|&i| serde_json::json!({"index": i, "class": name(i), "value": row[i]}))
                .collect();
            json.push(serde_json::json!({"sample": k, "top": top}));
            continue;
        }
        if y.nrows() > 1 {
            println!("sample {k}:");
        }
        for &i in idx.iter().take(5) {
            if net.ends_in_softmax() {
                println!("  {:<20} {:6.2}%", name(i), 100.0 * row[i]);
            } else {
                println!("  {:<20} {:.6}", name(i), row[i]);
            }
        }
    }
    if a.style.json() {
        let out = serde_json::json!({"softmax": net.ends_in_softmax(), "predictions": json});
        println!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}
