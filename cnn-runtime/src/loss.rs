//! Losses. The cross-entropy works on logits (log-softmax, no clipping), fused
//! with the model's final softmax.

use crate::{Error, Result};

/// Mean sparse categorical cross-entropy from logits, fused with softmax.
pub struct SoftmaxCrossEntropy;

fn check_labels(len: usize, classes: usize, labels: &[usize]) -> Result<usize> {
    if classes == 0 || !len.is_multiple_of(classes) {
        return Err(Error::Invalid(format!(
            "cross-entropy: {len} logits are not a multiple of {classes} classes"
        )));
    }
    let batch = len / classes;
    if labels.len() != batch {
        return Err(Error::Labels(format!(
            "{} labels for a batch of {batch}",
            labels.len()
        )));
    }
    if batch == 0 {
        return Err(Error::Invalid("cross-entropy of an empty batch".into()));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::Labels(format!(
            "label {l} out of range for {classes} classes"
        )));
    }
    Ok(batch)
}

/// `log(sum(exp(row)))` and the row's maximum, computed stably.
fn log_sum_exp(row: &[f32]) -> (f32, f32) {
    let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f32 = row.iter().map(|&v| (v - mx).exp()).sum();
    (mx + s.ln(), mx)
}

impl SoftmaxCrossEntropy {
    /// Mean loss over the batch from LOGITS (pre-softmax); writes
    /// `dlogits = (softmax - onehot) / B`.
    ///
    /// Errors: label count different from the batch, a label out of range
    /// (`Labels`), a non-finite loss (`NonFinite`).
    pub fn forward_backward(
        logits: &[f32],
        classes: usize,
        labels: &[usize],
        dlogits: &mut [f32],
    ) -> Result<f32> {
        let loss = Self::forward_backward_any(logits, classes, labels, dlogits, 0.0)?;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("cross-entropy loss is {loss}")));
        }
        Ok(loss)
    }

    /// [`SoftmaxCrossEntropy::forward_backward`] that returns a non-finite
    /// loss instead of an error (the executor then finds where it came from),
    /// against labels smoothed as Keras's `label_smoothing` does: the target
    /// is `1 - s + s / K` for the label and `s / K` for the other classes.
    pub(crate) fn forward_backward_any(
        logits: &[f32],
        classes: usize,
        labels: &[usize],
        dlogits: &mut [f32],
        smoothing: f32,
    ) -> Result<f32> {
        let batch = check_labels(logits.len(), classes, labels)?;
        if dlogits.len() != logits.len() {
            return Err(Error::Invalid(
                "cross-entropy: dlogits has the wrong length".into(),
            ));
        }
        let inv_b = 1.0 / batch as f32;
        let (off, on) = (smoothing / classes as f32, 1.0 - smoothing);
        let mut total = 0.0f64;
        for ((row, d), &l) in logits
            .chunks_exact(classes)
            .zip(dlogits.chunks_exact_mut(classes))
            .zip(labels)
        {
            let (lse, mx) = log_sum_exp(row);
            total += if smoothing == 0.0 {
                (lse - row[l]) as f64
            } else {
                // -sum_k y_k log p_k = lse - sum_k y_k z_k (the targets sum to 1).
                let sum: f64 = row.iter().map(|&z| z as f64).sum();
                lse as f64 - (on * row[l]) as f64 - off as f64 * sum
            };
            // softmax = exp(z - lse); computed from the max-shifted value for accuracy.
            let shift = lse - mx;
            for (dv, &z) in d.iter_mut().zip(row) {
                *dv = (((z - mx) - shift).exp() - off) * inv_b;
            }
            d[l] -= on * inv_b;
        }
        Ok((total / batch as f64) as f32)
    }

    /// Mean loss only, from logits.
    pub fn loss(logits: &[f32], classes: usize, labels: &[usize]) -> Result<f32> {
        let batch = check_labels(logits.len(), classes, labels)?;
        let mut total = 0.0f64;
        for (row, &l) in logits.chunks_exact(classes).zip(labels) {
            total += (log_sum_exp(row).0 - row[l]) as f64;
        }
        let loss = (total / batch as f64) as f32;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("cross-entropy loss is {loss}")));
        }
        Ok(loss)
    }
}

/// Mean squared error over all elements (Keras `mse` averaged over the batch).
pub struct MeanSquaredError;

impl MeanSquaredError {
    /// Returns `mean((pred - target)^2)` and writes `dpred = 2 (pred - target) / len`.
    pub fn forward_backward(pred: &[f32], target: &[f32], dpred: &mut [f32]) -> Result<f32> {
        if pred.len() != target.len() || pred.len() != dpred.len() {
            return Err(Error::Shape {
                expected: format!("{} values", pred.len()),
                got: format!("{} targets", target.len()),
            });
        }
        if pred.is_empty() {
            return Err(Error::Invalid("mean squared error of nothing".into()));
        }
        let scale = 2.0 / pred.len() as f32;
        let mut total = 0.0f64;
        for ((d, &p), &t) in dpred.iter_mut().zip(pred).zip(target) {
            let e = p - t;
            total += (e as f64) * (e as f64);
            *d = scale * e;
        }
        let loss = (total / pred.len() as f64) as f32;
        if !loss.is_finite() {
            return Err(Error::NonFinite(format!("mean squared error is {loss}")));
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ce_matches_definition_and_gradient() {
        let logits = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
        let labels = [1, 2];
        let mut d = [0f32; 6];
        let loss = SoftmaxCrossEntropy::forward_backward(&logits, 3, &labels, &mut d).unwrap();
        let mut want = 0.0f64;
        for (b, &l) in labels.iter().enumerate() {
            let row: Vec<f64> = logits[b * 3..b * 3 + 3].iter().map(|&v| v as f64).collect();
            let s: f64 = row.iter().map(|v| v.exp()).sum();
            want += -(row[l].exp() / s).ln();
            for j in 0..3 {
                let g = (row[j].exp() / s - if j == l { 1.0 } else { 0.0 }) / 2.0;
                assert!((d[b * 3 + j] as f64 - g).abs() < 1e-6);
            }
        }
        assert!((loss as f64 - want / 2.0).abs() < 1e-6);
        assert!((SoftmaxCrossEntropy::loss(&logits, 3, &labels).unwrap() - loss).abs() < 1e-7);
    }

    #[test]
    fn smoothed_labels_follow_keras_definition() {
        // Targets (1 - s) * onehot + s / K; loss -sum y log softmax;
        // gradient (softmax - y) / B.
        let logits = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
        let labels = [1, 2];
        let s = 0.1f32;
        let mut d = [0f32; 6];
        let l = SoftmaxCrossEntropy::forward_backward_any(&logits, 3, &labels, &mut d, s).unwrap();
        let mut want = 0.0f64;
        for (i, row) in logits.chunks(3).enumerate() {
            let z: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            for k in 0..3 {
                let y = s as f64 / 3.0 + if k == labels[i] { 1.0 - s as f64 } else { 0.0 };
                let p = (z[k] - lse).exp();
                want -= y * (z[k] - lse);
                assert!((d[i * 3 + k] as f64 - (p - y) / 2.0).abs() < 1e-6);
            }
        }
        assert!(
            (l as f64 - want / 2.0).abs() < 1e-6,
            "{l} vs {}",
            want / 2.0
        );
    }

    #[test]
    fn ce_is_stable_for_huge_logits() {
        let logits = [1000.0f32, -1000.0, 0.0];
        let mut d = [0f32; 3];
        let loss = SoftmaxCrossEntropy::forward_backward(&logits, 3, &[1], &mut d).unwrap();
        assert!((loss - 2000.0).abs() < 1e-2, "{loss}");
        assert!((d[0] - 1.0).abs() < 1e-6 && (d[1] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn ce_rejects_bad_labels_and_nan() {
        let mut d = [0f32; 4];
        assert!(matches!(
            SoftmaxCrossEntropy::forward_backward(&[0.0; 4], 2, &[0], &mut d),
            Err(Error::Labels(_))
        ));
        assert!(matches!(
            SoftmaxCrossEntropy::forward_backward(&[0.0; 4], 2, &[0, 2], &mut d),
            Err(Error::Labels(_))
        ));
        assert!(matches!(
            SoftmaxCrossEntropy::forward_backward(&[f32::NAN, 0.0, 0.0, 0.0], 2, &[0, 1], &mut d),
            Err(Error::NonFinite(_))
        ));
    }

    #[test]
    fn mse_value_and_gradient() {
        let mut d = [0f32; 2];
        let l = MeanSquaredError::forward_backward(&[1.0, 3.0], &[0.0, 1.0], &mut d).unwrap();
        assert_eq!(l, 2.5);
        assert_eq!(d, [1.0, 2.0]);
    }
}
