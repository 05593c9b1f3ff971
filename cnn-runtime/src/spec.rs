//! Plain descriptions of layers, with every size resolved, as the kernels take them.
//!
//! Generated code writes these as `const`s; the interpreter builds a `Vec<LayerSpec>`
//! from a checked model. The runtime never computes a shape itself: it trusts the
//! compiler's, and only checks the sizes of the buffers it is handed.

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
