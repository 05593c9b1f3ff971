//! The thread pool's old path: it moved to [`crate::pool`]. This re-export
//! keeps `ops::parallel::*` compiling until its callers switch.

// moved to crate::pool
pub use crate::pool::{num_threads, parts_for, run, split};
