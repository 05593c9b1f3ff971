//! The execution plan of the `cnn` model language, shared by the compiler (which
//! lowers a checked model to it and writes it into generated code) and the
//! runtime (whose executor runs it). Plain data with every size resolved; no
//! dependencies, so the proc-macro crate can build plans without the runtime.
//!
//! ```
//! use cnn_plan::{Activation, DenseSpec, LayerSpec, Plan};
//! let dense = LayerSpec::Dense { spec: DenseSpec { inputs: 4, units: 3 }, act: Activation::Softmax, bias: true };
//! let plan = Plan::sequential([2, 2, 1], &[LayerSpec::Flatten { len: 4 }, dense]).unwrap();
//! assert_eq!(plan.tensors[0].name, "layer1.kernel");
//! assert_eq!(plan.output_len(), 3);
//! ```
#![forbid(unsafe_code)]

mod build;
pub mod plan;
pub mod spec;

pub use build::{Node, NodeKind};
pub use plan::{Buffer, Init, Operand, Place, Plan, Step, Tensor};
pub use spec::{
    Activation, Augment, AugmentSpec, BatchNormSpec, Conv2dSpec, DenseSpec, GlobalPoolSpec,
    Interpolation, JoinKind, JoinSpec, LayerSpec, Padding, Pool2dSpec, PoolKind, Real,
    UpsampleSpec, Window, ZeroPadSpec,
};
