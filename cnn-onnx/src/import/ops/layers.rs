//! Layers with weights or windows: conv, dwconv, deconv, pools,
//! batchnorm, dense (Gemm, MatMul), and the padding of windows.

use super::*;

impl Mapper<'_> {
    pub(super) fn image(&self, n: &Node, f: Form) -> Result<[usize; 3], ImportError> {
        match f {
            Form::Image { h, w, c } => Ok([h, w, c]),
            _ => Err(unsupported(n, format!("needs an NCHW image, gets {f:?}"))),
        }
    }

    /// The explicit `[top, left, bottom, right]` padding of a conv or pool
    /// over `[h, w]`, from `pads` or `auto_pad`.
    pub(super) fn pads(
        &self,
        n: &Node,
        [h, w]: [usize; 2],
        k: &[usize],
        s: &[usize],
        d: &[usize],
    ) -> Result<[usize; 4], ImportError> {
        let auto = string(n, "auto_pad", "NOTSET")?;
        match auto {
            "NOTSET" => match n.attr("pads") {
                None => Ok([0; 4]),
                Some(Attr::Ints(p))
                    if p.len() == 4 && p.iter().all(|&v| (0..=1 << 16).contains(&v)) =>
                {
                    Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
                }
                Some(a) => Err(unsupported(n, format!("attribute pads = {a:?}"))),
            },
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |n: usize, k: usize, s: usize, d: usize| {
                    let out = n.div_ceil(s);
                    ((out - 1) * s + (k - 1) * d + 1).saturating_sub(n)
                };
                let (th, tw) = (total(h, k[0], s[0], d[0]), total(w, k[1], s[1], d[1]));
                Ok(if auto == "SAME_UPPER" {
                    [th / 2, tw / 2, th - th / 2, tw - tw / 2]
                } else {
                    [th - th / 2, tw - tw / 2, th / 2, tw / 2]
                })
            }
            a => Err(unsupported(n, format!("attribute auto_pad = '{a}'"))),
        }
    }

    pub(super) fn conv(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let [h, w, c] = self.image(n, f)?;
        let wt = self.required(n, 1, "W")?;
        let [fo, cg, kh, kw] = wt.dims[..] else {
            return Err(unsupported(
                n,
                format!("a kernel of shape {:?} (2-D convs only)", wt.dims),
            ));
        };
        let k =
            sizes(n, "kernel_shape", 2, None).or_else(|_| Ok::<_, ImportError>(vec![kh, kw]))?;
        let group = int(n, "group", 1)?;
        if k != [kh, kw]
            || fo == 0
            || kh == 0
            || kw == 0
            || group < 1
            || c as i64 % group != 0
            || fo as i64 % group != 0
            || usize::try_from(group).ok().and_then(|g| cg.checked_mul(g)) != Some(c)
        {
            return Err(unsupported(
                n,
                format!(
                    "a kernel of {:?} with group {group} on {c} channels",
                    wt.dims
                ),
            ));
        }
        let g = group as usize;
        let s = sizes(n, "strides", 2, Some(1))?;
        let d = sizes(n, "dilations", 2, Some(1))?;
        let pads = self.pads(n, [h, w], &k, &s, &d)?;
        let (pad, [oh, ow]) = window::resolve(
            [h, w],
            [kh, kw],
            [s[0], s[1]],
            [d[0], d[1]],
            pads,
            false,
            true,
        )
        .map_err(|e| unsupported(n, e))?;
        let kernel = self.floats(n, 1, "W", &wt.dims)?;
        let bias = match n.inputs.get(2).filter(|b| !b.is_empty()) {
            Some(_) => Some(self.floats(n, 2, "B", &[fo])?),
            None => None,
        };
        let mut opts = String::new();
        if s != [1, 1] {
            opts += &format!(" stride {}", pair([s[0], s[1]]));
        }
        if d != [1, 1] {
            opts += &format!(" dilation {}", pair([d[0], d[1]]));
        }
        let (x, opts) = self.padded(n, x, [h, w, c], pad, opts)?;
        let (words, params) = if g == c && c > 1 {
            let m = fo / c;
            // (C * M, 1, KH, KW) to (KH, KW, C * M), which is Keras's
            // (KH, KW, C, M) row-major: output channel c * M + m reads c.
            let (_, data) = permute(&kernel, &[fo, kh, kw], &[1, 2, 0]);
            let mult = if m > 1 {
                format!(" multiplier {m}")
            } else {
                String::new()
            };
            (
                format!("dwconv {kh}x{kw}{opts}{mult}"),
                vec![Param {
                    name: "depthwise_kernel",
                    shape: vec![kh, kw, c, m],
                    data,
                }],
            )
        } else {
            let (shape, data) = permute(&kernel, &wt.dims, &[2, 3, 1, 0]);
            let groups = if g > 1 {
                format!(" groups {g}")
            } else {
                String::new()
            };
            (
                format!("conv {fo} {kh}x{kw}{opts}{groups}"),
                vec![Param {
                    name: "kernel",
                    shape,
                    data,
                }],
            )
        };
        self.kernel_layer(
            n,
            x,
            words,
            params,
            bias,
            Form::Image {
                h: oh,
                w: ow,
                c: fo,
            },
        )
    }

    /// Emits the `zeropad` an asymmetric padding needs before a window
    /// layer, and returns the layer's input and its padding options.
    pub(super) fn padded(
        &mut self,
        n: &Node,
        x: usize,
        [h, w, c]: [usize; 3],
        pad: Pad,
        mut opts: String,
    ) -> Result<(usize, String), ImportError> {
        match pad {
            Pad::Same => opts += " same",
            Pad::Sym([0, 0]) => {}
            Pad::Sym(p) => opts += &format!(" pad {}", pair(p)),
            Pad::Explicit([t, b, l, r]) => {
                let v = self.producer.len();
                self.producer.push(Some(self.items.len()));
                self.items.push(Item {
                    node: n.name.clone(),
                    op: n.op.clone(),
                    kind: Kind::Layer(Layer::plain(format!("zeropad {t}x{b}x{l}x{r}"))),
                    inputs: vec![x],
                    output: v,
                });
                let _ = (h, w, c);
                return Ok((v, opts));
            }
        }
        Ok((x, opts))
    }

    /// A conv-like layer: its kernel, its bias or `nobias`, an activation
    /// slot.
    pub(super) fn kernel_layer(
        &mut self,
        n: &Node,
        x: usize,
        words: String,
        mut params: Vec<Param>,
        bias: Option<Vec<f32>>,
        form: Form,
    ) -> Result<(), ImportError> {
        let nobias = bias.is_none();
        if let Some(b) = bias {
            params.push(Param {
                name: "bias",
                shape: vec![b.len()],
                data: b,
            });
        }
        let layer = Layer {
            words,
            takes_act: true,
            nobias,
            act: None,
            is_act: false,
            params,
        };
        self.layer(n, x, layer, form)
    }

    pub(super) fn deconv(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let [h, w, c] = self.image(n, f)?;
        let wt = self.required(n, 1, "W")?;
        let [ci, fo, kh, kw] = wt.dims[..] else {
            return Err(unsupported(
                n,
                format!("a kernel of shape {:?} (2-D only)", wt.dims),
            ));
        };
        if ci != c || fo == 0 || kh == 0 || kw == 0 {
            return Err(unsupported(
                n,
                format!("a kernel of shape {:?} on {c} channels", wt.dims),
            ));
        }
        if int(n, "group", 1)? != 1 {
            return Err(unsupported(
                n,
                "attribute group (a grouped transposed conv has no language form)",
            ));
        }
        if sizes(n, "dilations", 2, Some(1))? != [1, 1] {
            return Err(unsupported(
                n,
                "attribute dilations (deconv has no dilation)",
            ));
        }
        if n.attr("output_shape").is_some() {
            return Err(unsupported(
                n,
                "attribute output_shape (give pads and output_padding)",
            ));
        }
        let k = sizes(n, "kernel_shape", 2, None).unwrap_or_else(|_| vec![kh, kw]);
        if k != [kh, kw] {
            return Err(unsupported(
                n,
                format!(
                    "attribute kernel_shape = {k:?} with a kernel of {:?}",
                    wt.dims
                ),
            ));
        }
        let s = sizes(n, "strides", 2, Some(1))?;
        let auto = string(n, "auto_pad", "NOTSET")?;
        let pads = match (auto, n.attr("pads")) {
            ("NOTSET" | "VALID", None) => [0; 4],
            ("NOTSET", Some(Attr::Ints(p)))
                if p.len() == 4 && p.iter().all(|&v| (0..=1 << 16).contains(&v)) =>
            {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            (a, p) => return Err(unsupported(n, format!("auto_pad = '{a}', pads = {p:?}"))),
        };
        let op = match n.attr("output_padding") {
            None => vec![0, 0],
            Some(Attr::Ints(p))
                if p.len() == 2 && p.iter().all(|&v| (0..=1 << 16).contains(&v)) =>
            {
                p.iter().map(|&v| v as usize).collect()
            }
            Some(a) => return Err(unsupported(n, format!("attribute output_padding = {a:?}"))),
        };
        // ONNX's output: s * (n - 1) + output_padding + k - begin - end.
        let axis = |n: usize, k: usize, s: usize, b: usize, e: usize, op: usize| {
            (s * (n - 1) + op + k).checked_sub(b + e).filter(|&o| o > 0)
        };
        let (Some(oh), Some(ow)) = (
            axis(h, kh, s[0], pads[0], pads[2], op[0]),
            axis(w, kw, s[1], pads[1], pads[3], op[1]),
        ) else {
            return Err(unsupported(
                n,
                format!("attribute pads = {pads:?} crops everything"),
            ));
        };
        let lang = |same: bool, n: usize, k: usize, s: usize| {
            if same {
                (n * s, k.saturating_sub(s) / 2)
            } else {
                ((n - 1) * s + k.max(s), 0)
            }
        };
        let mode = [true, false].into_iter().find(|&same| {
            lang(same, h, kh, s[0]) == (oh, pads[0]) && lang(same, w, kw, s[1]) == (ow, pads[1])
        });
        let Some(same) = mode else {
            return Err(unsupported(n, format!(
                "attributes pads = {pads:?}, output_padding = {op:?}: from {h}x{w} to {oh}x{ow} cropping {}x{} at the start, which neither deconv same (n*s, floor((k-s)/2) cropped) nor valid ((n-1)*s + max(k, s)) gives",
                pads[0], pads[1]
            )));
        };
        let kernel = self.floats(n, 1, "W", &wt.dims)?;
        let bias = match n.inputs.get(2).filter(|b| !b.is_empty()) {
            Some(_) => Some(self.floats(n, 2, "B", &[fo])?),
            None => None,
        };
        // (C, F, KH, KW) to Keras's (KH, KW, F, C).
        let (shape, data) = permute(&kernel, &wt.dims, &[2, 3, 1, 0]);
        let mut words = format!("deconv {fo} {kh}x{kw}");
        if s != [1, 1] {
            words += &format!(" stride {}", pair([s[0], s[1]]));
        }
        if same {
            words += " same";
        }
        let params = vec![Param {
            name: "kernel",
            shape,
            data,
        }];
        self.kernel_layer(
            n,
            x,
            words,
            params,
            bias,
            Form::Image {
                h: oh,
                w: ow,
                c: fo,
            },
        )
    }

    pub(super) fn pool(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let [h, w, c] = self.image(n, f)?;
        let k = sizes(n, "kernel_shape", 2, None)?;
        let s = sizes(n, "strides", 2, Some(1))?;
        if sizes(n, "dilations", 2, Some(1))? != [1, 1] {
            return Err(unsupported(
                n,
                "attribute dilations (pools have no dilation)",
            ));
        }
        let ceil = int(n, "ceil_mode", 0)? != 0;
        let avg = n.op == "AveragePool";
        let include = avg && int(n, "count_include_pad", 0)? != 0;
        let pads = self.pads(n, [h, w], &k, &s, &[1, 1])?;
        let (pad, [oh, ow]) = window::resolve(
            [h, w],
            [k[0], k[1]],
            [s[0], s[1]],
            [1, 1],
            pads,
            ceil,
            include,
        )
        .map_err(|e| unsupported(n, e))?;
        // count_include_pad: the padding's zeros count, so they are real
        // cells of a zeropad; a symmetric or same pad would leave them out.
        let pad = match pad {
            Pad::Sym([0, 0]) => pad,
            Pad::Sym(_) | Pad::Same if include => {
                let [t, l, b, r] =
                    window::minimal([h, w], [k[0], k[1]], [s[0], s[1]], [1, 1], pads, [oh, ow]);
                Pad::Explicit([t, b, l, r])
            }
            p => p,
        };
        let word = match n.op.as_str() {
            "MaxPool" => "maxpool",
            "AveragePool" => "avgpool",
            _ => "minpool",
        };
        let mut opts = String::new();
        if s != k {
            opts += &format!(" stride {}", pair([s[0], s[1]]));
        }
        let (x, opts) = self.padded(n, x, [h, w, c], pad, opts)?;
        let words = format!("{word} {}{opts}", pair([k[0], k[1]]));
        self.layer(n, x, Layer::plain(words), Form::Image { h: oh, w: ow, c })
    }

    /// A mean or max over H and W (`x.mean([2, 3])`): a global pool.
    pub(super) fn reduce(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let Form::Image { c, .. } = f else {
            return Err(unsupported(n, format!("needs an NCHW image, gets {f:?}")));
        };
        let axes: Vec<i64> = match (n.attr("axes"), self.constant(n, 1)) {
            (Some(Attr::Ints(a)), _) => a.clone(),
            (None, Some(t)) => t.ints().map(<[i64]>::to_vec).unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut spatial: Vec<i64> = axes
            .iter()
            .map(|&a| if a < 0 { a + 4 } else { a })
            .collect();
        spatial.sort_unstable();
        if spatial != [2, 3] {
            return Err(unsupported(
                n,
                format!(
                    "axes = {axes:?} (only a reduction over H and W, [2, 3], is a global pool)"
                ),
            ));
        }
        let word = if n.op == "ReduceMean" {
            "globalavgpool"
        } else {
            "globalmaxpool"
        };
        let form = if int(n, "keepdims", 1)? != 0 {
            Form::Pooled(c)
        } else {
            Form::Vector { n: c, chw: None }
        };
        self.layer(n, x, Layer::plain(word), form)
    }

    pub(super) fn batchnorm(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        if int(n, "training_mode", 0)? != 0 {
            return Err(unsupported(
                n,
                "attribute training_mode = 1 (an inference graph is imported)",
            ));
        }
        // ONNX normalises axis 1: the channels of NCHW, not of NHWC.
        let c = match f {
            Form::Image { c, .. } => c,
            Form::Pooled(c) | Form::Vector { n: c, .. } => c,
            Form::Nhwc { .. } => {
                return Err(unsupported(
                    n,
                    "normalises axis 1 of an NHWC image (its rows)",
                ))
            }
        };
        let names = ["gamma", "beta", "moving_mean", "moving_variance"];
        let mut params = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut data = self.floats(n, i + 1, name, &[c])?;
            if let Form::Vector { chw: Some(d), .. } = f {
                data = chw_rows(&data, d, 1);
            }
            params.push(Param {
                name,
                shape: vec![c],
                data,
            });
        }
        let eps = float(n, "epsilon", 1e-5)?;
        if !(eps > 0.0 && eps < 1.0) {
            return Err(unsupported(n, format!("attribute epsilon = {eps}")));
        }
        // The language's default epsilon (Keras's) goes unsaid.
        let mut words = "batchnorm".to_string();
        if eps != 0.001 {
            words += &format!(" epsilon {}", decimal(eps));
        }
        if let Some(Attr::Float(m)) = n.attr("momentum") {
            if (0.0..1.0).contains(m) && *m != 0.99 {
                words += &format!(" momentum {}", decimal(*m));
            }
        }
        // A constant scale of ones or shift of zeros is a batchnorm without
        // it (what the exporter writes for noscale / nocenter): inference is
        // the same, the parameter count is the language's.
        if params[1].data.iter().all(|&v| v == 0.0) {
            params.remove(1);
            words += " nocenter";
        }
        if params[0].data.iter().all(|&v| v == 1.0) {
            params.remove(0);
            words += " noscale";
        }
        let layer = Layer {
            params,
            ..Layer::plain(words)
        };
        self.layer(n, x, layer, f)
    }

    /// The vector a dense layer reads, and the row order its kernel needs.
    pub(super) fn dense_input(
        &self,
        n: &Node,
        f: Form,
    ) -> Result<(usize, Option<[usize; 3]>), ImportError> {
        match f {
            Form::Vector { n: len, chw } => Ok((len, chw)),
            Form::Pooled(c) => Ok((c, None)),
            _ => Err(unsupported(
                n,
                format!("needs a vector ([N, n]), gets {f:?}: flatten first"),
            )),
        }
    }

    pub(super) fn gemm(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let (len, chw) = self.dense_input(n, f)?;
        if int(n, "transA", 0)? != 0 {
            return Err(unsupported(n, "attribute transA = 1"));
        }
        let trans_b = int(n, "transB", 0)? != 0;
        let (alpha, beta) = (float(n, "alpha", 1.0)?, float(n, "beta", 1.0)?);
        let bt = self.required(n, 1, "B")?;
        let units = match (bt.dims.as_slice(), trans_b) {
            ([i, u], false) if *i == len => *u,
            ([u, i], true) if *i == len => *u,
            (d, _) => {
                return Err(unsupported(
                    n,
                    format!("B of shape {d:?} (transB = {trans_b}) on a vector of {len}"),
                ))
            }
        };
        let mut k = self.floats(n, 1, "B", &bt.dims)?;
        if trans_b {
            k = permute(&k, &[units, len], &[1, 0]).1;
        }
        k.iter_mut().for_each(|v| *v *= alpha);
        let bias = match self.constant(n, 2) {
            Some(t) => {
                let b = t
                    .floats()
                    // Broadcast along the rows of [N, units]: a row, or one value.
                    .filter(|_| row_bias(&t.dims, units))
                    .filter(|v| v.len() == units || v.len() == 1)
                    .ok_or_else(|| {
                        unsupported(
                            n,
                            format!("C of shape {:?} (a bias of {units} is expected)", t.dims),
                        )
                    })?;
                let b: Vec<f32> = if b.len() == units {
                    b
                } else {
                    vec![b[0]; units]
                };
                Some(b.into_iter().map(|v| v * beta).collect())
            }
            None if n.inputs.get(2).is_some_and(|s| !s.is_empty()) => {
                return Err(unsupported(n, "input C must be a constant"))
            }
            None => None,
        };
        self.dense(n, x, len, units, chw, k, bias)
    }

    pub(super) fn matmul(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let (len, chw) = self.dense_input(n, f)?;
        let bt = self.required(n, 1, "B")?;
        let [i, units] = bt.dims[..] else {
            return Err(unsupported(n, format!("B of shape {:?}", bt.dims)));
        };
        if i != len {
            return Err(unsupported(
                n,
                format!("B of shape {:?} on a vector of {len}", bt.dims),
            ));
        }
        let k = self.floats(n, 1, "B", &bt.dims)?;
        self.dense(n, x, len, units, chw, k, None)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dense(
        &mut self,
        n: &Node,
        x: usize,
        len: usize,
        units: usize,
        chw: Option<[usize; 3]>,
        mut k: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<(), ImportError> {
        if units == 0 {
            return Err(unsupported(n, "a dense layer of 0 units"));
        }
        if let Some(d) = chw {
            k = chw_rows(&k, d, units);
        }
        let params = vec![Param {
            name: "kernel",
            shape: vec![len, units],
            data: k,
        }];
        self.kernel_layer(
            n,
            x,
            format!("dense {units}"),
            params,
            bias,
            Form::Vector {
                n: units,
                chw: None,
            },
        )
    }
}

/// Rows of a `[h * w * c, cols]` matrix from C,H,W order to the language's
/// H,W,C order: row `(y * w + x) * c + k` is row `(k * h + y) * w + x`.
pub(crate) fn chw_rows(m: &[f32], [h, w, c]: [usize; 3], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(m.len());
    for y in 0..h {
        for x in 0..w {
            for k in 0..c {
                let r = (k * h + y) * w + x;
                out.extend_from_slice(&m[r * cols..(r + 1) * cols]);
            }
        }
    }
    out
}

/// Whether a tensor of `dims` broadcasts as one row of `[N, units]`:
/// `[units]`, `[1, units]`, or a single value.
pub(crate) fn row_bias(dims: &[usize], units: usize) -> bool {
    match dims {
        [] | [1] | [1, 1] => true,
        [u] | [1, u] => *u == units,
        _ => false,
    }
}
