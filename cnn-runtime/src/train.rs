//! Training and evaluation loops over any [`Model`]: [`fit`], [`evaluate`],
//! [`predict`], and the [`History`] of a run (with an SVG plot).
//!
//! The loss is the mean softmax cross-entropy. During training it comes from the
//! model's own fused, logit-based computation ([`Model::train_batch`]).
//! [`evaluate`] only sees the model's output: when the model ends in softmax the
//! output is probabilities and the loss is `-ln(max(p, f32::MIN_POSITIVE))`, the
//! floor only guarding `ln(0)` (it caps a sample's loss at about 87.3, a
//! regime where the probability has underflowed f32 anyway); otherwise the output
//! is taken as logits and a stable log-softmax is used, as in training.
//!
//! Batches are copied into one buffer allocated before the loop and reused, so
//! the loop itself does not allocate per step.
//!
//! The learning rate follows [`FitOptions::lr_schedule`]: constant by default,
//! or decayed over the run ([`LrSchedule`], in `schedule.rs`), set on the
//! optimizer before every step.

use crate::callbacks::{Callback, Flow};
use crate::checkpoint::{self, Checkpointing, Position};
use crate::data::Dataset;
use crate::error::{Culprit, Divergence};
pub use crate::schedule::LrSchedule;
use crate::schedule::Plateau;
use crate::{Error, Model, Optimizer, Result, StepOptions};
use ndarray::{s, Array2, Array4, ArrayView2, ArrayView4, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

/// How a long loop reports progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A progress bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always a progress bar.
    Bar,
    /// One plain line per epoch.
    Lines,
    /// Nothing.
    Silent,
}

impl Progress {
    fn resolve(self) -> Progress {
        match self {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            p => p,
        }
    }
}

/// Options of [`fit`]. `FitOptions::default()` is Keras's `fit` defaults: one
/// epoch, batches of 32, shuffled, a constant learning rate.
#[derive(Debug, Clone)]
pub struct FitOptions<'a> {
    /// Passes over the data (ignored when `steps` is set).
    pub epochs: usize,
    /// Exactly this many optimizer steps instead of whole epochs: batches are taken
    /// in order (the data's order without `shuffle`), continuing into a new pass
    /// when the data runs out. An "epoch" of the history then ends at each pass's
    /// end or at the last step.
    pub steps: Option<usize>,
    /// Samples per step; the last batch of a pass may be smaller.
    pub batch_size: usize,
    /// Shuffle the sample order before every pass (seeded by `seed`).
    pub shuffle: bool,
    pub seed: u64,
    /// Evaluated after every epoch when given.
    pub validation: Option<&'a Dataset>,
    pub progress: Progress,
    /// How the learning rate changes over the run (default constant).
    pub lr_schedule: LrSchedule,
    /// Checkpoints to write, and whether to resume from the newest (see
    /// [`crate::checkpoint`]).
    pub checkpoint: Option<Checkpointing>,
    /// Label smoothing and gradient clipping of every step.
    pub step: StepOptions,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            steps: None,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation: None,
            progress: Progress::Auto,
            lr_schedule: LrSchedule::Constant,
            checkpoint: None,
            step: StepOptions::default(),
        }
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps taken in this epoch.
    pub steps: usize,
    /// Mean training loss over the epoch's samples (each batch weighted by its size).
    pub loss: f32,
    /// Share of the epoch's training samples classified right (as predicted before
    /// each step's update, as Keras reports it), in [0, 1].
    pub accuracy: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Wall time of the epoch (validation included).
    pub seconds: f64,
}

/// The record of a [`fit`] run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochStats>,
}

/// Loss and accuracy of a model on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Share classified right, in [0, 1].
    pub accuracy: f32,
}

fn check_data(model: &dyn Model, data: &Dataset, what: &str) -> Result<usize> {
    let input = model.input_shape();
    let sh = data.images.shape();
    if sh[1..] != input[..] {
        return Err(Error::Shape {
            expected: format!("{}x{}x{} images", input[0], input[1], input[2]),
            got: format!("{}x{}x{} ({what})", sh[1], sh[2], sh[3]),
        });
    }
    if sh[0] != data.labels.len() {
        return Err(Error::Labels(format!(
            "{what}: {} images but {} labels",
            sh[0],
            data.labels.len()
        )));
    }
    let out = model.output_shape();
    let [classes] = out[..] else {
        return Err(Error::Invalid(format!(
            "classification needs a model that ends in a vector; this one gives {out:?} per sample"
        )));
    };
    if let Some((i, &l)) = data.labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(Error::Labels(format!(
            "{what}: label {l} of sample {i} is out of range for a model with {classes} outputs"
        )));
    }
    if let Some(i) = data.images.iter().position(|v| !v.is_finite()) {
        let per = sh[1] * sh[2] * sh[3];
        return Err(Error::NonFinite(format!(
            "{what}: sample {} holds a non-finite value ({})",
            i / per.max(1),
            data.images.iter().nth(i).copied().unwrap_or(f32::NAN)
        )));
    }
    Ok(classes)
}

/// Index of the largest value (the first one on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Sum of the per-sample cross-entropies and number right in a batch's output.
fn score_batch(out: ArrayView2<'_, f32>, labels: &[usize], softmax: bool) -> Result<(f64, usize)> {
    let mut loss = 0.0f64;
    let mut right = 0;
    for (row, &l) in out.outer_iter().zip(labels) {
        let row = row
            .as_slice()
            .ok_or_else(|| Error::Invalid("model output is not contiguous".into()))?;
        if row.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite(
                "the model's output holds NaN or infinity".into(),
            ));
        }
        if argmax(row) == l {
            right += 1;
        }
        loss += if softmax {
            -(row[l].max(f32::MIN_POSITIVE) as f64).ln()
        } else {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
            lse - row[l] as f64
        };
    }
    Ok((loss, right))
}

/// Copies the samples `idx` of `data` into the first rows of `xbuf` / `lbuf`.
fn gather(
    data: &[f32],
    per: usize,
    labels: &[usize],
    idx: &[usize],
    xbuf: &mut [f32],
    lbuf: &mut [usize],
) {
    for (k, &i) in idx.iter().enumerate() {
        xbuf[k * per..(k + 1) * per].copy_from_slice(&data[i * per..(i + 1) * per]);
        lbuf[k] = labels[i];
    }
}

fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Trains `model` on `data` with `opt`, returning the per-epoch history.
///
/// Checks first that the images fit the model, that every label is an output
/// class and that every value is finite; stops with [`Error::NonFinite`] if the
/// loss diverges to NaN or infinity.
///
/// With a schedule other than [`LrSchedule::Constant`], the optimizer's rate is
/// set before every step and put back to its starting value when `fit` returns.
pub fn fit(
    model: &mut dyn Model,
    data: &Dataset,
    opts: &FitOptions<'_>,
    opt: &mut dyn Optimizer,
) -> Result<History> {
    fit_with(model, data, opts, opt, &mut [])
}

/// [`fit`] with [`Callback`]s, called in order at the end of every epoch (any
/// may stop the run) and when training ends: Keras's `fit(callbacks=[...])`.
///
/// ```
/// # use cnn_runtime::{callbacks::{CsvLogger, EarlyStopping}, fit_with, FitOptions, Sgd};
/// # fn run(model: &mut dyn cnn_runtime::Model, data: &cnn_runtime::data::Dataset) -> cnn_runtime::Result<()> {
/// let mut log = CsvLogger::new("metrics.csv");
/// let mut stop = EarlyStopping::new(3);
/// fit_with(model, data, &FitOptions::default(), &mut Sgd::new(0.01), &mut [&mut log, &mut stop])?;
/// # Ok(()) }
/// ```
pub fn fit_with(
    model: &mut dyn Model,
    data: &Dataset,
    opts: &FitOptions<'_>,
    opt: &mut dyn Optimizer,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    opts.lr_schedule.validate()?;
    let lr0 = opt.learning_rate();
    let result = fit_inner(model, data, opts, opt, lr0, callbacks);
    if opts.lr_schedule != LrSchedule::Constant {
        opt.set_learning_rate(lr0);
    }
    result
}

fn fit_inner(
    model: &mut dyn Model,
    data: &Dataset,
    opts: &FitOptions<'_>,
    opt: &mut dyn Optimizer,
    lr0: f32,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    check_data(model, data, "training data")?;
    model.set_step_options(opts.step)?;
    if let Some(v) = opts.validation {
        check_data(model, v, "validation data")?;
    }
    let n = data.len();
    if n == 0 {
        return Err(Error::Invalid("the training data is empty".into()));
    }
    if opts.batch_size == 0 {
        return Err(Error::Invalid("the batch size must be at least 1".into()));
    }
    let steps_per_pass = n.div_ceil(opts.batch_size);
    let (passes, total_steps) = match opts.steps {
        Some(0) => {
            return Err(Error::Invalid(
                "the number of steps must be at least 1".into(),
            ))
        }
        Some(s) => (s.div_ceil(steps_per_pass), s),
        None if opts.epochs == 0 => {
            return Err(Error::Invalid(
                "the number of epochs must be at least 1".into(),
            ))
        }
        None => (opts.epochs, opts.epochs.saturating_mul(steps_per_pass)),
    };
    let [h, w, c] = model.input_shape();
    let per = h * w * c;
    let images = data.images.as_standard_layout();
    let flat = images
        .as_slice()
        .ok_or_else(|| Error::Invalid("images are not contiguous".into()))?;
    let bs = opts.batch_size.min(n);
    let mut xbuf = Array4::<f32>::zeros((bs, h, w, c));
    let mut lbuf = vec![0usize; bs];
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let softmax = model.ends_in_softmax();
    let progress = opts.progress.resolve();
    let scheduled = opts.lr_schedule != LrSchedule::Constant;
    let mut history = History::default();
    let mut done = 0usize;
    let settings = opts.checkpoint.as_ref().map(|cp| {
        format!(
            "{}; {n} samples, batch {}, {} epochs, {:?} steps, shuffle {}, seed {}, {}, lr {lr0}",
            cp.settings,
            opts.batch_size,
            opts.epochs,
            opts.steps,
            opts.shuffle,
            opts.seed,
            opts.lr_schedule
        )
    });
    let mut pos = match (&opts.checkpoint, &settings) {
        (Some(cp), Some(settings)) => resume(cp, settings, model, opt, progress)?,
        _ => None,
    };
    let first_epoch = pos.as_ref().map_or(1, |p| p.epoch);
    let mut plateau = Plateau::default();
    if let Some(p) = &pos {
        history.epochs = p.history.clone();
        plateau = p.plateau.clone();
        done = p.done - p.step_in_epoch;
    }
    // The shuffles of the epochs done, replayed: the next one is then the
    // uninterrupted run's.
    for _ in 1..first_epoch {
        if opts.shuffle {
            order.shuffle(&mut rng);
        }
    }
    for epoch in first_epoch..=passes {
        let start = Instant::now();
        if opts.shuffle {
            order.shuffle(&mut rng);
        }
        let steps_now = steps_per_pass.min(total_steps - done);
        // A resumed epoch starts after its steps done, with its running sums.
        let (first, (mut loss_sum, mut right, mut seen)) = match pos.take() {
            Some(p) => (p.step_in_epoch, (p.loss_sum, p.right, p.seen)),
            None => (0, (0.0f64, 0usize, 0usize)),
        };
        let pb = (progress == Progress::Bar).then(|| {
            let pb = bar(
                steps_now as u64,
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
            );
            pb.set_prefix(format!("{epoch}/{passes}"));
            pb
        });
        if let Some(pb) = &pb {
            pb.set_position(first as u64);
        }
        let mut last_msg = Instant::now();
        for step in first..steps_now {
            let idx = &order[step * bs..((step + 1) * bs).min(n)];
            let b = idx.len();
            gather(
                flat,
                per,
                &data.labels,
                idx,
                xbuf.as_slice_mut().unwrap_or_default(),
                &mut lbuf,
            );
            if scheduled {
                let lr = opts.lr_schedule.rate_after(
                    plateau.cuts,
                    lr0,
                    done + step,
                    total_steps,
                    steps_per_pass,
                );
                opt.set_learning_rate(lr);
            }
            let x = xbuf.slice(s![..b, .., .., ..]);
            let at = |mut d: Divergence| {
                (d.epoch, d.step) = (Some(epoch), Some(step + 1));
                Error::Diverged(d)
            };
            let loss = model.train_batch(x, &lbuf[..b], opt).map_err(|e| match e {
                Error::Diverged(d) => at(d),
                e => e,
            })?;
            // A model of its own may not check: the loss at least.
            if !loss.is_finite() {
                return Err(at(Divergence::new(Culprit::Loss, loss, loss)));
            }
            // Accuracy as Keras reports it: from the predictions the step trained on,
            // which the model keeps. A model that does not keep them is scored by a
            // second forward pass on the batch (after the update).
            let r = match model.last_output() {
                Some(out) => score_batch(out, &lbuf[..b], softmax)?.1,
                None => {
                    let x = xbuf.slice(s![..b, .., .., ..]);
                    score_batch(model.forward_batch(x)?, &lbuf[..b], softmax)?.1
                }
            };
            loss_sum += loss as f64 * b as f64;
            right += r;
            seen += b;
            if let Some(pb) = &pb {
                pb.inc(1);
                if last_msg.elapsed().as_millis() >= 200 {
                    pb.set_message(format!(
                        "loss {:.4} acc {:.2}%",
                        loss_sum / seen as f64,
                        100.0 * right as f64 / seen as f64
                    ));
                    last_msg = Instant::now();
                }
            }
            if let (Some(cp), Some(settings)) = (&opts.checkpoint, &settings) {
                let at = done + step + 1;
                if cp.every.is_some_and(|k| k > 0 && at.is_multiple_of(k)) && step + 1 < steps_now {
                    let p = Position {
                        format: 1,
                        settings: settings.clone(),
                        done: at,
                        epoch,
                        step_in_epoch: step + 1,
                        loss_sum,
                        right,
                        seen,
                        passes: model.training_passes(),
                        history: history.epochs.clone(),
                        plateau: plateau.clone(),
                    };
                    checkpoint::write(cp, model, opt, &p, &data.classes)?;
                }
            }
        }
        done += steps_now;
        let (val_loss, val_accuracy) = match opts.validation {
            Some(v) if !v.is_empty() => {
                let e = evaluate_inner(model, v, opts.batch_size, Progress::Silent)?;
                (Some(e.loss), Some(e.accuracy))
            }
            _ => (None, None),
        };
        let stats = EpochStats {
            epoch,
            steps: steps_now,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            accuracy: right as f32 / seen.max(1) as f32,
            val_loss,
            val_accuracy,
            lr: opt.learning_rate(),
            seconds: start.elapsed().as_secs_f64(),
        };
        let line = epoch_line(&stats, scheduled);
        match (&pb, progress) {
            (Some(pb), _) => {
                // The finished line shows the epoch's totals, not a stale ETA.
                if let Ok(st) = indicatif::ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg}",
                ) {
                    pb.set_style(st.progress_chars("=> "));
                }
                pb.finish_with_message(line.clone())
            }
            (None, Progress::Lines) => eprintln!("epoch {epoch}/{passes}: {line}"),
            _ => {}
        }
        plateau.epoch_end(&opts.lr_schedule, val_loss.unwrap_or(stats.loss));
        history.epochs.push(stats);
        if let (Some(cp), Some(settings)) = (&opts.checkpoint, &settings) {
            let p = Position {
                format: 1,
                settings: settings.clone(),
                done,
                epoch: epoch + 1,
                step_in_epoch: 0,
                loss_sum: 0.0,
                right: 0,
                seen: 0,
                passes: model.training_passes(),
                history: history.epochs.clone(),
                plateau: plateau.clone(),
            };
            checkpoint::write(cp, model, opt, &p, &data.classes)?;
        }
        let mut stop = false;
        if let Some(last) = history.epochs.last() {
            for cb in callbacks.iter_mut() {
                stop |= cb.on_epoch_end(last, model)? == Flow::Stop;
            }
        }
        if stop {
            break;
        }
    }
    for cb in callbacks.iter_mut() {
        cb.on_train_end(model)?;
    }
    Ok(history)
}

/// Restores the newest checkpoint of `cp.dir` when resuming (none there: the
/// run starts from the beginning); refuses a resume with other settings, and
/// a fresh run into a folder that holds checkpoints (it would mix two runs).
fn resume(
    cp: &Checkpointing,
    settings: &str,
    model: &mut dyn Model,
    opt: &mut dyn Optimizer,
    progress: Progress,
) -> Result<Option<Position>> {
    let newest = checkpoint::checkpoints(&cp.dir)?.pop();
    let Some(path) = newest else {
        if cp.resume && progress != Progress::Silent {
            eprintln!(
                "no checkpoint in {} yet: training from the beginning",
                cp.dir.display()
            );
        }
        return Ok(None);
    };
    if !cp.resume {
        return Err(Error::Invalid(format!(
            "{} already holds checkpoints of a run: resume it, or give an empty folder",
            cp.dir.display()
        )));
    }
    let mut probe = checkpoint::peek(&path)?;
    if probe.settings != settings {
        return Err(Error::Invalid(format!(
            "{} was made by a run with other settings:\n  it:   {}\n  this: {settings}",
            path.display(),
            probe.settings
        )));
    }
    probe = checkpoint::restore(&path, model, opt)?;
    if progress != Progress::Silent {
        eprintln!(
            "resuming from {} (epoch {}, step {} of the run)",
            path.display(),
            probe.epoch,
            probe.done
        );
    }
    Ok(Some(probe))
}

/// The epoch's summary; the rate only when a schedule changes it.
fn epoch_line(s: &EpochStats, show_lr: bool) -> String {
    let mut line = format!("loss {:.4}, accuracy {:.2}%", s.loss, 100.0 * s.accuracy);
    if let (Some(l), Some(a)) = (s.val_loss, s.val_accuracy) {
        line += &format!(", val_loss {l:.4}, val_accuracy {:.2}%", 100.0 * a);
    }
    if show_lr {
        line += &format!(", lr {:.3e}", s.lr);
    }
    line += &format!(" ({} steps, {:.1}s)", s.steps, s.seconds);
    line
}

/// Mean cross-entropy and accuracy of `model` on `data`, in batches of
/// `batch_size` (a progress bar on a terminal).
pub fn evaluate(model: &mut dyn Model, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
    check_data(model, data, "evaluation data")?;
    evaluate_inner(model, data, batch_size, Progress::Auto)
}

fn evaluate_inner(
    model: &mut dyn Model,
    data: &Dataset,
    batch_size: usize,
    progress: Progress,
) -> Result<Evaluation> {
    let n = data.len();
    if n == 0 {
        return Err(Error::Invalid("the evaluation data is empty".into()));
    }
    if batch_size == 0 {
        return Err(Error::Invalid("the batch size must be at least 1".into()));
    }
    let softmax = model.ends_in_softmax();
    let pb = (progress.resolve() == Progress::Bar).then(|| {
        bar(
            n.div_ceil(batch_size) as u64,
            "evaluating [{bar:30}] {pos}/{len} ({eta})",
        )
    });
    let (mut loss, mut right) = (0.0f64, 0usize);
    for (k, chunk) in data
        .images
        .axis_chunks_iter(Axis(0), batch_size)
        .enumerate()
    {
        let labels = &data.labels[k * batch_size..k * batch_size + chunk.len_of(Axis(0))];
        let out = model.predict_batch(chunk)?;
        let (l, r) = score_batch(out, labels, softmax)?;
        loss += l;
        right += r;
        if let Some(pb) = &pb {
            pb.inc(1);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(Evaluation {
        loss: (loss / n as f64) as f32,
        accuracy: right as f32 / n as f32,
    })
}

/// The model's outputs for every sample of `x`, one row each, computed in
/// batches of `batch_size`.
pub fn predict(
    model: &mut dyn Model,
    x: ArrayView4<'_, f32>,
    batch_size: usize,
) -> Result<Array2<f32>> {
    let input = model.input_shape();
    if x.shape()[1..] != input[..] {
        return Err(Error::Shape {
            expected: format!("{}x{}x{} images", input[0], input[1], input[2]),
            got: format!("{}x{}x{}", x.shape()[1], x.shape()[2], x.shape()[3]),
        });
    }
    if batch_size == 0 {
        return Err(Error::Invalid("the batch size must be at least 1".into()));
    }
    let width: usize = model.output_shape().iter().product();
    let n = x.len_of(Axis(0));
    let mut out = Array2::<f32>::zeros((n, width));
    for (k, chunk) in x.axis_chunks_iter(Axis(0), batch_size).enumerate() {
        let y = model.predict_batch(chunk)?;
        let start = k * batch_size;
        out.slice_mut(s![start..start + y.nrows(), ..]).assign(&y);
    }
    Ok(out)
}

impl History {
    /// Draws loss and accuracy per epoch (training, and validation when present)
    /// as an SVG: two panels side by side. Written atomically.
    pub fn plot_svg(&self, path: &Path) -> Result<()> {
        let svg = self.svg()?;
        crate::io::write_atomic(path, svg.as_bytes())
    }

    /// The SVG text of [`Self::plot_svg`].
    pub fn svg(&self) -> Result<String> {
        use plotters::prelude::*;
        if self.epochs.is_empty() {
            return Err(Error::Invalid("no epochs to plot".into()));
        }
        let err = |e: String| Error::Invalid(format!("plot: {e}"));
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (960, 400)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
            let (left, right) = root.split_horizontally(480);
            let n = self.epochs.len() as i32;
            // Whole epochs on the x axis; at least 1..2 so that one epoch still has a range.
            let x_max = n.max(2);
            let pick = |f: &dyn Fn(&EpochStats) -> Option<f32>| -> Vec<(i32, f32)> {
                self.epochs
                    .iter()
                    .filter_map(|e| f(e).map(|v| (e.epoch as i32, v)))
                    .collect()
            };
            let train_loss = pick(&|e| Some(e.loss));
            let val_loss = pick(&|e| e.val_loss);
            let train_acc = pick(&|e| Some(e.accuracy * 100.0));
            let val_acc = pick(&|e| e.val_accuracy.map(|a| a * 100.0));
            let loss_max = train_loss
                .iter()
                .chain(&val_loss)
                .map(|p| p.1)
                .fold(0.0f32, f32::max)
                .max(1e-3)
                * 1.1;
            // Zoom the accuracy axis onto the values (late epochs differ by tenths
            // of a percent), keeping 100% as the top.
            let acc_min = train_acc
                .iter()
                .chain(&val_acc)
                .map(|p| p.1)
                .fold(100.0f32, f32::min);
            let acc_lo = (acc_min - 5.0).clamp(0.0, 95.0).floor();
            for (area, title, y_range, series, y_label, legend) in [
                (
                    &left,
                    "loss",
                    0.0..loss_max,
                    [(&train_loss, "train"), (&val_loss, "validation")],
                    "cross-entropy",
                    SeriesLabelPosition::UpperRight,
                ),
                (
                    &right,
                    "accuracy",
                    acc_lo..100.0,
                    [(&train_acc, "train"), (&val_acc, "validation")],
                    "%",
                    SeriesLabelPosition::LowerRight,
                ),
            ] {
                let mut chart = ChartBuilder::on(area)
                    .caption(title, ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(35)
                    .y_label_area_size(50)
                    .build_cartesian_2d(1..x_max, y_range)
                    .map_err(|e| err(e.to_string()))?;
                chart
                    .configure_mesh()
                    .x_labels((x_max as usize).min(12))
                    .x_desc("epoch")
                    .y_desc(y_label)
                    .draw()
                    .map_err(|e| err(e.to_string()))?;
                for ((points, name), color) in series.into_iter().zip([BLUE, RED]) {
                    if points.is_empty() {
                        continue;
                    }
                    chart
                        .draw_series(LineSeries::new(
                            points.iter().copied(),
                            color.stroke_width(2),
                        ))
                        .map_err(|e| err(e.to_string()))?
                        .label(name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(|e| err(e.to_string()))?;
                }
                chart
                    .configure_series_labels()
                    .position(legend)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| err(e.to_string()))?;
            }
            root.present().map_err(|e| err(e.to_string()))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_model;
    use crate::Sgd;

    /// Plain SGD that records the rate of every step it takes.
    struct Spy {
        lr: f32,
        seen: Vec<f32>,
    }

    impl Optimizer for Spy {
        fn begin_step(&mut self) {
            self.seen.push(self.lr);
        }
        fn update(&mut self, _: usize, p: &mut [f32], g: &[f32]) {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= self.lr * g;
            }
        }
        fn learning_rate(&self) -> f32 {
            self.lr
        }
        fn set_learning_rate(&mut self, lr: f32) {
            self.lr = lr;
        }
    }

    /// 10 samples: with batches of 4, 3 steps per epoch (4 + 4 + 2).
    fn data() -> Dataset {
        let images = Array4::from_shape_fn((10, 2, 2, 1), |(n, i, j, _)| {
            ((n * 7 + i * 3 + j) % 5) as f32 / 5.0
        });
        Dataset {
            images,
            labels: (0..10).map(|n| n % 3).collect(),
            classes: Vec::new(),
        }
    }

    fn opts(epochs: usize, sched: LrSchedule) -> FitOptions<'static> {
        FitOptions {
            epochs,
            batch_size: 4,
            progress: Progress::Silent,
            lr_schedule: sched,
            ..FitOptions::default()
        }
    }

    #[test]
    fn fit_sets_the_scheduled_rate_before_every_step_and_restores_it() {
        let sched = LrSchedule::Cosine { alpha: 0.1 };
        let mut spy = Spy {
            lr: 0.2,
            seen: Vec::new(),
        };
        let h = fit(&mut tiny_model(), &data(), &opts(4, sched), &mut spy).unwrap();
        let want: Vec<f32> = (0..12).map(|t| sched.rate(0.2, t, 12, 3)).collect();
        assert_eq!(spy.seen, want);
        assert!(spy.seen[11] < spy.seen[0] * 0.2, "{:?}", spy.seen);
        assert_eq!(spy.lr, 0.2, "the starting rate is put back");
        let lrs: Vec<f32> = h.epochs.iter().map(|e| e.lr).collect();
        assert_eq!(lrs, vec![want[2], want[5], want[8], want[11]]);

        // Step decay over `steps` (not whole epochs): per-epoch boundaries still hold.
        let mut spy = Spy {
            lr: 1.0,
            seen: Vec::new(),
        };
        let o = FitOptions {
            steps: Some(7),
            ..opts(1, "step:1:0.5".parse().unwrap())
        };
        fit(&mut tiny_model(), &data(), &o, &mut spy).unwrap();
        assert_eq!(spy.seen, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn constant_schedule_leaves_the_optimizer_alone() {
        let mut spy = Spy {
            lr: 0.3,
            seen: Vec::new(),
        };
        fit(
            &mut tiny_model(),
            &data(),
            &opts(2, LrSchedule::Constant),
            &mut spy,
        )
        .unwrap();
        assert_eq!(spy.seen, vec![0.3; 6]);
        // And the result is the same as with no schedule field touched at all.
        let run = |o: &FitOptions<'_>| {
            let mut m = tiny_model();
            fit(&mut m, &data(), o, &mut Sgd::new(0.3)).unwrap();
            m.params()[0].data.to_vec()
        };
        let plain = FitOptions {
            epochs: 2,
            batch_size: 4,
            progress: Progress::Silent,
            ..FitOptions::default()
        };
        assert_eq!(run(&plain), run(&opts(2, LrSchedule::Constant)));
        assert_ne!(
            run(&plain),
            run(&opts(2, LrSchedule::Cosine { alpha: 0.0 })),
            "a schedule changes the steps"
        );
    }

    #[test]
    fn fit_rejects_a_bad_schedule_before_training() {
        let mut spy = Spy {
            lr: 0.3,
            seen: Vec::new(),
        };
        let bad = LrSchedule::Step {
            every: 0,
            factor: 0.1,
        };
        let e = fit(&mut tiny_model(), &data(), &opts(1, bad), &mut spy).unwrap_err();
        assert!(e.to_string().contains("EVERY"), "{e}");
        assert!(spy.seen.is_empty());
    }
}
