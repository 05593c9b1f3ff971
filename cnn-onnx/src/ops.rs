//! Layer to ONNX operators: one function per kind of step, each reading its
//! input in the form it needs, writing its weights in ONNX's layouts, and
//! recording its output value. Opset 17 (`Gelu` came in opset 20, so gelu
//! is spelled out with `Erf`).

use cnn_plan::{
    Activation, BatchNormSpec, Conv2dSpec, GlobalPoolSpec, Interpolation, JoinKind, JoinSpec,
    LayerSpec, Pool2dSpec, PoolKind, Step, UpsampleSpec, ZeroPadSpec,
};

use crate::builder::{float, int, ints, permute, string, Builder};
use crate::graph::{At, Form, Lowering, Value};
use crate::ExportError;

/// Keras's SELU constants (ONNX's defaults differ in the last digits).
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

/// The trailing padding of one axis for ONNX's explicit `pads`: the plan
/// keeps only the leading padding (`begin`), the trailing one is whatever
/// makes the windows cover `out` outputs. Keras's `same` puts the odd cell
/// at the end, which this gives back; `valid` may leave input cells unread
/// at the end (no padding). Checked against ONNX's output size
/// `floor((n + begin + end - span) / s) + 1`, and that no window lies in the
/// padding alone (Keras never pads that much; a pool would have no value).
pub(crate) fn end_pad(
    n: usize,
    out: usize,
    k: usize,
    s: usize,
    d: usize,
    begin: usize,
) -> Option<usize> {
    let span = (k.checked_sub(1)?) * d + 1;
    let covered = (out.checked_sub(1)?) * s + span;
    let end = covered.saturating_sub(n + begin);
    let padded = n + begin + end;
    let fits = begin < span && end < span;
    (s > 0 && fits && padded >= span && (padded - span) / s + 1 == out).then_some(end)
}

/// `(end, output_padding)` of one axis of a `ConvTranspose` from `n` to `out`
/// cells with kernel `k` and stride `s`, cropping `begin` cells at the start
/// (Keras's `same` crop): ONNX's output is
/// `s * (n - 1) + k + output_padding - begin - end`. When the full output is shorter than wanted (a kernel
/// smaller than the stride), the missing cells are `output_padding` at the
/// end, which no input reaches (they hold the bias alone, as in Keras).
pub(crate) fn deconv_axis(
    n: usize,
    out: usize,
    k: usize,
    s: usize,
    begin: usize,
) -> Option<(usize, usize)> {
    let full = s * n.checked_sub(1)? + k;
    if full >= out + begin {
        Some((full - out - begin, 0))
    } else {
        let extra = out + begin - full;
        // ONNX requires output_padding < stride.
        (extra < s).then_some((0, extra))
    }
}

/// A readable name stem for a step's nodes: its layer's tensor path
/// (`layer3.0.1`) when it has tensors, else its position (`step7`).
fn stem<W>(l: &Lowering<'_, W>, pos: usize, s: &Step) -> String {
    l.plan
        .step_tensors(s)
        .first()
        .and_then(|t| t.name.rsplit_once('.').map(|(p, _)| p.to_string()))
        .unwrap_or_else(|| format!("step{pos}"))
}

/// Lowers step `pos` of the plan.
pub(crate) fn lower<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    pos: usize,
    s: &Step,
) -> Result<(), ExportError> {
    let at = At::new(pos, s);
    let stem = stem(l, pos, s);
    let out = match s.layer {
        LayerSpec::Conv2d {
            spec,
            act,
            bias,
            groups,
        } => conv(l, s, &stem, spec, act, bias, groups, at)?,
        LayerSpec::DwConv2d { spec, act, bias } => dwconv(l, s, &stem, spec, act, bias, at)?,
        LayerSpec::Deconv2d { spec, act, bias } => deconv(l, s, &stem, spec, act, bias, at)?,
        LayerSpec::SepConv2d { .. } => {
            return Err(at.inconsistent("a sepconv step (plans split it in two)"))
        }
        LayerSpec::Pool2d(p) => pool(l, s, &stem, p, at)?,
        LayerSpec::Flatten { len } => {
            // Shares its input's buffer: the reader that needs a vector
            // converts (see `Lowering::flat`). Only the length is checked.
            let v = l.value(s.input, at)?;
            if v.form.len() != len || s.output != s.input {
                return Err(at.inconsistent(format!("flatten of {len} from {:?}", v.form)));
            }
            return Ok(());
        }
        LayerSpec::Dense { spec, act, bias } => {
            let x = l.flat(s.input, spec.inputs, at)?;
            let ts = l.plan.step_tensors(s).to_vec();
            check_tensors(&ts, bias, at)?;
            let k = l.weight(&ts[0])?;
            let k = l.b.init_f32(&ts[0].name, &[spec.inputs, spec.units], &k);
            let y = if bias {
                let b = l.weight(&ts[1])?;
                let b = l.b.init_f32(&ts[1].name, &[spec.units], &b);
                l.b.node("Gemm", &format!("{stem}.dense"), &[&x, &k, &b], vec![])
            } else {
                l.b.node("MatMul", &format!("{stem}.dense"), &[&x, &k], vec![])
            };
            let y = activate(&mut l.b, y, act, &stem);
            Value {
                name: y,
                form: Form::Flat(spec.units),
            }
        }
        LayerSpec::Activation { act, len, channels } => {
            activation(l, s, &stem, act, len, channels, at)?
        }
        LayerSpec::BatchNorm(bn) => batchnorm(l, s, &stem, bn, at)?,
        // Inference is the identity: the output is the input's value itself.
        LayerSpec::Dropout { len, .. } => same_len(l, s, len, at)?,
        LayerSpec::Augment(a) => same_len(l, s, a.h * a.w * a.c, at)?,
        LayerSpec::GlobalPool(g) => global_pool(l, s, &stem, g, at)?,
        LayerSpec::ZeroPad(z) => zeropad(l, s, &stem, z, at)?,
        LayerSpec::Upsample(u) => upsample(l, s, &stem, u, at)?,
        LayerSpec::Join(j) => join(l, s, &stem, j, at)?,
    };
    l.set(s.output, out, at)
}

/// Checks a kernel layer's tensors: the kernel, then the bias when it has one.
fn check_tensors(ts: &[cnn_plan::Tensor], bias: bool, at: At) -> Result<(), ExportError> {
    let want = 1 + usize::from(bias);
    if ts.len() != want {
        return Err(at.inconsistent(format!("{} tensors, expects {want}", ts.len())));
    }
    Ok(())
}

/// ONNX's `pads` (`[top, left, bottom, right]`) for a window of `k`, stride
/// `s`, dilation `d` from `n` to `out` cells per axis, with the plan's
/// leading padding.
#[allow(clippy::too_many_arguments)]
fn pads(
    [n_h, n_w]: [usize; 2],
    [out_h, out_w]: [usize; 2],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [dh, dw]: [usize; 2],
    [top, left]: [usize; 2],
    at: At,
) -> Result<Vec<usize>, ExportError> {
    let bottom = end_pad(n_h, out_h, kh, sh, dh, top);
    let right = end_pad(n_w, out_w, kw, sw, dw, left);
    match (bottom, right) {
        (Some(b), Some(r)) => Ok(vec![top, left, b, r]),
        _ => Err(at.inconsistent(format!(
            "a {kh}x{kw} window (stride {sh}x{sw}, dilation {dh}x{dw}, padding {top}x{left}) \
             cannot take {n_h}x{n_w} to {out_h}x{out_w}"
        ))),
    }
}

fn conv_pads(c: &Conv2dSpec, at: At) -> Result<Vec<usize>, ExportError> {
    pads(
        [c.in_h, c.in_w],
        [c.out_h, c.out_w],
        [c.kh, c.kw],
        [c.sh, c.sw],
        [c.dh, c.dw],
        [c.pad_top, c.pad_left],
        at,
    )
}

/// `Conv` with the kernel and optional bias of step `s` (the kernel already
/// in ONNX's `(F, CIN / groups, KH, KW)`).
#[allow(clippy::too_many_arguments)]
fn conv_node<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    c: &Conv2dSpec,
    kernel: (Vec<usize>, Vec<f32>),
    bias: bool,
    groups: usize,
    at: At,
) -> Result<String, ExportError> {
    let x = l.image(s.input, [c.in_h, c.in_w, c.in_c], at)?;
    let ts = l.plan.step_tensors(s).to_vec();
    let w = l.b.init_f32(&ts[0].name, &kernel.0, &kernel.1);
    let mut inputs = vec![x, w];
    if bias {
        let b = l.weight(&ts[1])?;
        inputs.push(l.b.init_f32(&ts[1].name, &[c.out_c], &b));
    }
    let attrs = vec![
        ints("kernel_shape", &[c.kh, c.kw]),
        ints("strides", &[c.sh, c.sw]),
        ints("dilations", &[c.dh, c.dw]),
        ints("pads", &conv_pads(c, at)?),
        int("group", groups as i64),
    ];
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(l.b.node("Conv", &format!("{stem}.conv"), &inputs, attrs))
}

#[allow(clippy::too_many_arguments)]
fn conv<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    c: Conv2dSpec,
    act: Activation,
    bias: bool,
    groups: usize,
    at: At,
) -> Result<Value, ExportError> {
    let ts = l.plan.step_tensors(s).to_vec();
    check_tensors(&ts, bias, at)?;
    let k = l.weight(&ts[0])?;
    // Keras (KH, KW, CIN / groups, F) to ONNX (F, CIN / groups, KH, KW).
    let kernel = permute(&k, &ts[0].shape, &[3, 2, 0, 1]);
    let y = conv_node(l, s, stem, &c, kernel, bias, groups, at)?;
    Ok(Value {
        name: activate(&mut l.b, y, act, stem),
        form: Form::Image {
            h: c.out_h,
            w: c.out_w,
            c: c.out_c,
        },
    })
}

/// A depthwise conv is a grouped conv with one group per input channel:
/// output channel `c * M + m` reads input channel `c`, which is Keras's
/// order, so the kernel `(KH, KW, C, M)` read as `(KH, KW, C * M)` only needs
/// its spatial axes moved last: `(C * M, 1, KH, KW)`.
fn dwconv<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    c: Conv2dSpec,
    act: Activation,
    bias: bool,
    at: At,
) -> Result<Value, ExportError> {
    let ts = l.plan.step_tensors(s).to_vec();
    check_tensors(&ts, bias, at)?;
    let k = l.weight(&ts[0])?;
    let (_, data) = permute(&k, &[c.kh, c.kw, c.out_c], &[2, 0, 1]);
    let kernel = (vec![c.out_c, 1, c.kh, c.kw], data);
    let y = conv_node(l, s, stem, &c, kernel, bias, c.in_c, at)?;
    Ok(Value {
        name: activate(&mut l.b, y, act, stem),
        form: Form::Image {
            h: c.out_h,
            w: c.out_w,
            c: c.out_c,
        },
    })
}

/// The transposed conv of the conv `t` (whose input is this layer's output):
/// `ConvTranspose` from `t`'s output dims to its input dims, the kernel
/// `(KH, KW, F, C)` as ONNX's `(C, F, KH, KW)`, cropping `t`'s padding at the
/// start and what is left over at the end.
fn deconv<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    t: Conv2dSpec,
    act: Activation,
    bias: bool,
    at: At,
) -> Result<Value, ExportError> {
    let ts = l.plan.step_tensors(s).to_vec();
    check_tensors(&ts, bias, at)?;
    if (t.dh, t.dw) != (1, 1) {
        return Err(at.unsupported("a dilated transposed conv"));
    }
    let x = l.image(s.input, [t.out_h, t.out_w, t.out_c], at)?;
    let k = l.weight(&ts[0])?;
    let (shape, data) = permute(&k, &ts[0].shape, &[3, 2, 0, 1]);
    let w = l.b.init_f32(&ts[0].name, &shape, &data);
    let mut inputs = vec![x, w];
    if bias {
        let b = l.weight(&ts[1])?;
        inputs.push(l.b.init_f32(&ts[1].name, &[t.in_c], &b));
    }
    let rows = deconv_axis(t.out_h, t.in_h, t.kh, t.sh, t.pad_top);
    let cols = deconv_axis(t.out_w, t.in_w, t.kw, t.sw, t.pad_left);
    let (Some((bottom, op_h)), Some((right, op_w))) = (rows, cols) else {
        return Err(at.unsupported(format!(
            "a {}x{} kernel with stride {}x{} from {}x{} to {}x{}",
            t.kh, t.kw, t.sh, t.sw, t.out_h, t.out_w, t.in_h, t.in_w
        )));
    };
    let mut attrs = vec![
        ints("kernel_shape", &[t.kh, t.kw]),
        ints("strides", &[t.sh, t.sw]),
        ints("pads", &[t.pad_top, t.pad_left, bottom, right]),
    ];
    if (op_h, op_w) != (0, 0) {
        attrs.push(ints("output_padding", &[op_h, op_w]));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y =
        l.b.node("ConvTranspose", &format!("{stem}.deconv"), &inputs, attrs);
    Ok(Value {
        name: activate(&mut l.b, y, act, stem),
        form: Form::Image {
            h: t.in_h,
            w: t.in_w,
            c: t.in_c,
        },
    })
}

/// Max and average pools as ONNX's (padding cells are ignored by the max
/// and left out of the average's divisor, `count_include_pad = 0`, as in
/// Keras); a min-pool as `-maxpool(-x)`, which is how Keras's oracle
/// defines it too.
fn pool<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    p: Pool2dSpec,
    at: At,
) -> Result<Value, ExportError> {
    let x = l.image(s.input, [p.in_h, p.in_w, p.c], at)?;
    let pads = pads(
        [p.in_h, p.in_w],
        [p.out_h, p.out_w],
        [p.ph, p.pw],
        [p.sh, p.sw],
        [1, 1],
        [p.pad_top, p.pad_left],
        at,
    )?;
    let mut attrs = vec![
        ints("kernel_shape", &[p.ph, p.pw]),
        ints("strides", &[p.sh, p.sw]),
        ints("pads", &pads),
    ];
    let y = match p.kind {
        PoolKind::Max => {
            l.b.node("MaxPool", &format!("{stem}.maxpool"), &[&x], attrs)
        }
        PoolKind::Avg => {
            attrs.push(int("count_include_pad", 0));
            l.b.node("AveragePool", &format!("{stem}.avgpool"), &[&x], attrs)
        }
        PoolKind::Min => {
            let neg =
                l.b.node("Neg", &format!("{stem}.minpool.neg"), &[&x], vec![]);
            let max =
                l.b.node("MaxPool", &format!("{stem}.minpool.max"), &[&neg], attrs);
            l.b.node("Neg", &format!("{stem}.minpool"), &[&max], vec![])
        }
    };
    Ok(Value {
        name: y,
        form: Form::Image {
            h: p.out_h,
            w: p.out_w,
            c: p.c,
        },
    })
}

/// A standalone activation. Softmax normalises over the last axis of the
/// layer's shape, `channels` long: the channel axis of an image, or the
/// whole of a vector (a flattened image included).
fn activation<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    act: Activation,
    len: usize,
    channels: usize,
    at: At,
) -> Result<Value, ExportError> {
    let v = l.value(s.input, at)?;
    if v.form.len() != len {
        return Err(at.inconsistent(format!("an activation of {len} on {:?}", v.form)));
    }
    let v = match v.form {
        Form::Image { c, .. } if act == Activation::Softmax && c != channels => {
            if channels != len {
                return Err(at.inconsistent(format!(
                    "a softmax over {channels} channels of {:?}",
                    v.form
                )));
            }
            Value {
                name: l.flat(s.input, len, at)?,
                form: Form::Flat(len),
            }
        }
        Form::Flat(n) if act == Activation::Softmax && n != channels => {
            return Err(at.inconsistent(format!(
                "a softmax over {channels} channels of a vector of {n}"
            )));
        }
        _ => v,
    };
    Ok(Value {
        name: activate(&mut l.b, v.name, act, stem),
        form: v.form,
    })
}

/// The identity of inference (dropout, augmentation): the input's value.
fn same_len<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    len: usize,
    at: At,
) -> Result<Value, ExportError> {
    let v = l.value(s.input, at)?;
    if v.form.len() != len {
        return Err(at.inconsistent(format!("{len} values from {:?}", v.form)));
    }
    Ok(v)
}

/// Inference batchnorm: `BatchNormalization` with the moving statistics,
/// gamma 1 without `scale` and beta 0 without `center`, over axis 1 (the
/// channels of an image; a vector's values).
fn batchnorm<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    bn: BatchNormSpec,
    at: At,
) -> Result<Value, ExportError> {
    let v = l.value(s.input, at)?;
    let v = match v.form {
        Form::Image { c, .. } if c == bn.c && v.form.len() == bn.len => v,
        _ if bn.len == bn.c => Value {
            name: l.flat(s.input, bn.len, at)?,
            form: Form::Flat(bn.len),
        },
        f => {
            return Err(at.inconsistent(format!(
                "a batchnorm over {} channels of {} values on {f:?}",
                bn.c, bn.len
            )))
        }
    };
    let ts = l.plan.step_tensors(s).to_vec();
    let want = 2 + usize::from(bn.scale) + usize::from(bn.center);
    if ts.len() != want {
        return Err(at.inconsistent(format!("{} tensors, expects {want}", ts.len())));
    }
    let mut it = ts.iter();
    let mut param = |l: &mut Lowering<'_, W>, present: bool, name: &str, fill: f32| {
        if present {
            let t = it.next().expect("counted above");
            let data = l.weight(t)?;
            Ok::<_, ExportError>(l.b.init_f32(&t.name, &[bn.c], &data))
        } else {
            Ok(l.b.init_f32(&format!("{stem}.{name}"), &[bn.c], &vec![fill; bn.c]))
        }
    };
    let gamma = param(l, bn.scale, "gamma", 1.0)?;
    let beta = param(l, bn.center, "beta", 0.0)?;
    let mean = param(l, true, "moving_mean", 0.0)?;
    let var = param(l, true, "moving_variance", 1.0)?;
    let y = l.b.node(
        "BatchNormalization",
        &format!("{stem}.batchnorm"),
        &[&v.name, &gamma, &beta, &mean, &var],
        vec![float("epsilon", bn.epsilon.get())],
    );
    Ok(Value {
        name: y,
        form: v.form,
    })
}

/// A global pool: `GlobalAveragePool` / `GlobalMaxPool` to `[N, C, 1, 1]`,
/// then a vector of the channels.
fn global_pool<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    g: GlobalPoolSpec,
    at: At,
) -> Result<Value, ExportError> {
    let v = l.value(s.input, at)?;
    let x = match v.form {
        Form::Image { h, w, c } if h * w == g.hw && c == g.c => v.name,
        // One pixel (held as a vector after a join): pooling is the identity.
        Form::Flat(n) if g.hw == 1 && n == g.c => {
            return Ok(v);
        }
        f => {
            return Err(at.inconsistent(format!(
                "a global pool of {} pixels of {} channels on {f:?}",
                g.hw, g.c
            )))
        }
    };
    let op = match g.kind {
        PoolKind::Avg => "GlobalAveragePool",
        PoolKind::Max => "GlobalMaxPool",
        PoolKind::Min => return Err(at.unsupported("a global min-pool")),
    };
    let y = l.b.node(op, &format!("{stem}.globalpool"), &[&x], vec![]);
    let y = l.b.node(
        "Flatten",
        &format!("{stem}.globalpool.flat"),
        &[&y],
        vec![int("axis", 1)],
    );
    Ok(Value {
        name: y,
        form: Form::Flat(g.c),
    })
}

/// `Pad` with zeros around the spatial axes.
fn zeropad<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    z: ZeroPadSpec,
    at: At,
) -> Result<Value, ExportError> {
    let x = l.image(s.input, [z.in_h, z.in_w, z.c], at)?;
    let p = [0, 0, z.top, z.left, 0, 0, z.bottom, z.right].map(|v| v as i64);
    let pads = l.b.init_i64(&format!("{stem}.pads"), &[8], &p);
    let y = l.b.node(
        "Pad",
        &format!("{stem}.zeropad"),
        &[&x, &pads],
        vec![string("mode", "constant")],
    );
    let [h, w] = z.out();
    Ok(Value {
        name: y,
        form: Form::Image { h, w, c: z.c },
    })
}

/// `Resize` by whole factors: nearest as repeated rows and columns (source
/// cell `floor(i / s)`), bilinear with half-pixel centres as Keras.
fn upsample<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    u: UpsampleSpec,
    at: At,
) -> Result<Value, ExportError> {
    let x = l.image(s.input, [u.in_h, u.in_w, u.c], at)?;
    let scales = l.b.init_f32(
        &format!("{stem}.scales"),
        &[4],
        &[1.0, 1.0, u.sh as f32, u.sw as f32],
    );
    let attrs = match u.interpolation {
        Interpolation::Nearest => vec![
            string("mode", "nearest"),
            string("coordinate_transformation_mode", "asymmetric"),
            string("nearest_mode", "floor"),
        ],
        Interpolation::Bilinear => vec![
            string("mode", "linear"),
            string("coordinate_transformation_mode", "half_pixel"),
        ],
    };
    let y = l.b.node(
        "Resize",
        &format!("{stem}.upsample"),
        &[&x, "", &scales],
        attrs,
    );
    Ok(Value {
        name: y,
        form: Form::Image {
            h: u.in_h * u.sh,
            w: u.in_w * u.sw,
            c: u.c,
        },
    })
}

/// A join: `Add` (in the branches' order) or `Concat` on the channel axis.
/// Branches of one pixel join as vectors (a `1x1xC` image and a vector of
/// `C` hold the same values); larger ones as images, with the pixel grid
/// taken from a branch held as an image.
fn join<W: FnMut(&str) -> Option<Vec<f32>>>(
    l: &mut Lowering<'_, W>,
    s: &Step,
    stem: &str,
    j: JoinSpec,
    at: At,
) -> Result<Value, ExportError> {
    let buffers: Vec<usize> = l
        .plan
        .operands
        .get(s.operands.0..s.operands.1)
        .ok_or_else(|| at.inconsistent("operands out of range"))?
        .iter()
        .map(|o| o.buffer)
        .collect();
    if buffers.len() != j.inputs || buffers.is_empty() {
        return Err(at.inconsistent(format!(
            "a join of {} with {} operands",
            j.inputs,
            buffers.len()
        )));
    }
    let values = buffers
        .iter()
        .map(|&b| l.value(b, at))
        .collect::<Result<Vec<_>, _>>()?;
    let grid = values.iter().find_map(|v| match v.form {
        Form::Image { h, w, .. } if h * w == j.hw && j.hw > 1 => Some([h, w]),
        _ => None,
    });
    let mut names = Vec::with_capacity(values.len());
    let mut total = 0;
    for (&b, v) in buffers.iter().zip(&values) {
        let len = v.form.len();
        let c = if j.kind == JoinKind::Add {
            j.c
        } else {
            len / j.hw.max(1)
        };
        if len != j.hw * c {
            return Err(at.inconsistent(format!("a branch of {:?} in a join", v.form)));
        }
        total += c;
        names.push(match grid {
            Some([h, w]) => l.image(b, [h, w, c], at)?,
            None if j.hw == 1 => l.flat(b, c, at)?,
            None => return Err(at.inconsistent("a join of images with no branch as an image")),
        });
    }
    if j.kind == JoinKind::Concat && total != j.c {
        return Err(at.inconsistent(format!(
            "branches of {total} channels concatenated to {}",
            j.c
        )));
    }
    let y = match j.kind {
        JoinKind::Add => {
            let mut acc = names[0].clone();
            for n in &names[1..] {
                acc = l.b.node("Add", &format!("{stem}.add"), &[&acc, n], vec![]);
            }
            if names.len() == 1 {
                acc =
                    l.b.node("Identity", &format!("{stem}.add"), &[&acc], vec![]);
            }
            acc
        }
        JoinKind::Concat => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            l.b.node(
                "Concat",
                &format!("{stem}.concat"),
                &refs,
                vec![int("axis", 1)],
            )
        }
    };
    let form = match grid {
        Some([h, w]) => Form::Image { h, w, c: j.c },
        None => Form::Flat(j.c),
    };
    Ok(Value { name: y, form })
}

/// `act` applied to the value `x` (any shape; softmax over axis 1, the
/// channels), returning the result's name; the nodes are named `stem.*`.
pub(crate) fn activate(b: &mut Builder, x: String, act: Activation, stem: &str) -> String {
    let unary = |b: &mut Builder, op: &str, attrs| {
        b.node(op, &format!("{stem}.{}", op.to_lowercase()), &[&x], attrs)
    };
    match act {
        Activation::Linear => x,
        Activation::Relu => unary(b, "Relu", vec![]),
        Activation::Sigmoid => unary(b, "Sigmoid", vec![]),
        Activation::Tanh => unary(b, "Tanh", vec![]),
        Activation::Softmax => unary(b, "Softmax", vec![int("axis", 1)]),
        Activation::Relu6 => {
            let (lo, hi) = (b.scalar("const.0", 0.0), b.scalar("const.6", 6.0));
            b.node("Clip", &format!("{stem}.relu6"), &[&x, &lo, &hi], vec![])
        }
        Activation::LeakyRelu(slope) => unary(b, "LeakyRelu", vec![float("alpha", slope.get())]),
        Activation::Elu => unary(b, "Elu", vec![float("alpha", 1.0)]),
        Activation::Selu => unary(
            b,
            "Selu",
            vec![float("alpha", SELU_ALPHA), float("gamma", SELU_SCALE)],
        ),
        Activation::Gelu => {
            // 0.5 * x * (1 + erf(x / sqrt(2))), the exact form.
            let sqrt2 = b.scalar("const.sqrt2", std::f32::consts::SQRT_2);
            let (one, half) = (b.scalar("const.1", 1.0), b.scalar("const.0.5", 0.5));
            let t = b.node("Div", &format!("{stem}.gelu.div"), &[&x, &sqrt2], vec![]);
            let t = b.node("Erf", &format!("{stem}.gelu.erf"), &[&t], vec![]);
            let t = b.node("Add", &format!("{stem}.gelu.add"), &[&t, &one], vec![]);
            let t = b.node("Mul", &format!("{stem}.gelu.mul"), &[&x, &t], vec![]);
            b.node("Mul", &format!("{stem}.gelu"), &[&t, &half], vec![])
        }
        Activation::Silu => {
            // x / (1 + exp(-x)) rather than x * sigmoid(x): runtimes may
            // clamp `Sigmoid`'s input (tract's gives 7e-8 at -30, not 1e-13),
            // which the factor x magnifies past the oracle's 1e-5 for large
            // negative x. Exp overflows to infinity there, and x / inf = -0.
            let one = b.scalar("const.1", 1.0);
            let t = b.node("Neg", &format!("{stem}.silu.neg"), &[&x], vec![]);
            let t = b.node("Exp", &format!("{stem}.silu.exp"), &[&t], vec![]);
            let t = b.node("Add", &format!("{stem}.silu.add"), &[&t, &one], vec![]);
            b.node("Div", &format!("{stem}.silu"), &[&x, &t], vec![])
        }
        Activation::Softplus => {
            // relu(x) + softplus(-|x|): runtimes compute `Softplus` as
            // ln(exp(x) + 1), which overflows to infinity past x ~ 88 where
            // Keras's (stable) softplus gives x. Its argument here is never
            // positive.
            let relu = b.node("Relu", &format!("{stem}.softplus.relu"), &[&x], vec![]);
            let abs = b.node("Abs", &format!("{stem}.softplus.abs"), &[&x], vec![]);
            let neg = b.node("Neg", &format!("{stem}.softplus.neg"), &[&abs], vec![]);
            let tail = b.node(
                "Softplus",
                &format!("{stem}.softplus.tail"),
                &[&neg],
                vec![],
            );
            b.node("Add", &format!("{stem}.softplus"), &[&relu, &tail], vec![])
        }
        // relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1).
        Activation::HardSigmoid => unary(
            b,
            "HardSigmoid",
            vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)],
        ),
        Activation::HardSilu => unary(b, "HardSwish", vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnn_plan::{Padding, Window};

    #[test]
    fn same_padding_puts_the_odd_cell_at_the_end() {
        // TensorFlow's split: 3x3 stride 2 on 8 cells pads 0 before, 1 after.
        let c = Conv2dSpec::new(
            [8, 8, 1],
            1,
            Window::new([3, 3], Padding::Same).stride([2, 2]),
        );
        assert_eq!((c.out_h, c.pad_top), (4, 0));
        assert_eq!(end_pad(8, 4, 3, 2, 1, c.pad_top), Some(1));
        // 4x4 stride 1 on 5 cells: 3 cells of padding, 1 before, 2 after.
        let c = Conv2dSpec::new([5, 5, 1], 1, Window::new([4, 4], Padding::Same));
        assert_eq!((c.out_h, c.pad_top), (5, 1));
        assert_eq!(end_pad(5, 5, 4, 1, 1, 1), Some(2));
        // A dilated 3x3 (span 5) same: 2 and 2.
        assert_eq!(end_pad(9, 9, 3, 1, 2, 2), Some(2));
        // valid that leaves a cell unread: no padding, and ONNX's floor agrees.
        assert_eq!(end_pad(7, 3, 2, 2, 1, 0), Some(0));
        // A stride longer than the window (pool 2 stride 3 on 5): 2 outputs.
        assert_eq!(end_pad(5, 2, 2, 3, 1, 0), Some(0));
        // Sizes that cannot come out of this window are refused.
        assert_eq!(end_pad(8, 5, 3, 2, 1, 0), None);
    }

    #[test]
    fn deconv_pads_crop_as_keras() {
        // valid 3x3 stride 2 on 4: (4 - 1) * 2 + 3 = 9 cells, nothing cropped.
        let t = Conv2dSpec::transposed([4, 4, 2], 3, [3, 3], [2, 2], false);
        assert_eq!((t.in_h, t.pad_top), (9, 0));
        assert_eq!(deconv_axis(4, 9, 3, 2, 0), Some((0, 0)));
        // same 3x3 stride 2 on 4: 8 cells, the full 9 cropped by 0 before
        // (floor((3 - 2) / 2)) and 1 after.
        let t = Conv2dSpec::transposed([4, 4, 2], 3, [3, 3], [2, 2], true);
        assert_eq!((t.in_h, t.pad_top), (8, 0));
        assert_eq!(deconv_axis(4, 8, 3, 2, 0), Some((1, 0)));
        // same 4x4 stride 2 on 3: 6 of the full 8, 1 cropped each side.
        let t = Conv2dSpec::transposed([3, 3, 1], 1, [4, 4], [2, 2], true);
        assert_eq!((t.in_h, t.pad_top), (6, 1));
        assert_eq!(deconv_axis(3, 6, 4, 2, 1), Some((1, 0)));
        // valid 1x1 stride 2 on 3: Keras gives (3 - 1) * 2 + max(1, 2) = 6,
        // one cell more than the kernels reach: output padding.
        let t = Conv2dSpec::transposed([3, 3, 1], 1, [1, 1], [2, 2], false);
        assert_eq!(t.in_h, 6);
        assert_eq!(deconv_axis(3, 6, 1, 2, 0), Some((0, 1)));
        // same 1x1 stride 3 on 2: 6 cells, 2 of them out of reach; more
        // output padding than the stride allows is refused.
        assert_eq!(deconv_axis(2, 6, 1, 3, 0), Some((0, 2)));
        assert_eq!(deconv_axis(2, 7, 1, 3, 0), None);
    }
}
