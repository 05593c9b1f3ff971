//! Window arithmetic of the conv-like and pool layers, per axis: the effective
//! window (dilation spreads the cells apart), explicit `pad P` cells, the output
//! size, and how `same` splits its padding. Written once so that the shape rule
//! and the W003 warning agree. (`deconv` runs the window the other way: its
//! rule is with its shape.)

use crate::ir::{Pad2, Padding};

/// The geometry of a conv or pool window, with the defaults applied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// Cells of the window (`3x3`), before dilation.
    pub(super) size: [u64; 2],
    /// Step between two windows.
    pub(super) stride: [u64; 2],
    /// Step between two cells of one window.
    pub(super) dilation: [u64; 2],
    /// `valid` (no padding) or `same` (output `ceil(n / stride)`).
    pub(super) padding: Padding,
    /// `pad P`: cells added on both sides of each axis before a `valid`
    /// window (never with `same`: the resolver rejects that).
    pub(super) explicit: [u64; 2],
}

/// Where a window lands on a given input: output size and padding split.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placement {
    /// Output height and width.
    pub(super) out: [u64; 2],
    /// Zero padding on each side (all 0 for `valid`).
    pub(super) pad: Pad2,
}

impl Window {
    /// Input cells spanned by the window on each axis: `(k - 1) * d + 1`.
    pub(super) fn effective(&self) -> [u64; 2] {
        // k, d <= 2^20 (MAX_DIM), so this is at most 2^40: no overflow.
        [0, 1].map(|ax| (self.size[ax] - 1) * self.dilation[ax] + 1)
    }

    /// Whether the stride is longer than the effective window on some axis, so
    /// that no window ever reads the cells in between.
    pub(super) fn skips_input(&self) -> bool {
        let eff = self.effective();
        self.stride[0] > eff[0] || self.stride[1] > eff[1]
    }

    /// The input size after the explicit padding: `n + 2 * pad` per axis.
    pub(super) fn padded(&self, n: [u64; 2]) -> [u64; 2] {
        // n <= 2^31 (an output axis) and pad <= 2^20: no overflow.
        [0, 1].map(|ax| n[ax] + 2 * self.explicit[ax])
    }

    /// The output size and padding on an input of `n` (height, width), or `None`
    /// when a `valid` window does not fit the (explicitly padded) input on some axis.
    ///
    /// `same` gives `ceil(n / stride)` outputs and pads just enough for the last
    /// window to fit, the odd cell going after (bottom, right), as TensorFlow does.
    pub(super) fn place(&self, n: [u64; 2]) -> Option<Placement> {
        let eff = self.effective();
        let n = self.padded(n);
        let mut out = [0u64; 2];
        let mut before = [0u64; 2];
        let mut after = [0u64; 2];
        for ax in 0..2 {
            match self.padding {
                Padding::Valid => {
                    if n[ax] < eff[ax] {
                        return None;
                    }
                    out[ax] = (n[ax] - eff[ax]) / self.stride[ax] + 1;
                }
                Padding::Same => {
                    out[ax] = n[ax].div_ceil(self.stride[ax]);
                    let p = ((out[ax] - 1) * self.stride[ax] + eff[ax]).saturating_sub(n[ax]);
                    before[ax] = p / 2;
                    after[ax] = p - p / 2;
                }
            }
        }
        Some(Placement {
            out,
            pad: Pad2 {
                top: before[0] as usize,
                bottom: after[0] as usize,
                left: before[1] as usize,
                right: after[1] as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(size: u64, stride: u64, dilation: u64, padding: Padding) -> Window {
        Window {
            size: [size; 2],
            stride: [stride; 2],
            dilation: [dilation; 2],
            padding,
            explicit: [0, 0],
        }
    }

    #[test]
    fn valid_same_and_dilation() {
        let p = win(3, 1, 1, Padding::Valid).place([28, 28]).unwrap();
        assert_eq!(p.out, [26, 26]);
        assert!(win(5, 1, 1, Padding::Valid).place([4, 4]).is_none());
        // Dilation 2 spreads a 3x3 window over 5x5 cells.
        assert_eq!(win(3, 1, 2, Padding::Valid).effective(), [5, 5]);
        let p = win(2, 2, 1, Padding::Same).place([5, 5]).unwrap();
        assert_eq!(p.out, [3, 3]);
        assert_eq!((p.pad.top, p.pad.bottom), (0, 1));
        let p = win(3, 1, 1, Padding::Same).place([4, 4]).unwrap();
        assert_eq!((p.out, p.pad.left, p.pad.right), ([4, 4], 1, 1));
    }

    #[test]
    fn explicit_padding_then_valid() {
        // PyTorch's padding=1: 8 + 2 = 10 cells, 3x3 stride 2 -> 4 (same would
        // pad 0 before and 1 after instead).
        let mut w = win(3, 2, 1, Padding::Valid);
        w.explicit = [1, 1];
        let p = w.place([8, 8]).unwrap();
        assert_eq!((p.out, p.pad.top), ([4, 4], 0));
        // 1x1 padded by 1 fits a 3x3 kernel; 2x2 padded by 1 does not fit 5x5.
        assert_eq!(w.place([1, 1]).map(|p| p.out), Some([1, 1]));
        let mut w = win(5, 1, 1, Padding::Valid);
        w.explicit = [1, 1];
        assert!(w.place([2, 2]).is_none());
    }

    #[test]
    fn stride_longer_than_the_window_skips_input() {
        assert!(win(2, 3, 1, Padding::Valid).skips_input());
        assert!(!win(2, 2, 1, Padding::Valid).skips_input());
        // Dilation widens the window: stride 3 no longer skips.
        assert!(!win(2, 3, 2, Padding::Valid).skips_input());
    }
}
