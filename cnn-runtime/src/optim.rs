//! Optimizers with Keras's defaults.
//!
//! The update rules are Keras 3's, written out so that a run here and a run in
//! Keras take the same steps from the same gradients:
//!
//! - [`Sgd`]: `p -= lr * g`; with momentum `m`: `v = m * v - lr * g; p += v`;
//!   Nesterov: `v = m * v - lr * g; p += m * v - lr * g`.
//! - [`Adam`]: Keras 3's form, where the bias correction is folded into the step
//!   size and `epsilon` is added to the *uncorrected* `sqrt(v)`:
//!   `alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)`, `m += (g - m) * (1 - b1)`,
//!   `v += (g^2 - v) * (1 - b2)`, `p -= alpha * m / (sqrt(v) + eps)`.
//! - Weight decay (Keras 3's `weight_decay` of every optimizer; AdamW is
//!   Adam with it): `p -= lr * wd * p` before the step, decoupled from the
//!   gradient, on every trained tensor (Keras excludes none by default).

use crate::{Error, Result};

/// Updates parameters in place from their gradients.
///
/// Each parameter tensor has a stable `slot` number (its position in
/// [`crate::Model::params`]), so optimizers can keep per-tensor state; that state
/// is allocated on the first step and reused after.
pub trait Optimizer {
    /// Called once per training step, before the step's `update` calls.
    fn begin_step(&mut self);
    /// `param -= f(grad)` for one tensor.
    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]);
    /// The learning rate in use.
    fn learning_rate(&self) -> f32;
    /// Replaces the learning rate, keeping all other state (moments, step count):
    /// how a schedule ([`crate::LrSchedule`]) drives the optimizer. Call it between
    /// steps; it takes effect from the next `begin_step`.
    fn set_learning_rate(&mut self, lr: f32);
    /// Everything a later run needs to take the very steps this one would
    /// (moments, step count), for a checkpoint. The default: no state.
    fn state(&self) -> OptimizerState {
        OptimizerState::default()
    }
    /// Restores a state that [`Optimizer::state`] of the same kind of
    /// optimizer returned. The default accepts only the empty state.
    fn set_state(&mut self, state: OptimizerState) -> Result<()> {
        match state == OptimizerState::default() {
            true => Ok(()),
            false => Err(Error::Invalid(format!(
                "this optimizer keeps no state, but the checkpoint holds some ({})",
                state.kind
            ))),
        }
    }
}

/// An optimizer's state ([`Optimizer::state`]): its kind, counters and
/// per-slot vectors (`m.3`: the first moment of slot 3), exact to the bit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptimizerState {
    /// `adam`, `sgd` (empty: no state).
    pub kind: String,
    pub counters: Vec<(String, u64)>,
    pub vectors: Vec<(String, Vec<f32>)>,
}

impl OptimizerState {
    /// Checks that the state was written by an optimizer of `kind`.
    fn expect(&self, kind: &str) -> Result<()> {
        match self.kind == kind || self.kind.is_empty() && self.vectors.is_empty() {
            true => Ok(()),
            false => Err(Error::Invalid(format!(
                "the checkpoint's optimizer state is {:?}'s, not {kind}'s",
                self.kind
            ))),
        }
    }

    fn counter(&self, name: &str) -> Option<u64> {
        self.counters.iter().find(|(n, _)| n == name).map(|c| c.1)
    }
}

/// Keras's decoupled weight decay: `p -= lr * wd * p`.
fn decay(param: &mut [f32], lr: f32, wd: f32) {
    if wd != 0.0 {
        let k = lr * wd;
        for p in param.iter_mut() {
            *p -= *p * k;
        }
    }
}

/// Per-slot state vectors, each allocated on the slot's first update and reused
/// after (a slot whose tensor changes length gets a fresh, zeroed state).
#[derive(Debug, Clone, Default)]
struct SlotState {
    slots: Vec<Vec<f32>>,
}

impl SlotState {
    /// The allocated slots as `(prefix.slot, values)`.
    fn export(&self, prefix: &str, out: &mut Vec<(String, Vec<f32>)>) {
        for (i, s) in self.slots.iter().enumerate() {
            if !s.is_empty() {
                out.push((format!("{prefix}.{i}"), s.clone()));
            }
        }
    }

    /// The state of [`SlotState::export`] back, from the vectors named
    /// `prefix.slot` (every name must have one of `prefixes`).
    fn import(
        prefix: &str,
        prefixes: &[&str],
        vectors: &[(String, Vec<f32>)],
    ) -> Result<SlotState> {
        let mut s = SlotState::default();
        for (name, v) in vectors {
            let bad = || Error::Invalid(format!("optimizer state: unexpected vector `{name}`"));
            let (p, slot) = name.rsplit_once('.').ok_or_else(bad)?;
            if !prefixes.contains(&p) {
                return Err(bad());
            }
            if p != prefix {
                continue;
            }
            let slot: usize = slot.parse().map_err(|_| bad())?;
            if slot > 1 << 20 {
                return Err(bad());
            }
            if s.slots.len() <= slot {
                s.slots.resize_with(slot + 1, Vec::new);
            }
            s.slots[slot] = v.clone();
        }
        Ok(s)
    }

    fn get(&mut self, slot: usize, len: usize) -> &mut [f32] {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Vec::new);
        }
        let s = &mut self.slots[slot];
        if s.len() != len {
            *s = vec![0.0; len];
        }
        s
    }
}

/// Stochastic gradient descent, optionally with (Nesterov) momentum.
/// Keras defaults: `lr = 0.01`, `momentum = 0`, `nesterov = false`.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    /// Decoupled weight decay (0: none).
    pub weight_decay: f32,
    velocity: SlotState,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f32) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            velocity: SlotState::default(),
        }
    }
    /// SGD with momentum (`nesterov` selects Nesterov's variant).
    pub fn with_momentum(lr: f32, momentum: f32, nesterov: bool) -> Self {
        Sgd {
            lr,
            momentum,
            nesterov,
            weight_decay: 0.0,
            velocity: SlotState::default(),
        }
    }
}

impl Optimizer for Sgd {
    fn begin_step(&mut self) {}

    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]) {
        let lr = self.lr;
        decay(param, lr, self.weight_decay);
        if self.momentum == 0.0 {
            // Keras skips the velocity entirely without momentum: no state at all.
            for (p, &g) in param.iter_mut().zip(grad) {
                *p -= lr * g;
            }
            return;
        }
        let m = self.momentum;
        let v = self.velocity.get(slot, param.len());
        if self.nesterov {
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                *v = m * *v - lr * g;
                *p += m * *v - lr * g;
            }
        } else {
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                *v = m * *v - lr * g;
                *p += *v;
            }
        }
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> OptimizerState {
        let mut vectors = Vec::new();
        self.velocity.export("velocity", &mut vectors);
        OptimizerState {
            kind: "sgd".into(),
            counters: Vec::new(),
            vectors,
        }
    }

    fn set_state(&mut self, state: OptimizerState) -> Result<()> {
        state.expect("sgd")?;
        self.velocity = SlotState::import("velocity", &["velocity"], &state.vectors)?;
        Ok(())
    }
}

/// Adam as Keras 3 computes it. Keras defaults: `lr = 0.001`, `beta1 = 0.9`,
/// `beta2 = 0.999`, `eps = 1e-7`.
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f32,
    /// Decoupled weight decay (0: Adam; AdamW otherwise).
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Steps begun so far (`t` of the bias correction).
    step: u64,
    /// The step size of the current step, bias correction included.
    alpha: f32,
    m: SlotState,
    v: SlotState,
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new(0.001)
    }
}

impl Adam {
    /// Adam with learning rate `lr` and Keras's other defaults.
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            step: 0,
            alpha: 0.0,
            m: SlotState::default(),
            v: SlotState::default(),
        }
    }
    /// Keras's `AdamW(lr, weight_decay)` (Keras's default decay: 0.004).
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        Adam {
            weight_decay,
            ..Adam::new(lr)
        }
    }

    /// Number of steps begun so far.
    pub fn steps(&self) -> u64 {
        self.step
    }
}

impl Optimizer for Adam {
    fn begin_step(&mut self) {
        self.step += 1;
        // The powers in f64 so that they stay accurate for long runs; the result is
        // the same f32 step size Keras computes up to rounding.
        let t = self.step.min(i32::MAX as u64) as i32;
        let b1t = (self.beta1 as f64).powi(t);
        let b2t = (self.beta2 as f64).powi(t);
        self.alpha = (self.lr as f64 * (1.0 - b2t).sqrt() / (1.0 - b1t)) as f32;
    }

    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]) {
        if self.step == 0 {
            // `update` without `begin_step`: behave as the first step.
            self.begin_step();
        }
        decay(param, self.lr, self.weight_decay);
        let (b1, b2, eps, alpha) = (self.beta1, self.beta2, self.eps, self.alpha);
        let m = self.m.get(slot, param.len());
        let v = self.v.get(slot, param.len());
        for (((p, &g), m), v) in param
            .iter_mut()
            .zip(grad)
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            *m += (g - *m) * (1.0 - b1);
            *v += (g * g - *v) * (1.0 - b2);
            *p -= alpha * *m / (v.sqrt() + eps);
        }
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        // Only the rate changes: the moments and the bias-correction step count
        // carry on, as in Keras where a schedule is a function of the iteration.
        // The step size `alpha` of the next step is computed from it in `begin_step`.
        self.lr = lr;
    }

    fn state(&self) -> OptimizerState {
        let mut vectors = Vec::new();
        self.m.export("m", &mut vectors);
        self.v.export("v", &mut vectors);
        OptimizerState {
            kind: "adam".into(),
            counters: vec![("step".into(), self.step)],
            vectors,
        }
    }

    fn set_state(&mut self, state: OptimizerState) -> Result<()> {
        state.expect("adam")?;
        let m = SlotState::import("m", &["m", "v"], &state.vectors)?;
        let v = SlotState::import("v", &["m", "v"], &state.vectors)?;
        (self.m, self.v) = (m, v);
        self.step = state.counter("step").unwrap_or(0);
        // `alpha` follows from the step count at the next `begin_step`.
        self.alpha = 0.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` updates of one 3-value tensor in slot 1 (slot 0 unused).
    fn run(o: &mut dyn Optimizer, p: &mut [f32; 3], from: usize, steps: usize) {
        for t in from..from + steps {
            let g = [0.3 - t as f32 * 0.1, -1.0, 2.0 / (t + 1) as f32];
            o.begin_step();
            o.update(1, p, &g);
        }
    }

    #[test]
    fn a_restored_state_takes_the_very_same_steps() {
        let kinds: [fn() -> Box<dyn Optimizer>; 3] = [
            || Box::new(Adam::new(0.01)),
            || Box::new(Sgd::with_momentum(0.1, 0.9, true)),
            || Box::new(Sgd::new(0.1)),
        ];
        for make in kinds {
            let (mut a, mut b) = (make(), make());
            let (mut pa, mut pb) = ([1.0f32, 2.0, 3.0], [1.0f32, 2.0, 3.0]);
            run(a.as_mut(), &mut pa, 0, 7);
            run(b.as_mut(), &mut pb, 0, 3);
            // A fresh optimizer given b's state after 3 steps goes on as a would.
            let mut c = make();
            c.set_state(b.state()).unwrap();
            run(c.as_mut(), &mut pb, 3, 4);
            assert_eq!(pa, pb, "{:?}", a.state().kind);
            assert_eq!(a.state(), c.state());
        }
        // Another optimizer's state is refused, as are strange vectors.
        let adam = {
            let mut o = Adam::new(0.1);
            run(&mut o, &mut [0.0; 3], 0, 1);
            o.state()
        };
        assert!(Sgd::with_momentum(0.1, 0.9, false)
            .set_state(adam.clone())
            .is_err());
        let mut odd = adam;
        odd.vectors.push(("w.0".into(), vec![1.0]));
        assert!(Adam::new(0.1).set_state(odd).is_err());
    }

    #[test]
    fn state_is_allocated_once_per_slot() {
        let mut s = SlotState::default();
        s.get(2, 3)[0] = 5.0;
        assert_eq!(s.slots.len(), 3);
        assert_eq!(s.get(2, 3)[0], 5.0, "state kept across calls");
        assert!(s.slots[0].is_empty(), "untouched slots allocate nothing");
    }

    #[test]
    fn weight_decay_is_decoupled_as_in_keras() {
        // A zero gradient: only the decay moves the weight, p *= 1 - lr * wd.
        let mut o = Sgd::new(0.5);
        o.weight_decay = 0.1;
        let mut p = [2.0f32];
        o.begin_step();
        o.update(0, &mut p, &[0.0]);
        assert_eq!(p[0], 2.0 - 2.0 * (0.5 * 0.1));
        // AdamW: the decay, then Adam's step on the gradient.
        let (mut w, mut a) = (Adam::adamw(0.01, 0.004), Adam::new(0.01));
        let (mut pw, mut pa) = ([3.0f32], [3.0f32 - 3.0 * (0.01 * 0.004)]);
        w.begin_step();
        a.begin_step();
        w.update(0, &mut pw, &[0.5]);
        a.update(0, &mut pa, &[0.5]);
        assert_eq!(pw, pa);
    }

    #[test]
    fn sgd_steps_with_the_rate_set_between_steps() {
        let mut o = Sgd::new(0.5);
        let mut p = [1.0f32];
        o.begin_step();
        o.update(0, &mut p, &[1.0]);
        assert_eq!(p[0], 0.5);
        o.set_learning_rate(0.25);
        assert_eq!(o.learning_rate(), 0.25);
        o.begin_step();
        o.update(0, &mut p, &[1.0]);
        assert_eq!(p[0], 0.25);
    }

    #[test]
    fn momentum_keeps_its_velocity_when_the_rate_changes() {
        let mut o = Sgd::with_momentum(1.0, 0.5, false);
        let mut p = [0.0f32];
        o.begin_step();
        o.update(0, &mut p, &[1.0]); // v = -1, p = -1
        o.set_learning_rate(0.5);
        o.begin_step();
        o.update(0, &mut p, &[1.0]); // v = 0.5 * -1 - 0.5 = -1, p = -2
        assert_eq!(p[0], -2.0);
    }

    #[test]
    fn adam_uses_the_new_rate_from_the_next_step_and_keeps_its_moments() {
        // Two Adams see the same gradients; one has its rate halved before step 2.
        // Step 2's move of the halved one is exactly half the other's (same moments,
        // same bias correction: only alpha scales), so the state was not reset.
        let g = [0.3f32, -2.0];
        let (mut a, mut b) = (Adam::new(0.1), Adam::new(0.1));
        let (mut pa, mut pb) = ([1.0f32, 1.0], [1.0f32, 1.0]);
        for o in [&mut a, &mut b] {
            o.begin_step();
        }
        a.update(0, &mut pa, &g);
        b.update(0, &mut pb, &g);
        assert_eq!(pa, pb);
        let before = pa;
        b.set_learning_rate(0.05);
        assert_eq!(b.learning_rate(), 0.05);
        a.begin_step();
        b.begin_step();
        assert_eq!(b.steps(), 2, "the step count carries on");
        a.update(0, &mut pa, &g);
        b.update(0, &mut pb, &g);
        for i in 0..2 {
            let (da, db) = (pa[i] - before[i], pb[i] - before[i]);
            assert!(da != 0.0);
            assert!((db - 0.5 * da).abs() <= 1e-6 * da.abs(), "{da} vs {db}");
        }
    }
}
