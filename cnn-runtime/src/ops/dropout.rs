//! Dropout: in training, each value is zeroed with probability `rate` and the
//! rest are scaled by `1 / (1 - rate)` (Keras's inverted dropout); inference is
//! the identity and never calls this module.
//!
//! The mask of value `i` is a pure function of `(seed, i)` (a SplitMix64 hash,
//! not a stream), so it does not depend on how a batch is split across threads
//! or parts: the same seed gives the same masks on any core count.

/// The multiplier of each value: `0` (dropped) or `1 / (1 - rate)` (kept), for
/// the values `first .. first + mask.len()` of the stream named by `seed`.
///
/// # Panics
/// When `rate` is not in `[0, 1)`.
pub fn dropout_mask(rate: f32, seed: u64, first: u64, mask: &mut [f32]) {
    mask.fill(1.0);
    scale_inplace(rate, seed, first, mask);
}

/// `y = x * mask` with the mask of [`dropout_mask`] for the same `rate`,
/// `seed` and `first`, without a mask buffer: the forward pass (`x` to `y`)
/// and, with the same arguments, the backward pass (`dy` to `dx`).
///
/// # Panics
/// When `rate` is not in `[0, 1)` or the lengths differ.
pub fn dropout_apply(rate: f32, seed: u64, first: u64, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "dropout: length mismatch");
    y.copy_from_slice(x);
    scale_inplace(rate, seed, first, y);
}

/// Multiplies each value by its mask entry.
fn scale_inplace(rate: f32, seed: u64, first: u64, v: &mut [f32]) {
    assert!(
        (0.0..1.0).contains(&rate),
        "dropout: rate {rate} not in [0, 1)"
    );
    let keep = 1.0 / (1.0 - rate);
    // Dropped when the hash's top 24 bits, as a fraction of 2^24, fall below
    // rate; 24 bits make the fraction exact in f32.
    let threshold = (f64::from(rate) * f64::from(1u32 << 24)).round() as u64;
    let base = mix(seed);
    for (i, m) in v.iter_mut().enumerate() {
        let u = mix(base ^ (first + i as u64)) >> 40;
        *m = if u < threshold { 0.0 } else { *m * keep };
    }
}

/// SplitMix64's finaliser: a bijective 64-bit hash with good avalanche (also
/// what the augmentation layers draw their transforms from).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over 10^5 values the kept fraction is within 1% of `1 - rate` and every
    /// kept value is scaled by `1 / (1 - rate)`.
    #[test]
    fn keeps_the_right_fraction_scaled() {
        for rate in [0.0f32, 0.1, 0.25, 0.5, 0.9] {
            let mut mask = vec![f32::NAN; 100_000];
            dropout_mask(rate, 7, 0, &mut mask);
            let kept = mask.iter().filter(|m| **m != 0.0).count() as f64 / 1e5;
            assert!(
                (kept - f64::from(1.0 - rate)).abs() < 0.01,
                "rate {rate}: kept {kept}"
            );
            let keep = 1.0 / (1.0 - rate);
            assert!(mask.iter().all(|m| *m == 0.0 || *m == keep));
            let x: Vec<f32> = (0..mask.len()).map(|i| i as f32).collect();
            let mut y = vec![0f32; x.len()];
            dropout_apply(rate, 7, 0, &x, &mut y);
            for i in 0..x.len() {
                assert_eq!(y[i], if mask[i] == 0.0 { 0.0 } else { x[i] * keep });
            }
        }
    }

    /// The same seed gives the same mask, whatever the split; another seed
    /// another mask.
    #[test]
    fn masks_are_reproducible_and_split_free() {
        let mut whole = vec![0f32; 1000];
        dropout_mask(0.5, 42, 0, &mut whole);
        let mut parts = vec![0f32; 1000];
        let (a, b) = parts.split_at_mut(379);
        dropout_mask(0.5, 42, 0, a);
        dropout_mask(0.5, 42, 379, b);
        assert_eq!(whole, parts);
        let mut other = vec![0f32; 1000];
        dropout_mask(0.5, 43, 0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    #[should_panic(expected = "not in [0, 1)")]
    fn rate_one_is_refused() {
        dropout_mask(1.0, 0, 0, &mut [0.0]);
    }
}
