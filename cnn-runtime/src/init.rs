//! Keras-default initialisation: Glorot-uniform kernels, zero biases, drawn from
//! one seeded RNG per model in layer order (kernel, then the bias, which draws
//! nothing), so a seed gives the same weights in generated and interpreted models.

use rand::Rng;
use rand::SeedableRng;

/// Fills `out` with `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
/// Conv kernels use `fan_in = KH*KW*CIN`, `fan_out = KH*KW*COUT` (as Keras).
pub fn glorot_uniform(rng: &mut impl Rng, fan_in: usize, fan_out: usize, out: &mut [f32]) {
    let denom = (fan_in + fan_out).max(1) as f64;
    let limit = (6.0 / denom).sqrt() as f32;
    for v in out.iter_mut() {
        *v = rng.gen_range(-limit..limit);
    }
}

/// The RNG of one model.
pub fn model_rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_bounds_and_determinism() {
        let mut a = vec![0f32; 1000];
        let mut b = vec![0f32; 1000];
        glorot_uniform(&mut model_rng(7), 30, 70, &mut a);
        glorot_uniform(&mut model_rng(7), 30, 70, &mut b);
        assert_eq!(a, b);
        let l = (6.0f32 / 100.0).sqrt();
        assert!(a.iter().all(|v| v.abs() <= l));
        let mean: f32 = a.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.03);
        let var: f32 = a.iter().map(|v| v * v).sum::<f32>() / 1000.0;
        assert!((var - l * l / 3.0).abs() < 0.2 * l * l / 3.0, "{var}");
    }
}
