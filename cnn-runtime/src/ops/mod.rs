//! Layer kernels, forward and backward side by side, on NHWC row-major `f32`
//! slices with the batch leading. Every kernel sizes nothing itself: callers pass
//! buffers sized from the same spec (a mismatch is a caller bug and panics).

pub mod activation;
pub mod batchnorm;
pub mod conv2d;
pub mod deconv;
pub mod dense;
pub mod dropout;
pub mod dwconv;
pub mod global_pool;
pub mod pool2d;
pub mod upsample;
pub mod zeropad;

pub use activation::{activation_backward, activation_forward, activation_forward_inplace};
pub use conv2d::{conv2d_backward, conv2d_forward, Conv2dScratch};
pub use dense::{dense_backward, dense_forward};
pub use pool2d::{pool2d_backward, pool2d_forward};
