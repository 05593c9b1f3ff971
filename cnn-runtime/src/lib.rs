//! The shared ndarray runtime of `cnn`: layer kernels (forward and backward side
//! by side), losses, optimizers, initialisers, weights and data I/O, the
//! [`Model`] trait, training loops, and an interpreter for checked models.
//!
//! Layout is NHWC (channels last) as in Keras; conv kernels are
//! `(KH, KW, CIN, COUT)`, dense kernels `(IN, OUT)`.
//!
//! # Environment
//!
//! * `CNN_THREADS=N`: threads of the kernel thread pool ([`pool`]), the caller
//!   included (default: every core).
//! * `CNN_PORTABLE=1`: every kernel takes its portable path even where the CPU
//!   has AVX-512 or AVX2 ([`cpu::avx512`] and [`cpu::avx2`] answer `false`),
//!   e.g. to test those paths on a wide machine; `CNN_PORTABLE=avx2`: the AVX2
//!   and FMA kernels where the CPU has AVX-512 too. Results agree across the
//!   paths up to float rounding. Read once per process.

pub mod aligned;
pub mod callbacks;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod error;
pub mod exec;
pub mod gemm;
pub mod init;
pub mod interp;
pub mod io;
pub mod loss;
pub mod model;
pub mod ops;
pub mod optim;
pub mod pool;
pub mod profile;
pub mod report;
pub mod schedule;
#[cfg(test)]
pub(crate) mod testing;
pub mod train;

pub use cnn_plan as plan;
pub use cnn_plan::{
    spec, Activation, Augment, AugmentSpec, BatchNormSpec, Conv2dSpec, DenseSpec, GlobalPoolSpec,
    Init, Interpolation, JoinKind, JoinSpec, LayerSpec, Padding, Plan, Pool2dSpec, PoolKind, Real,
    Step, Tensor, UpsampleSpec, Window, ZeroPadSpec,
};
pub use error::{Culprit, Divergence, Error, Result};
pub use model::{Model, Param, ParamMut, StepOptions};
pub use optim::{Adam, Optimizer, OptimizerState, Sgd};
pub use train::{
    evaluate, fit, fit_with, predict, EpochStats, Evaluation, FitOptions, History, LrSchedule,
    Progress,
};

pub use ndarray;
