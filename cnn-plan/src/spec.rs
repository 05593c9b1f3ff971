//! Plain descriptions of layers, with every size resolved, as the kernels take them.
//!
//! The compiler lowers a checked model to these (one [`LayerSpec`] per layer) and
//! [`crate::Plan::sequential`] arranges them into a plan. The runtime never
//! computes a shape itself: it trusts these, and only checks buffer sizes.

/// Elementwise or per-pixel activation. `Softmax` is over the last axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    Avg,
    Min,
}

/// A 2-D convolution (cross-correlation), NHWC input, Keras kernel layout
/// `(KH, KW, CIN, COUT)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Zero cells before the first row / column (the after-padding is implied by
    /// the output size).
    pub pad_top: usize,
    pub pad_left: usize,
}

/// A 2-D pooling window. Padding cells are never read: ignored by max/min, left
/// out of the divisor by avg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    pub kind: PoolKind,
    pub in_h: usize,
    pub in_w: usize,
    pub c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub ph: usize,
    pub pw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// A fully connected layer, kernel `(inputs, units)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenseSpec {
    pub inputs: usize,
    pub units: usize,
}

/// One layer of an interpreted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerSpec {
    Conv2d {
        spec: Conv2dSpec,
        act: Activation,
    },
    Pool2d(Pool2dSpec),
    /// `len` = H*W*C; a no-op on NHWC row-major data.
    Flatten {
        len: usize,
    },
    Dense {
        spec: DenseSpec,
        act: Activation,
    },
    /// An activation as its own layer over `len` values per sample, whose last axis
    /// has `channels` entries (softmax normalises over it).
    Activation {
        act: Activation,
        len: usize,
        channels: usize,
    },
}

impl LayerSpec {
    /// The activation applied at the end of the layer (`Linear` for none).
    pub fn activation(&self) -> Activation {
        match *self {
            LayerSpec::Conv2d { act, .. }
            | LayerSpec::Dense { act, .. }
            | LayerSpec::Activation { act, .. } => act,
            LayerSpec::Pool2d(_) | LayerSpec::Flatten { .. } => Activation::Linear,
        }
    }

    /// Whether the layer has a kernel and a bias.
    pub fn has_params(&self) -> bool {
        matches!(self, LayerSpec::Conv2d { .. } | LayerSpec::Dense { .. })
    }

    /// Length of the output's last axis: what softmax normalises over.
    pub fn channels(&self) -> usize {
        match *self {
            LayerSpec::Conv2d { spec, .. } => spec.out_c,
            LayerSpec::Dense { spec, .. } => spec.units,
            LayerSpec::Activation { channels, .. } => channels,
            LayerSpec::Pool2d(p) => p.c,
            LayerSpec::Flatten { len } => len,
        }
    }

    /// Forward floating-point operations per sample, as the summary counts them
    /// (multiply-adds x 2 for conv and dense, one per window cell for pools, one
    /// per value for an activation): the work estimate the thread pool splits by.
    pub fn flops(&self) -> usize {
        match *self {
            LayerSpec::Conv2d { spec: s, .. } => {
                2 * s.out_h * s.out_w * s.out_c * s.kh * s.kw * s.in_c
            }
            LayerSpec::Dense { spec, .. } => 2 * spec.inputs * spec.units,
            LayerSpec::Pool2d(p) => p.out_h * p.out_w * p.c * p.ph * p.pw,
            LayerSpec::Activation { len, .. } => len,
            LayerSpec::Flatten { .. } => 0,
        }
    }
}
