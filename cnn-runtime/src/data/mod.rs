//! Data sets: in-memory images and labels, and their loaders.

pub mod folder;
pub mod shapes;

use ndarray::Array4;

/// Images (NHWC, f32) with one class label each.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `(N, H, W, C)`, values as the model takes them (pixels scaled to [0, 1]).
    pub images: Array4<f32>,
    /// One class index per image, each `< classes.len()` when names are known.
    pub labels: Vec<usize>,
    /// Class names, index = label (may be empty: unnamed classes).
    pub classes: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
