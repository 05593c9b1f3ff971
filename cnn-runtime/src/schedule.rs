//! How the learning rate changes over a [`crate::fit`] run: [`LrSchedule`],
//! Keras's `CosineDecay` and `ExponentialDecay`, a step decay and decays at
//! milestones given as shares of the run, each as a function of the step and
//! as text (`cnnc train --lr-schedule`).

use crate::{Error, Result};

/// How the learning rate changes during a [`fit`](crate::fit) run, as a function of the
/// 0-based step `t` (steps taken before this one), the run's total steps `T`
/// and the steps per epoch `E` (batches per pass over the data). `lr0` is the
/// optimizer's rate when `fit` starts; `fit` puts it back when it returns, so a
/// second run starts from it again.
///
/// As text (`FromStr` / `Display`, the form `cnnc train --lr-schedule` takes):
/// `constant`, `cosine[:ALPHA]`, `exponential:RATE`, `step:EVERY[:FACTOR]`,
/// `multistep:F1,F2,...[:FACTOR]`, `plateau[:PATIENCE[:FACTOR]]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LrSchedule {
    /// `lr0` throughout: the optimizer's rate is never touched.
    #[default]
    Constant,
    /// Keras's `CosineDecay(lr0, decay_steps = T, alpha)`: half a cosine from
    /// `lr0` down to `alpha * lr0` over the run,
    /// `lr0 * (alpha + (1 - alpha) * (1 + cos(pi * t / T)) / 2)`.
    Cosine {
        /// Final rate as a share of `lr0`, in [0, 1] (Keras's default 0).
        alpha: f32,
    },
    /// Keras's `ExponentialDecay(lr0, decay_steps = E, decay_rate = rate)`
    /// (not staircase): `lr0 * rate^(t / E)`, i.e. times `rate` per epoch, smoothly.
    Exponential {
        /// Factor per epoch, in (0, 1].
        rate: f32,
    },
    /// Step decay (PyTorch's `StepLR`): `lr0 * factor^floor(t / (every * E))`,
    /// i.e. times `factor` after every `every` epochs.
    Step {
        /// Epochs between decays, at least 1.
        every: usize,
        /// Factor per decay, in (0, 1] (PyTorch's default 0.1).
        factor: f32,
    },
    /// Decays at fixed shares of the run (PyTorch's `MultiStepLR` with its
    /// milestones given as fractions, so that one schedule fits any run
    /// length): `lr0 * factor^k` after `k` of the milestones have passed.
    /// [`LrSchedule::RESNET`] is He et al.'s CIFAR schedule.
    MultiStep {
        /// Milestones as shares of the run, increasing, in (0, 1); the first
        /// `len` are used.
        at: [f32; MAX_MILESTONES],
        len: usize,
        /// Factor per milestone, in (0, 1].
        factor: f32,
    },
    /// Keras's `ReduceLROnPlateau(monitor="val_loss", factor, patience,
    /// min_delta=1e-4)`: times `factor` once the validation loss (the
    /// training loss without validation data) has not fallen by `1e-4` for
    /// `patience` epochs. Not a function of the step: [`Plateau`] follows it.
    Plateau {
        /// Epochs without improvement before a cut, at least 1.
        patience: usize,
        /// Factor per cut, in (0, 1).
        factor: f32,
    },
}

/// The course of a [`LrSchedule::Plateau`] run: the best loss so far, the
/// epochs since it, the cuts made (saved in checkpoints, for exact resumes).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plateau {
    pub best: Option<f64>,
    pub wait: usize,
    pub cuts: u32,
}

impl Plateau {
    /// Smallest fall of the loss that counts as better (Keras's `min_delta`).
    const MIN_DELTA: f64 = 1e-4;

    /// Takes an epoch's monitored loss; says whether the rate was cut.
    pub fn epoch_end(&mut self, schedule: &LrSchedule, loss: f32) -> bool {
        let LrSchedule::Plateau { patience, .. } = *schedule else {
            return false;
        };
        let loss = loss as f64;
        if self.best.is_none_or(|b| loss < b - Self::MIN_DELTA) {
            (self.best, self.wait) = (Some(loss), 0);
            return false;
        }
        self.wait += 1;
        if self.wait < patience {
            return false;
        }
        (self.wait, self.cuts) = (0, self.cuts.saturating_add(1));
        true
    }
}

/// Most milestones an [`LrSchedule::MultiStep`] holds.
pub const MAX_MILESTONES: usize = 4;

impl LrSchedule {
    /// He et al.'s (2016) schedule for ResNets on CIFAR, as shares of the run:
    /// the rate times 0.1 at half of it and again at three quarters.
    pub const RESNET: LrSchedule = LrSchedule::MultiStep {
        at: [0.5, 0.75, 0.0, 0.0],
        len: 2,
        factor: 0.1,
    };

    /// `plateau` alone: the rate times 0.2 after an epoch without a better
    /// validation loss (`cnnc train`'s default; see its module docs).
    pub const PLATEAU: LrSchedule = LrSchedule::Plateau {
        patience: 1,
        factor: 0.2,
    };

    fn patience(&self) -> usize {
        match self {
            LrSchedule::Plateau { patience, .. } => *patience,
            _ => 0,
        }
    }

    fn factor(&self) -> f32 {
        match self {
            LrSchedule::Plateau { factor, .. } => *factor,
            _ => 1.0,
        }
    }

    /// The milestones in use of a [`LrSchedule::MultiStep`] (empty otherwise).
    fn milestones(&self) -> &[f32] {
        match self {
            LrSchedule::MultiStep { at, len, .. } => &at[..(*len).min(MAX_MILESTONES)],
            _ => &[],
        }
    }
}

impl LrSchedule {
    /// Learning rate of step `t` (0-based) of a run of `total` steps with
    /// `per_epoch` steps per epoch, starting from `lr0`.
    pub fn rate(&self, lr0: f32, t: usize, total: usize, per_epoch: usize) -> f32 {
        // f64 inside: cos and powf of step ratios in f32 would lose the last
        // digits over long runs; the result is rounded once.
        let lr0 = lr0 as f64;
        let r = match *self {
            LrSchedule::Constant => lr0,
            LrSchedule::Cosine { alpha } => {
                let alpha = alpha as f64;
                let x = (t as f64 / total.max(1) as f64).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * x).cos());
                lr0 * (alpha + (1.0 - alpha) * cos)
            }
            LrSchedule::Exponential { rate } => {
                lr0 * (rate as f64).powf(t as f64 / per_epoch.max(1) as f64)
            }
            LrSchedule::Step { every, factor } => {
                let period = every.max(1).saturating_mul(per_epoch.max(1));
                lr0 * (factor as f64).powi((t / period).min(i32::MAX as usize) as i32)
            }
            // Its cuts are `Plateau`'s: `fit` scales this by them.
            LrSchedule::Plateau { .. } => lr0,
            LrSchedule::MultiStep { factor, .. } => {
                // Step t has passed milestone m once t >= m * total (rounded).
                let passed = self
                    .milestones()
                    .iter()
                    .filter(|&&m| t as f64 >= (m as f64 * total as f64).round())
                    .count();
                lr0 * (factor as f64).powi(passed as i32)
            }
        };
        r as f32
    }

    /// Checks the parameters: an error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("learning-rate schedule: {m}")));
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Cosine { alpha } if !(0.0..=1.0).contains(&alpha) => bad(format!(
                "cosine's final share ALPHA must be in [0, 1], got {alpha}"
            )),
            LrSchedule::Exponential { rate } if !(rate > 0.0 && rate <= 1.0) => bad(format!(
                "exponential's RATE per epoch must be in (0, 1], got {rate}"
            )),
            LrSchedule::Step { every: 0, .. } => {
                bad("step's EVERY (epochs between decays) must be at least 1".into())
            }
            LrSchedule::Step { factor, .. } if !(factor > 0.0 && factor <= 1.0) => {
                bad(format!("step's FACTOR must be in (0, 1], got {factor}"))
            }
            LrSchedule::MultiStep { len, .. } if len == 0 || len > MAX_MILESTONES => bad(format!(
                "multistep takes 1 to {MAX_MILESTONES} milestones, got {len}"
            )),
            LrSchedule::MultiStep { factor, .. } if !(factor > 0.0 && factor <= 1.0) => {
                bad(format!("multistep's FACTOR must be in (0, 1], got {factor}"))
            }
            LrSchedule::MultiStep { .. }
                if !self.milestones().iter().all(|&m| m > 0.0 && m < 1.0)
                    || self.milestones().windows(2).any(|w| w[0] >= w[1]) =>
            {
                bad("multistep's milestones are shares of the run: increasing, each in (0, 1), as in multistep:0.5,0.75".into())
            }
            LrSchedule::Plateau { patience: 0, .. } => {
                bad("plateau's PATIENCE (epochs without improvement) must be at least 1".into())
            }
            LrSchedule::Plateau { factor, .. } if !(factor > 0.0 && factor < 1.0) => {
                bad(format!("plateau's FACTOR must be in (0, 1), got {factor}"))
            }
            _ => Ok(()),
        }
    }

    /// The rate of step `t` after `cuts` plateau cuts (see [`LrSchedule::rate`]).
    pub fn rate_after(&self, cuts: u32, lr0: f32, t: usize, total: usize, per_epoch: usize) -> f32 {
        match *self {
            LrSchedule::Plateau { factor, .. } => {
                (lr0 as f64 * (factor as f64).powi(cuts.min(i32::MAX as u32) as i32)) as f32
            }
            s => s.rate(lr0, t, total, per_epoch),
        }
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LrSchedule::Constant => write!(f, "constant"),
            LrSchedule::Cosine { alpha } => write!(f, "cosine:{alpha}"),
            LrSchedule::Exponential { rate } => write!(f, "exponential:{rate}"),
            LrSchedule::Step { every, factor } => write!(f, "step:{every}:{factor}"),
            LrSchedule::MultiStep { factor, .. } => {
                let at: Vec<String> = self.milestones().iter().map(|m| m.to_string()).collect();
                write!(f, "multistep:{}:{factor}", at.join(","))
            }
            LrSchedule::Plateau { patience, factor } => write!(f, "plateau:{patience}:{factor}"),
        }
    }
}

impl std::str::FromStr for LrSchedule {
    type Err = Error;

    /// `constant`, `cosine` (= `cosine:0`), `cosine:ALPHA`, `exponential:RATE`,
    /// `step:EVERY` (= `step:EVERY:0.1`) or `step:EVERY:FACTOR`.
    fn from_str(s: &str) -> Result<LrSchedule> {
        const FORMS: &str =
            "expected constant, cosine[:ALPHA], exponential:RATE, step:EVERY[:FACTOR], multistep:F1,F2,...[:FACTOR] or plateau[:PATIENCE[:FACTOR]]";
        let bad = |m: &str| Error::Invalid(format!("learning-rate schedule {s:?}: {m}"));
        let num = |v: &str, what: &str| {
            v.parse::<f32>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(&format!("{what} must be a number, got {v:?}")))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let sched = match parts[..] {
            ["constant"] => LrSchedule::Constant,
            ["plateau", ..] if parts.len() <= 3 => LrSchedule::Plateau {
                patience: match parts.get(1) {
                    Some(p) => p.parse().map_err(|_| {
                        bad(&format!("PATIENCE must be a whole number, got {p:?}"))
                    })?,
                    None => LrSchedule::PLATEAU.patience(),
                },
                factor: match parts.get(2) {
                    Some(f) => num(f, "FACTOR")?,
                    None => LrSchedule::PLATEAU.factor(),
                },
            },
            ["cosine"] => LrSchedule::Cosine { alpha: 0.0 },
            ["cosine", a] => LrSchedule::Cosine {
                alpha: num(a, "ALPHA")?,
            },
            ["exponential", r] => LrSchedule::Exponential {
                rate: num(r, "RATE")?,
            },
            ["exponential"] => return Err(bad("give the factor per epoch, as in exponential:0.5")),
            ["step"] => {
                return Err(bad(
                    "give the epochs between decays, as in step:3 (times 0.1 every 3 epochs)",
                ))
            }
            ["step", e] | ["step", e, _] => LrSchedule::Step {
                every: e
                    .parse()
                    .map_err(|_| bad(&format!("EVERY must be a whole number, got {e:?}")))?,
                factor: match parts.get(2) {
                    Some(f) => num(f, "FACTOR")?,
                    None => 0.1,
                },
            },
            ["multistep"] => {
                return Err(bad(
                    "give the milestones as shares of the run, as in multistep:0.5,0.75 (times 0.1 at each)",
                ))
            }
            ["multistep", list] | ["multistep", list, _] => {
                let mut at = [0.0; MAX_MILESTONES];
                let mut len = 0;
                for m in list.split(',') {
                    if len == MAX_MILESTONES {
                        return Err(bad(&format!("at most {MAX_MILESTONES} milestones")));
                    }
                    at[len] = num(m, "a milestone")?;
                    len += 1;
                }
                LrSchedule::MultiStep {
                    at,
                    len,
                    factor: match parts.get(2) {
                        Some(f) => num(f, "FACTOR")?,
                        None => 0.1,
                    },
                }
            }
            _ => return Err(bad(FORMS)),
        };
        sched.validate()?;
        Ok(sched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1e-12)
    }

    #[test]
    fn cosine_goes_from_lr0_to_alpha_over_the_run() {
        let c = LrSchedule::Cosine { alpha: 0.0 };
        assert_eq!(c.rate(0.1, 0, 100, 10), 0.1);
        assert!(close(c.rate(0.1, 50, 100, 10), 0.05), "half-way: half");
        assert!(close(
            c.rate(0.1, 25, 100, 10),
            0.1 * (0.5 + 0.5 * 0.5f32.sqrt())
        ));
        assert_eq!(c.rate(0.1, 100, 100, 10), 0.0, "cos(pi) = -1 exactly");
        let a = LrSchedule::Cosine { alpha: 0.1 };
        assert!(close(a.rate(2.0, 50, 100, 7), 2.0 * (0.1 + 0.9 * 0.5)));
        assert!(close(a.rate(2.0, 100, 100, 7), 0.2));
        assert!(
            close(a.rate(2.0, 1000, 100, 7), 0.2),
            "past the end: stays at alpha"
        );
        // Strictly decreasing over the run.
        let r: Vec<f32> = (0..100).map(|t| a.rate(1.0, t, 100, 7)).collect();
        assert!(r.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn exponential_and_step_decay_per_epoch() {
        let e = LrSchedule::Exponential { rate: 0.5 };
        assert_eq!(e.rate(1.0, 0, 99, 10), 1.0);
        assert!(close(e.rate(1.0, 10, 99, 10), 0.5));
        assert!(
            close(e.rate(1.0, 5, 99, 10), 0.5f32.sqrt()),
            "smooth inside an epoch"
        );
        assert!(close(e.rate(1.0, 30, 99, 10), 0.125));
        let s = LrSchedule::Step {
            every: 2,
            factor: 0.1,
        };
        // 10 steps per epoch: epochs 0-1 at lr0, 2-3 at lr0/10, 4 at lr0/100.
        for (t, want) in [(0, 1.0), (19, 1.0), (20, 0.1), (39, 0.1), (40, 0.01)] {
            assert!(close(s.rate(1.0, t, 50, 10), want), "t={t}");
        }
        assert_eq!(LrSchedule::Constant.rate(0.3, 77, 100, 10), 0.3);
    }

    #[test]
    fn schedules_parse_print_and_reject_bad_values() {
        for (text, want) in [
            ("constant", LrSchedule::Constant),
            ("cosine", LrSchedule::Cosine { alpha: 0.0 }),
            ("cosine:0.05", LrSchedule::Cosine { alpha: 0.05 }),
            ("exponential:0.7", LrSchedule::Exponential { rate: 0.7 }),
            (
                "step:3",
                LrSchedule::Step {
                    every: 3,
                    factor: 0.1,
                },
            ),
            (
                "step:2:0.5",
                LrSchedule::Step {
                    every: 2,
                    factor: 0.5,
                },
            ),
            ("multistep:0.5,0.75", LrSchedule::RESNET),
            ("plateau", LrSchedule::PLATEAU),
            (
                "plateau:3:0.5",
                LrSchedule::Plateau {
                    patience: 3,
                    factor: 0.5,
                },
            ),
            (
                "multistep:0.3:0.5",
                LrSchedule::MultiStep {
                    at: [0.3, 0.0, 0.0, 0.0],
                    len: 1,
                    factor: 0.5,
                },
            ),
        ] {
            let got: LrSchedule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<LrSchedule>().unwrap(), want);
        }
        for (bad, says) in [
            ("linear", "expected constant"),
            ("cosine:2", "[0, 1]"),
            ("cosine:x", "ALPHA must be a number"),
            ("exponential", "exponential:0.5"),
            ("exponential:0", "(0, 1]"),
            ("step", "step:3"),
            ("step:0", "at least 1"),
            ("step:1.5", "whole number"),
            ("step:2:1.5", "(0, 1]"),
            ("step:2:nan", "FACTOR must be a number"),
            ("step:1:0.1:9", "expected constant"),
            ("multistep", "multistep:0.5,0.75"),
            ("multistep:0.75,0.5", "increasing"),
            ("multistep:0.5,1", "in (0, 1)"),
            ("multistep:0.1,0.2,0.3,0.4,0.5", "at most 4"),
            ("multistep:0.5:2", "(0, 1]"),
            ("multistep:0.5,x", "a milestone must be a number"),
            ("plateau:0", "at least 1"),
            ("plateau:1:1", "(0, 1)"),
            ("plateau:x", "whole number"),
            ("plateau:1:0.5:2", "expected constant"),
        ] {
            let e = bad.parse::<LrSchedule>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn plateau_cuts_after_patience_epochs_without_a_lower_loss() {
        let s = LrSchedule::Plateau {
            patience: 2,
            factor: 0.5,
        };
        let mut p = Plateau::default();
        // Better, better, worse, better-by-less-than-1e-4 (not better): cut.
        let cuts: Vec<bool> = [1.0, 0.8, 0.9, 0.79995, 0.7, 0.7, 0.7]
            .iter()
            .map(|&l| p.epoch_end(&s, l))
            .collect();
        assert_eq!(cuts, [false, false, false, true, false, false, true]);
        assert_eq!(p.cuts, 2);
        assert_eq!(s.rate_after(p.cuts, 0.1, 0, 10, 1), 0.025);
        // Other schedules ignore it and take their own rate.
        let c = LrSchedule::Cosine { alpha: 0.0 };
        assert!(!p.clone().epoch_end(&c, 9.0));
        assert_eq!(c.rate_after(5, 0.1, 0, 10, 1), 0.1);
    }

    #[test]
    fn multistep_decays_at_shares_of_the_run() {
        let r = LrSchedule::RESNET;
        // 200 steps: x0.1 from step 100, x0.01 from step 150, whatever the epochs.
        for (t, want) in [
            (0, 1.0),
            (99, 1.0),
            (100, 0.1),
            (149, 0.1),
            (150, 0.01),
            (199, 0.01),
        ] {
            assert!(close(r.rate(1.0, t, 200, 7), want), "t={t}");
        }
        assert_eq!(r.to_string(), "multistep:0.5,0.75:0.1");
    }
}
