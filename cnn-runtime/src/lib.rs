//! The shared ndarray runtime of `cnn`: layer kernels (forward and backward side
//! by side), losses, optimizers, initialisers, weights and data I/O, the
//! [`Model`] trait, training loops, and an interpreter for checked models.
//!
//! Layout is NHWC (channels last) as in Keras; conv kernels are
//! `(KH, KW, CIN, COUT)`, dense kernels `(IN, OUT)`.

pub mod data;
pub mod error;
pub mod gemm;
pub mod init;
pub mod interp;
pub mod io;
pub mod loss;
pub mod model;
pub mod ops;
pub mod optim;
pub mod pool;
pub mod spec;
pub mod train;

pub use error::{Error, Result};
pub use model::{Model, Param, ParamMut};
pub use optim::{Adam, Optimizer, Sgd};
pub use spec::{Activation, Conv2dSpec, DenseSpec, LayerSpec, Pool2dSpec, PoolKind};
pub use train::{
    evaluate, fit, predict, EpochStats, Evaluation, FitOptions, History, LrSchedule, Progress,
};

pub use ndarray;
