//! `cnn`: a declarative CNN model language with a real compiler behind it.
//!
//! ```ignore
//! use cnn::cnn;
//! cnn! { pub model Seed {
//!     input 150x150x3; conv 32 3x3 same relu; maxpool 2;
//!     conv 32 4x4 valid; maxpool 2; flatten; dense 256 relu; dense 5 softmax
//! } }
//! ```

pub use cnn_runtime as runtime;
pub use cnn_runtime::Error;
pub use ndarray;

pub mod lower;
