//! Joins (Add, Sum, Concat), a dense layer's bias added after it, and the
//! layers that only move cells: Pad, Resize.

use super::*;

impl Mapper<'_> {
    pub(super) fn add(&mut self, n: &Node) -> Result<(), ImportError> {
        let data = self.data(n)?;
        let consts: Vec<&Tensor> = (0..n.inputs.len())
            .filter_map(|i| self.constant(n, i))
            .collect();
        if let ([(x, f)], [b]) = (data.as_slice(), consts.as_slice()) {
            return self.bias(n, *x, *f, b);
        }
        if let ([(x, f)], []) = (data.as_slice(), consts.as_slice()) {
            return self.alias(n, *x, *f);
        }
        if !consts.is_empty() || data.is_empty() {
            return Err(unsupported(
                n,
                "adds a constant (only a dense layer's bias, right after it, is a parameter)",
            ));
        }
        let f = join_form(n, &data)?;
        let inputs = data.iter().map(|d| d.0).collect();
        self.item(n, Kind::Join(JoinKind::Add), inputs, f)
    }

    /// `MatMul` then `Add` of a constant: the dense layer's bias.
    pub(super) fn bias(
        &mut self,
        n: &Node,
        x: usize,
        f: Form,
        b: &Tensor,
    ) -> Result<(), ImportError> {
        let src = n
            .inputs
            .iter()
            .find(|i| !self.g.consts.contains_key(*i))
            .cloned()
            .unwrap_or_default();
        let only_reader = self.readers.get(&src).copied() == Some(1);
        let item = self.producer.get(x).copied().flatten();
        let units = f.len();
        let fits = b
            .floats()
            .filter(|v| v.len() == units && v.iter().all(|x| x.is_finite()));
        if let (Some(k), true, Some(data)) = (item, only_reader, fits) {
            if let Kind::Layer(l) = &mut self.items[k].kind {
                let dense_without = l.words.starts_with("dense ") && l.nobias && l.act.is_none();
                if dense_without && layers::row_bias(&b.dims, units) {
                    l.nobias = false;
                    l.params.push(Param {
                        name: "bias",
                        shape: vec![units],
                        data,
                    });
                    return self.alias(n, x, f);
                }
            }
        }
        Err(unsupported(
            n,
            format!(
                "adds a constant of shape {:?} (only a bias right after a MatMul is a parameter)",
                b.dims
            ),
        ))
    }

    pub(super) fn concat(&mut self, n: &Node) -> Result<(), ImportError> {
        let data = self.data(n)?;
        if data.len() != n.inputs.len() || data.is_empty() {
            return Err(unsupported(n, "concatenates constants"));
        }
        let axis = int(n, "axis", 1)?;
        if let [(x, f)] = data.as_slice() {
            return self.alias(n, *x, *f);
        }
        let mut total = 0;
        for (_, f) in &data {
            total += match (*f, data[0].1) {
                (Form::Image { h, w, c }, Form::Image { h: h0, w: w0, .. }) if (h, w) == (h0, w0) && matches!(axis, 1 | -3) => c,
                (Form::Vector { n, chw: None }, Form::Vector { chw: None, .. }) if matches!(axis, 1 | -1) => n,
                (Form::Pooled(c), Form::Pooled(_)) if matches!(axis, 1 | -3) => c,
                (a, b) => return Err(unsupported(n, format!("attribute axis = {axis} on {a:?} and {b:?} (concat joins images on their channels, or vectors)"))),
            };
        }
        let f = match data[0].1 {
            Form::Image { h, w, .. } => Form::Image { h, w, c: total },
            Form::Pooled(_) => Form::Pooled(total),
            _ => Form::Vector {
                n: total,
                chw: None,
            },
        };
        let inputs = data.iter().map(|d| d.0).collect();
        self.item(n, Kind::Join(JoinKind::Concat), inputs, f)
    }

    pub(super) fn pad(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let [h, w, c] = self.image(n, f)?;
        let mode = string(n, "mode", "constant")?;
        if mode != "constant" {
            return Err(unsupported(
                n,
                format!("attribute mode = '{mode}' (zeropad pads with zeros)"),
            ));
        }
        if n.inputs.get(3).is_some_and(|a| !a.is_empty()) {
            return Err(unsupported(n, "input axes"));
        }
        let value = if self.g.opset < 11 {
            float(n, "value", 0.0)?
        } else {
            match n.inputs.get(2).filter(|s| !s.is_empty()) {
                None => 0.0,
                Some(_) => match self.constant(n, 2).and_then(|t| t.floats()) {
                    Some(v) if v.len() == 1 => v[0],
                    _ => {
                        return Err(unsupported(
                            n,
                            "input constant_value must be a constant scalar",
                        ))
                    }
                },
            }
        };
        if value != 0.0 {
            return Err(unsupported(
                n,
                format!("constant_value = {value} (zeropad pads with zeros)"),
            ));
        }
        let pads: Vec<i64> = if self.g.opset < 11 {
            match n.attr("pads") {
                Some(Attr::Ints(p)) => p.clone(),
                _ => return Err(unsupported(n, "attribute pads is missing")),
            }
        } else {
            self.required(n, 1, "pads")?
                .ints()
                .ok_or_else(|| unsupported(n, "pads is not int64"))?
                .to_vec()
        };
        let [0, 0, t, l, 0, 0, b, r] = pads[..] else {
            return Err(unsupported(
                n,
                format!("pads = {pads:?} (only the spatial axes of an NCHW image are padded)"),
            ));
        };
        let ok = |v: i64| (0..=1 << 16).contains(&v);
        if ![t, l, b, r].into_iter().all(ok) {
            return Err(unsupported(
                n,
                format!("pads = {pads:?} (negative pads crop)"),
            ));
        }
        let [t, l, b, r] = [t, l, b, r].map(|v| v as usize);
        let words = format!("zeropad {t}x{b}x{l}x{r}");
        self.layer(
            n,
            x,
            Layer::plain(words),
            Form::Image {
                h: h + t + b,
                w: w + l + r,
                c,
            },
        )
    }

    pub(super) fn resize(&mut self, n: &Node) -> Result<(), ImportError> {
        let (x, f) = self.one(n)?;
        let [h, w, c] = self.image(n, f)?;
        let (scales_at, sizes_at) = if n.op == "Upsample" || self.g.opset < 11 {
            (1, None)
        } else {
            (2, Some(3))
        };
        let scales = self
            .constant(n, scales_at)
            .and_then(|t| t.floats())
            .filter(|v| !v.is_empty());
        let factor =
            |v: f32| ((1.0..=1024.0).contains(&v) && v.fract() == 0.0).then_some(v as usize);
        let [sh, sw] = match (
            scales,
            sizes_at
                .and_then(|i| self.constant(n, i))
                .and_then(|t| t.ints()),
        ) {
            (Some(s), _) if s.len() == 4 && s[0] == 1.0 && s[1] == 1.0 => {
                match (factor(s[2]), factor(s[3])) {
                    (Some(a), Some(b)) => [a, b],
                    _ => {
                        return Err(unsupported(
                            n,
                            format!("scales = {s:?} (whole factors only)"),
                        ))
                    }
                }
            }
            (None, Some(&[_, c2, h2, w2]))
                if c2 == c as i64
                    && h2 > 0
                    && w2 > 0
                    && (h2 as usize).checked_rem(h) == Some(0)
                    && (w2 as usize).checked_rem(w) == Some(0) =>
            {
                [h2 as usize / h, w2 as usize / w]
            }
            _ => {
                return Err(unsupported(
                    n,
                    "scales or sizes must be constants giving whole factors on H and W",
                ))
            }
        };
        let mode = string(n, "mode", "nearest")?;
        let coords = string(
            n,
            "coordinate_transformation_mode",
            if n.op == "Upsample" {
                "asymmetric"
            } else {
                "half_pixel"
            },
        )?;
        let nearest = string(
            n,
            "nearest_mode",
            if n.op == "Upsample" {
                "floor"
            } else {
                "round_prefer_floor"
            },
        )?;
        let interp = match (mode, coords, nearest) {
            // Whole factors: floor(i / s) under asymmetric + floor, and the
            // rounding of half-pixel centres lands on the same cell.
            ("nearest", "asymmetric", "floor") => "nearest",
            ("nearest", "half_pixel" | "pytorch_half_pixel", "round_prefer_floor" | "round_prefer_ceil") => "nearest",
            ("linear" | "bilinear", "half_pixel" | "pytorch_half_pixel", _) if h * sh > 1 && w * sw > 1 => "bilinear",
            _ => {
                return Err(unsupported(n, format!(
                    "mode = '{mode}', coordinate_transformation_mode = '{coords}', nearest_mode = '{nearest}' (upsample repeats cells, nearest, or interpolates with half-pixel centres, bilinear)"
                )))
            }
        };
        let mut words = format!("upsample {}", pair([sh, sw]));
        if interp == "bilinear" {
            words += " bilinear";
        }
        self.layer(
            n,
            x,
            Layer::plain(words),
            Form::Image {
                h: h * sh,
                w: w * sw,
                c,
            },
        )
    }
}

/// The form of an add's output: all inputs alike.
pub(super) fn join_form(n: &Node, data: &[(usize, Form)]) -> Result<Form, ImportError> {
    let f = data[0].1;
    if let Some((_, g)) = data.iter().find(|(_, g)| *g != f) {
        return Err(unsupported(
            n,
            format!("adds {f:?} and {g:?} (the language adds equal shapes; no broadcasting)"),
        ));
    }
    if matches!(f, Form::Nhwc { .. }) {
        return Err(unsupported(n, "adds NHWC images (only NCHW is joined)"));
    }
    Ok(f)
}
