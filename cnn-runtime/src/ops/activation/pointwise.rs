//! The activations of language 2, one value at a time, and their derivatives
//! with respect to the *pre-activation* `z` (unlike relu, sigmoid and tanh,
//! most of these cannot be differentiated from their output alone: gelu and
//! silu are not invertible).
//!
//! Each is Keras 3's definition, including the value chosen at a kink (the
//! oracle pins each: `relu6'(0) = relu6'(6) = 0`, `leaky_relu'(0) = 1`,
//! `selu'(0)` = the left branch, `hard_sigmoid'(±3) = 0`).

/// An activation of language 2 with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    /// `min(max(z, 0), 6)`.
    Relu6,
    /// `z >= 0 ? z : slope * z`.
    LeakyRelu(f32),
    /// `z > 0 ? z : e^z - 1`.
    Elu,
    /// `SCALE * (z > 0 ? z : ALPHA * (e^z - 1))`.
    Selu,
    /// The exact form `z (1 + erf(z / sqrt 2)) / 2`.
    Gelu,
    /// `z * sigmoid(z)` (also called swish).
    Silu,
    /// `log(1 + e^z)`, computed without overflow.
    Softplus,
    /// `relu6(z + 3) / 6`.
    HardSigmoid,
    /// `z * hard_sigmoid(z)` (also called hard swish).
    HardSilu,
}

/// Keras's SELU constants.
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn hard_sigmoid(z: f64) -> f64 {
    ((z + 3.0).clamp(0.0, 6.0)) / 6.0
}

/// `1/6` strictly inside (-3, 3), else 0 (the kinks take 0, as relu6's).
fn hard_sigmoid_slope(z: f64) -> f64 {
    if z > -3.0 && z < 3.0 {
        1.0 / 6.0
    } else {
        0.0
    }
}

impl Pointwise {
    /// The language-2 activation `act` names (`None` for linear, relu,
    /// sigmoid, tanh and softmax, which the activation module computes itself).
    pub fn of(act: crate::Activation) -> Option<Pointwise> {
        use crate::Activation as A;
        Some(match act {
            A::Relu6 => Pointwise::Relu6,
            A::LeakyRelu(s) => Pointwise::LeakyRelu(s.get()),
            A::Elu => Pointwise::Elu,
            A::Selu => Pointwise::Selu,
            A::Gelu => Pointwise::Gelu,
            A::Silu => Pointwise::Silu,
            A::Softplus => Pointwise::Softplus,
            A::HardSigmoid => Pointwise::HardSigmoid,
            A::HardSilu => Pointwise::HardSilu,
            A::Linear | A::Relu | A::Sigmoid | A::Tanh | A::Softmax => return None,
        })
    }

    /// The activation of `z`. Computed in f64 and rounded once, so each
    /// value is within an ulp of the definition; NaN stays NaN.
    pub fn value(self, z: f32) -> f32 {
        let x = f64::from(z);
        let y = match self {
            Pointwise::Relu6 => {
                if z.is_nan() {
                    x
                } else {
                    x.clamp(0.0, 6.0)
                }
            }
            Pointwise::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    f64::from(a) * x
                }
            }
            Pointwise::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Pointwise::Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            Pointwise::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Pointwise::Silu => x * sigmoid(x),
            Pointwise::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Pointwise::HardSigmoid => {
                if z.is_nan() {
                    x
                } else {
                    hard_sigmoid(x)
                }
            }
            Pointwise::HardSilu => x * hard_sigmoid(x),
        };
        y as f32
    }

    /// `d act / d z` at `z`.
    pub fn slope(self, z: f32) -> f32 {
        let x = f64::from(z);
        let d = match self {
            Pointwise::Relu6 => {
                if x > 0.0 && x < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Pointwise::LeakyRelu(a) => {
                if x >= 0.0 {
                    1.0
                } else {
                    f64::from(a)
                }
            }
            Pointwise::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    x.exp()
                }
            }
            Pointwise::Selu => SELU_SCALE * if x > 0.0 { 1.0 } else { SELU_ALPHA * x.exp() },
            Pointwise::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            }
            Pointwise::Silu => {
                let s = sigmoid(x);
                s + x * s * (1.0 - s)
            }
            Pointwise::Softplus => sigmoid(x),
            Pointwise::HardSigmoid => hard_sigmoid_slope(x),
            Pointwise::HardSilu => hard_sigmoid(x) + x * hard_sigmoid_slope(x),
        };
        d as f32
    }

    /// `y = act(z)` over a slice, in place.
    pub fn forward_inplace(self, y: &mut [f32]) {
        for v in y {
            *v = self.value(*v);
        }
    }

    /// `dz = dy * act'(z)`.
    ///
    /// # Panics
    /// When the lengths differ.
    pub fn backward(self, z: &[f32], dy: &[f32], dz: &mut [f32]) {
        assert!(
            z.len() == dy.len() && dy.len() == dz.len(),
            "activation: length mismatch"
        );
        for ((d, g), v) in dz.iter_mut().zip(dy).zip(z) {
            *d = g * self.slope(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pointwise::{self, *};

    /// Every activation with Keras's derivatives at -3, 0, 3 and 6 (the
    /// oracle's README2 table).
    const KERAS_SLOPES: [(Pointwise, [f32; 4]); 10] = [
        (Relu6, [0.0, 0.0, 1.0, 0.0]),
        (LeakyRelu(0.3), [0.3, 1.0, 1.0, 1.0]),
        (LeakyRelu(0.1), [0.1, 1.0, 1.0, 1.0]),
        (Elu, [0.049_787_04, 1.0, 1.0, 1.0]),
        (Selu, [0.087_534_6, 1.758_099_3, 1.050_701, 1.050_701]),
        (Gelu, [-0.011_945_65, 0.5, 1.011_945_6, 1.0]),
        (Silu, [-0.088_104_1, 0.5, 1.088_104_1, 1.012_326_2]),
        (Softplus, [0.047_425_87, 0.5, 0.952_574_1, 0.997_527_3]),
        (HardSigmoid, [0.0, 1.0 / 6.0, 0.0, 0.0]),
        (HardSilu, [0.0, 0.5, 1.0, 1.0]),
    ];

    #[test]
    fn derivatives_at_the_kinks_are_keras_s() {
        for (act, d) in KERAS_SLOPES {
            for (x, w) in [-3.0f32, 0.0, 3.0, 6.0].into_iter().zip(d) {
                let got = act.slope(x);
                assert!((got - w).abs() < 1e-5, "{act:?}'({x}) = {got}, Keras {w}");
            }
        }
    }

    /// Away from the kinks the slope is the central difference of the value.
    #[test]
    fn slopes_match_finite_differences() {
        for (act, _) in KERAS_SLOPES {
            for i in -60..=60 {
                let x = i as f32 * 0.137 + 0.011;
                let h = 1e-3f64;
                let v = |t: f64| f64::from(act.value(t as f32));
                let num = (v(f64::from(x) + h) - v(f64::from(x) - h)) / (2.0 * h);
                let got = f64::from(act.slope(x));
                assert!((num - got).abs() < 2e-3, "{act:?}'({x}): {got} vs {num}");
            }
        }
    }

    #[test]
    fn values_are_stable_and_keep_nan() {
        assert_eq!(Softplus.value(100.0), 100.0);
        assert!(Softplus.value(-100.0) > 0.0);
        assert!(Silu.value(-100.0).abs() < 1e-30);
        assert_eq!(Relu6.value(7.0), 6.0);
        assert_eq!(HardSigmoid.value(-4.0), 0.0);
        for (act, _) in KERAS_SLOPES {
            assert!(act.value(f32::NAN).is_nan(), "{act:?} hides a NaN");
        }
    }

    /// The vectorised relu6 of the activation module gives this module's
    /// values bit for bit (signed zeros, infinities, NaN included).
    #[test]
    fn fast_relu6_is_pointwise_relu6() {
        let mut xs = vec![
            -0.0f32,
            0.0,
            6.0,
            -6.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        xs.extend((-500..500).map(|i| i as f32 * 0.0173));
        xs.extend([5.999_999_5, 6.000_001, -1e-45, 1e-45]);
        let mut ys = xs.clone();
        super::super::activation_forward_inplace(crate::Activation::Relu6, 1, &mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(y.to_bits(), Relu6.value(*x).to_bits(), "relu6({x})");
            assert_eq!(super::super::relu6(*x).to_bits(), y.to_bits());
        }
    }
}
