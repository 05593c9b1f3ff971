//! ONNX's explicit window padding to the language's: `same`, `pad P`
//! (symmetric; `valid` is `pad 0`), or a `zeropad` before a `valid` window.
//!
//! Two paddings are equivalent when they give the same output size with the
//! same leading padding: the windows then sit at the same places, and cells
//! past the trailing padding a window needs are never read.

/// The language's padding of a window layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pad {
    /// Keras's `same`.
    Same,
    /// `pad PHxPW` (`[0, 0]` is `valid`).
    Sym([usize; 2]),
    /// `zeropad TxBxLxR` then a `valid` window.
    Explicit([usize; 4]),
}

#[allow(clippy::too_many_arguments)]
/// One axis's output size under ONNX's padding, or why it has no language form.
fn axis(
    n: usize,
    k: usize,
    s: usize,
    d: usize,
    b: usize,
    e: usize,
    ceil: bool,
    pool: bool,
) -> Result<usize, String> {
    let span = (k - 1) * d + 1;
    let total = n + b + e;
    if total < span {
        return Err(format!(
            "a window of {span} cells on {n} cells padded by {b} and {e}"
        ));
    }
    let out = (total - span) / s + 1;
    if ceil && (total - span).div_ceil(s) + 1 != out {
        return Err("attribute ceil_mode = 1 adds a partial window at the end, which the language's pools do not have".into());
    }
    // A pool window must hold a real cell.
    if pool && (b >= span || (out - 1) * s >= n + b) {
        return Err(format!(
            "pads ({b} before, {e} after) put a whole window in the padding"
        ));
    }
    Ok(out)
}

/// The language's padding for a window of `k` (stride `s`, dilation `d`)
/// over `n` with ONNX's `pads` (`[top, left, bottom, right]`), and the
/// output size. `explicit`: whether a `zeropad` may stand for padding the
/// language's window has no option for (convs, and average pools that count
/// the padding); else (pools) such padding is an error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve(
    n: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pads: [usize; 4],
    ceil: bool,
    explicit: bool,
) -> Result<(Pad, [usize; 2]), String> {
    let pool = !explicit;
    let mut out = [0; 2];
    for i in 0..2 {
        out[i] = axis(n[i], k[i], s[i], d[i], pads[i], pads[i + 2], ceil, pool)?;
    }
    let span = |i: usize| (k[i] - 1) * d[i] + 1;
    let sym = (0..2).all(|i| {
        let padded = n[i] + 2 * pads[i];
        padded >= span(i) && (padded - span(i)) / s[i] + 1 == out[i]
    });
    // valid, then same, then pad P: the plainest spelling that fits.
    if sym && pads[..2] == [0, 0] {
        return Ok((Pad::Sym([0, 0]), out));
    }
    let same = (0..2).all(|i| {
        let o = n[i].div_ceil(s[i]);
        let total = ((o - 1) * s[i] + span(i)).saturating_sub(n[i]);
        o == out[i] && pads[i] == total / 2
    });
    if same {
        return Ok((Pad::Same, out));
    }
    if sym {
        return Ok((Pad::Sym([pads[0], pads[1]]), out));
    }
    if !explicit {
        return Err(format!(
            "attribute pads = {pads:?} (top, left, bottom, right): neither same nor the same on both sides, and a pool cannot take a zeropad (its zeros would count)"
        ));
    }
    let [t, l, b, r] = minimal(n, k, s, d, pads, out);
    Ok((Pad::Explicit([t, b, l, r]), out))
}

/// `[top, left, bottom, right]`: the leading pads of `pads` and the
/// trailing padding the `out` windows read.
pub(crate) fn minimal(
    n: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pads: [usize; 4],
    out: [usize; 2],
) -> [usize; 4] {
    let end =
        |i: usize| ((out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1).saturating_sub(n[i] + pads[i]);
    [pads[0], pads[1], end(0), end(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paddings_map_to_the_languages() {
        // 3x3 stride 1 pads 1 all round on 5: same.
        assert_eq!(
            resolve([5, 5], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], false, true),
            Ok((Pad::Same, [5, 5]))
        );
        // The exporter's `pad 1` stride 2 on 8: [1, 1, 0, 0], 4 outputs; same would pad 0 before.
        assert_eq!(
            resolve([8, 8], [3, 3], [2, 2], [1, 1], [1, 1, 0, 0], false, true),
            Ok((Pad::Sym([1, 1]), [4, 4]))
        );
        // Keras same 3x3 stride 2 on 8 puts its one cell at the end.
        assert_eq!(
            resolve([8, 8], [3, 3], [2, 2], [1, 1], [0, 0, 1, 1], false, true),
            Ok((Pad::Same, [4, 4]))
        );
        // Valid.
        assert_eq!(
            resolve([7, 7], [2, 2], [2, 2], [1, 1], [0; 4], false, false),
            Ok((Pad::Sym([0, 0]), [3, 3]))
        );
        // Asymmetric: a zeropad for a conv, an error for a max pool.
        assert_eq!(
            resolve([6, 6], [3, 3], [1, 1], [1, 1], [2, 0, 0, 0], false, true),
            Ok((Pad::Explicit([2, 0, 0, 0]), [6, 4]))
        );
        assert!(resolve([6, 6], [3, 3], [1, 1], [1, 1], [2, 0, 0, 0], false, false).is_err());
        // ceil_mode that adds a window is refused, one that does not is fine.
        assert!(resolve([7, 7], [2, 2], [2, 2], [1, 1], [0; 4], true, false).is_err());
        assert_eq!(
            resolve([8, 8], [2, 2], [2, 2], [1, 1], [0; 4], true, false),
            Ok((Pad::Sym([0, 0]), [4, 4]))
        );
    }
}
