//! The fixed-size kernels' old path: they moved beside their ops, to
//! [`super::conv2d::fixed`] and [`super::pool2d::fixed`]. These re-exports keep
//! `ops::fixed::*` compiling until its callers switch.

// moved to ops::conv2d::fixed and ops::pool2d::fixed
pub use super::conv2d::fixed::conv_valid_backward;
pub use super::pool2d::fixed::{avgpool_backward, avgpool_forward};
