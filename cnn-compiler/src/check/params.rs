//! A layer's parameter tensors in Keras's order and layout, counted with
//! checked arithmetic against the runtime's limit; and the message for a layer
//! past it.

use super::{Checker, MAX_PARAMS};
use crate::diag::{Code, Diagnostic};
use crate::ir::{self, Span};

/// A layer's tensors and their counts.
#[derive(Debug, Clone, Default)]
pub(super) struct Params {
    pub(super) tensors: Vec<ir::ParamTensor>,
    /// Every value, trainable or not.
    pub(super) count: u64,
    /// Of which not trainable.
    pub(super) non_trainable: u64,
}

/// One tensor to be: its name, shape, and whether it is trainable.
pub(super) type Tensor = (&'static str, Vec<u64>, bool);

/// A trainable tensor.
pub(super) fn trainable(name: &'static str, shape: Vec<u64>) -> Tensor {
    (name, shape, true)
}

/// Counts `tensors`: `None` when the layer has more than `MAX_PARAMS` values
/// (or their count would overflow).
pub(super) fn count(tensors: Vec<Tensor>) -> Option<Params> {
    let mut count = 0u64;
    let mut non_trainable = 0u64;
    for (_, shape, is_trainable) in &tensors {
        let n = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        count = count.checked_add(n)?;
        if !is_trainable {
            non_trainable += n;
        }
    }
    if count > MAX_PARAMS {
        return None;
    }
    // Every dimension is at most the count (no dimension is 0), <= 2^31: fits a usize.
    let tensors = tensors
        .into_iter()
        .map(|(name, shape, trainable)| ir::ParamTensor {
            name,
            shape: shape.into_iter().map(|d| d as usize).collect(),
            trainable,
        })
        .collect();
    Some(Params {
        tensors,
        count,
        non_trainable,
    })
}

impl Checker {
    /// Reports a layer with more than `MAX_PARAMS` parameters: `what` names
    /// it ("conv", "dense layer"), `label` shows its largest tensor, `fix` is
    /// the end of the help line.
    pub(super) fn too_many_params(
        &mut self,
        span: Span,
        what: &str,
        label: String,
        fix: &str,
        note: String,
    ) {
        self.push(
            Diagnostic::new(
                Code::TooLarge,
                format!("too large: this {what} has more than {MAX_PARAMS} parameters"),
                span,
                label,
            )
            .with_note(note)
            .with_help(format!(
                "a layer may have at most {MAX_PARAMS} (2^31) parameters: {fix}"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_trainable_and_not() {
        let p = count(vec![
            trainable("gamma", vec![4]),
            ("moving_mean", vec![4], false),
        ])
        .unwrap();
        assert_eq!((p.count, p.non_trainable, p.tensors.len()), (8, 4, 2));
        assert!(count(vec![trainable("kernel", vec![1 << 20, 1 << 20])]).is_none());
        assert!(count(vec![trainable("kernel", vec![u64::MAX, 2])]).is_none());
    }
}
