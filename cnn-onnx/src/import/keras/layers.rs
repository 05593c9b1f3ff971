//! Keras layers to the language's statements: each layer's config read to
//! the statement's words, its shape followed (so that every weight array is
//! checked against the shape the layer needs, and a layer the language
//! cannot take is refused by name), and `Add`/`Concatenate` made joins.

use std::collections::HashMap;

use serde_json::Value;

use super::super::ops::{decimal, pair, Item, Items, JoinKind, Kind, Layer, Param};
use super::super::ImportError;
use super::config::{KLayer, ModelConfig};
use super::file::{store_names, Array, Saved};

/// Largest size of an axis, and of a value per sample.
const MAX_SIZE: usize = 1 << 31;

/// The shape of a value per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Image { h: usize, w: usize, c: usize },
    Vector(usize),
}

/// A layer's config, read with its name at hand for errors.
struct Cfg<'a> {
    l: &'a KLayer<'a>,
    /// The Keras major version that saved the file, if it says.
    keras_major: Option<u32>,
}

impl<'a> Cfg<'a> {
    fn err(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Layer {
            layer: self.l.name.clone(),
            class: self.l.class.clone(),
            reason: reason.into(),
        }
    }

    /// The value of `key`, `None` when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.l.config.get(key).filter(|v| !v.is_null())
    }

    fn usize(&self, key: &str, default: Option<usize>) -> Result<usize, ImportError> {
        match self.get(key) {
            None => default.ok_or_else(|| self.err(format!("no '{key}'"))),
            Some(v) => v
                .as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .filter(|&x| (1..=MAX_SIZE).contains(&x))
                .ok_or_else(|| self.err(format!("{key} = {v} (a positive size is needed)"))),
        }
    }

    /// A size pair (`3` or `[3, 3]`).
    fn pair(&self, key: &str, default: Option<[usize; 2]>) -> Result<[usize; 2], ImportError> {
        let Some(v) = self.get(key) else {
            return default.ok_or_else(|| self.err(format!("no '{key}'")));
        };
        let one = |v: &Value| {
            v.as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .filter(|&x| (1..=MAX_SIZE).contains(&x))
        };
        let got = match v {
            Value::Array(a) if a.len() == 2 => one(&a[0]).zip(one(&a[1])).map(|(a, b)| [a, b]),
            v => one(v).map(|x| [x, x]),
        };
        got.ok_or_else(|| self.err(format!("{key} = {v} (two positive sizes are needed)")))
    }

    fn str(&self, key: &str, default: &'a str) -> Result<&'a str, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.err(format!("{key} = {v} is not a string"))),
        }
    }

    fn f32(&self, key: &str, default: f32) -> Result<f32, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|x| x as f32)
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.err(format!("{key} = {v} is not a number"))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(format!("{key} = {v} is not true or false"))),
        }
    }

    /// `key` must be absent, null or one of `ok`.
    fn only(&self, key: &str, ok: &[&str]) -> Result<(), ImportError> {
        match self.get(key) {
            None => Ok(()),
            Some(Value::String(s)) if ok.contains(&s.as_str()) => Ok(()),
            Some(v) => Err(self.err(format!("{key} = {v}; the language has {}", ok.join(" or ")))),
        }
    }

    /// `padding`: whether it is `same`.
    fn same(&self) -> Result<bool, ImportError> {
        match self.str("padding", "valid")? {
            "same" => Ok(true),
            "valid" => Ok(false),
            p => Err(self.err(format!("padding = '{p}'; the language has same and valid"))),
        }
    }

    /// The layer's `activation`, as the language's word (`None`: linear).
    fn activation(&self) -> Result<Option<String>, ImportError> {
        let v = match self.get("activation") {
            None => return Ok(None),
            // Keras 3 may write a function as `{"config": "relu", ...}`.
            Some(Value::Object(m)) => m.get("config").unwrap_or(&Value::Null),
            Some(v) => v,
        };
        let name = v
            .as_str()
            .ok_or_else(|| self.err(format!("activation = {v}")))?;
        // Keras 2's hard sigmoid was `clip(0.2 x + 0.5, 0, 1)`; the
        // language's is Keras 3's, `relu6(x + 3) / 6`.
        if name == "hard_sigmoid" && self.keras_major.is_some_and(|v| v < 3) {
            return Err(self.err(
                "activation 'hard_sigmoid' of Keras 2 (0.2 x + 0.5, clipped) is not the language's (Keras 3's: relu6(x + 3) / 6)",
            ));
        }
        activation_word(name)
            .map(|w| (!w.is_empty()).then(|| w.to_string()))
            .ok_or_else(|| self.err(format!("activation '{name}' is not one of the language's")))
    }
}

/// The language's word for Keras's activation `name` (empty: linear).
fn activation_word(name: &str) -> Option<&'static str> {
    Some(match name {
        "linear" => "",
        "relu" => "relu",
        "sigmoid" => "sigmoid",
        "tanh" => "tanh",
        "softmax" => "softmax",
        "relu6" => "relu6",
        "elu" => "elu",
        "selu" => "selu",
        "gelu" => "gelu",
        "silu" | "swish" => "silu",
        "softplus" => "softplus",
        "hard_sigmoid" => "hard_sigmoid",
        "hard_silu" | "hard_swish" => "hard_silu",
        // Keras's function has slope 0.2 (its layer 0.3, the language's default).
        "leaky_relu" => "leaky_relu 0.2",
        _ => return None,
    })
}

/// One output size of a window: `same` keeps `ceil(n / s)`, `valid` needs
/// the (dilated) window inside.
fn out_size(n: usize, k: usize, s: usize, d: usize, same: bool) -> Option<usize> {
    if same {
        return Some(n.div_ceil(s));
    }
    let span = (k - 1).checked_mul(d)?.checked_add(1)?;
    (n >= span).then(|| (n - span) / s + 1)
}

/// The mapping under way.
struct Mapper<'a> {
    saved: &'a Saved,
    items: Vec<Item>,
    /// Layer name to (value, shape).
    values: HashMap<String, (usize, Shape)>,
    next: usize,
    /// Keras 3's store name of each layer (`.keras` weights).
    stores: HashMap<String, String>,
}

impl Mapper<'_> {
    /// The layer's arrays, checked against the shapes it needs (Keras's
    /// order); named as the language's tensors.
    fn params(
        &self,
        c: &Cfg<'_>,
        want: &[(&'static str, Vec<usize>)],
    ) -> Result<Vec<Param>, ImportError> {
        let store = self.stores.get(&c.l.name).map_or("", String::as_str);
        let arrays: Vec<Array> = self.saved.arrays(&c.l.name, store)?;
        let shapes =
            |a: &[Array]| -> Vec<Vec<usize>> { a.iter().map(|a| a.shape.clone()).collect() };
        let wanted: Vec<Vec<usize>> = want.iter().map(|w| w.1.clone()).collect();
        if shapes(&arrays) != wanted {
            return Err(c.err(format!(
                "the file holds arrays of shapes {:?}, the layer needs {wanted:?}",
                shapes(&arrays)
            )));
        }
        if let Some(a) = arrays
            .iter()
            .find(|a| a.data.iter().any(|x| !x.is_finite()))
        {
            return Err(c.err(format!(
                "an array of shape {:?} holds a value that is not finite",
                a.shape
            )));
        }
        Ok(want
            .iter()
            .zip(arrays)
            .map(|((name, shape), a)| Param {
                name,
                shape: shape.clone(),
                data: a.data,
            })
            .collect())
    }

    /// A conv, dwconv, sepconv, deconv or dense statement: `words`, the
    /// layer's activation and `bias` option, and its arrays (`want`, then a
    /// bias of `units` when it has one).
    fn kernel_layer(
        &self,
        c: &Cfg<'_>,
        words: String,
        mut want: Vec<(&'static str, Vec<usize>)>,
        units: usize,
    ) -> Result<Layer, ImportError> {
        let bias = c.bool("use_bias", true)?;
        if bias {
            want.push(("bias", vec![units]));
        }
        Ok(Layer {
            words,
            takes_act: true,
            nobias: !bias,
            act: c.activation()?,
            is_act: false,
            params: self.params(c, &want)?,
        })
    }

    /// Adds the item of layer `node` (class `op`).
    fn push(&mut self, node: &str, op: &str, kind: Kind, inputs: Vec<usize>, shape: Shape) {
        let output = self.next;
        self.next += 1;
        self.items.push(Item {
            node: node.to_string(),
            op: op.to_string(),
            kind,
            inputs,
            output,
        });
        self.values.insert(node.to_string(), (output, shape));
    }

    /// The value of a layer that computes nothing: its input's.
    fn alias(&mut self, l: &KLayer<'_>, x: (usize, Shape)) {
        self.values.insert(l.name.clone(), x);
    }

    fn layer(&mut self, l: &KLayer<'_>) -> Result<(), ImportError> {
        let c = Cfg {
            l,
            keras_major: self.saved.keras_major,
        };
        let ins: Vec<(usize, Shape)> = l
            .inputs
            .iter()
            .map(|i| {
                self.values
                    .get(i)
                    .copied()
                    .ok_or_else(|| c.err(format!("reads '{i}', which computes nothing yet")))
            })
            .collect::<Result<_, _>>()?;
        if matches!(l.class.as_str(), "Add" | "Concatenate") {
            return self.join(&c, &ins);
        }
        let [x] = ins.as_slice() else {
            return Err(c.err(format!("reads {} values; the layer takes one", ins.len())));
        };
        let (v, shape) = *x;
        let image = || match shape {
            Shape::Image { h, w, c } => Ok([h, w, c]),
            Shape::Vector(n) => {
                Err(c.err(format!("needs an image (H, W, C), gets a vector of {n}")))
            }
        };
        c.only("data_format", &["channels_last"])?;
        let act_layer = |word: String| Layer {
            words: String::new(),
            takes_act: false,
            nobias: false,
            act: Some(word),
            is_act: true,
            params: Vec::new(),
        };
        let plain = |words: String| Layer {
            words,
            takes_act: false,
            nobias: false,
            act: None,
            is_act: false,
            params: Vec::new(),
        };
        let (layer, out) = match l.class.as_str() {
            "Conv2D" | "DepthwiseConv2D" | "SeparableConv2D" => {
                let [h, w, ch] = image()?;
                let depthwise = l.class == "DepthwiseConv2D";
                let [kh, kw] = c.pair("kernel_size", None)?;
                let s = c.pair("strides", Some([1, 1]))?;
                let d = c.pair("dilation_rate", Some([1, 1]))?;
                let same = c.same()?;
                let (oh, ow) = out_size(h, kh, s[0], d[0], same)
                    .zip(out_size(w, kw, s[1], d[1], same))
                    .ok_or_else(|| {
                        c.err(format!("a {kh}x{kw} window does not fit the {h}x{w} image"))
                    })?;
                let mut opts = String::new();
                if s != [1, 1] {
                    opts += &format!(" stride {}", pair(s));
                }
                if same {
                    opts += " same";
                }
                if d != [1, 1] {
                    opts += &format!(" dilation {}", pair(d));
                }
                let (words, want, f) = if l.class == "Conv2D" {
                    let f = c.usize("filters", None)?;
                    let g = c.usize("groups", Some(1))?;
                    if !ch.is_multiple_of(g) || !f.is_multiple_of(g) {
                        return Err(c.err(format!("groups = {g} on {ch} channels to {f}")));
                    }
                    if g > 1 {
                        opts += &format!(" groups {g}");
                    }
                    (
                        format!("conv {f} {kh}x{kw}{opts}"),
                        vec![("kernel", vec![kh, kw, ch / g, f])],
                        f,
                    )
                } else {
                    let m = c.usize("depth_multiplier", Some(1))?;
                    if m > 1 {
                        opts += &format!(" multiplier {m}");
                    }
                    let dk = ("depthwise_kernel", vec![kh, kw, ch, m]);
                    if depthwise {
                        (format!("dwconv {kh}x{kw}{opts}"), vec![dk], ch * m)
                    } else {
                        let f = c.usize("filters", None)?;
                        (
                            format!("sepconv {f} {kh}x{kw}{opts}"),
                            vec![dk, ("pointwise_kernel", vec![1, 1, ch * m, f])],
                            f,
                        )
                    }
                };
                let layer = self.kernel_layer(&c, words, want, f)?;
                (layer, Shape::Image { h: oh, w: ow, c: f })
            }
            "Conv2DTranspose" => {
                let [h, w, ch] = image()?;
                let f = c.usize("filters", None)?;
                let [kh, kw] = c.pair("kernel_size", None)?;
                let s = c.pair("strides", Some([1, 1]))?;
                if c.pair("dilation_rate", Some([1, 1]))? != [1, 1] {
                    return Err(c.err("a dilated transposed conv (the language's deconv has none)"));
                }
                if let Some(p) = c.get("output_padding") {
                    return Err(c.err(format!("output_padding = {p} (the language's deconv has none)")));
                }
                let same = c.same()?;
                // Keras's sizes: `n * s` (same), `n * s + max(k - s, 0)` (valid).
                let size = |n: usize, k: usize, s: usize| {
                    let base = n.checked_mul(s)?;
                    if same {
                        Some(base)
                    } else {
                        base.checked_add(k.saturating_sub(s))
                    }
                };
                let (oh, ow) = size(h, kh, s[0])
                    .zip(size(w, kw, s[1]))
                    .filter(|&(a, b)| a <= MAX_SIZE && b <= MAX_SIZE)
                    .ok_or_else(|| c.err("an output too large"))?;
                let mut words = format!("deconv {f} {kh}x{kw}");
                if s != [1, 1] {
                    words += &format!(" stride {}", pair(s));
                }
                if same {
                    words += " same";
                }
                let want = vec![("kernel", vec![kh, kw, f, ch])];
                let layer = self.kernel_layer(&c, words, want, f)?;
                (layer, Shape::Image { h: oh, w: ow, c: f })
            }
            "Dense" => {
                let Shape::Vector(n) = shape else {
                    return Err(c.err(format!(
                        "on an image ({shape:?}): Keras applies it to each pixel, the language's dense layer takes a vector (flatten or global-pool first)"
                    )));
                };
                let units = c.usize("units", None)?;
                let want = vec![("kernel", vec![n, units])];
                let layer = self.kernel_layer(&c, format!("dense {units}"), want, units)?;
                (layer, Shape::Vector(units))
            }
            "MaxPooling2D" | "AveragePooling2D" => {
                let [h, w, ch] = image()?;
                let k = c.pair("pool_size", Some([2, 2]))?;
                let s = c.pair("strides", Some(k))?;
                let same = c.same()?;
                let (oh, ow) = out_size(h, k[0], s[0], 1, same)
                    .zip(out_size(w, k[1], s[1], 1, same))
                    .ok_or_else(|| {
                        c.err(format!("a {}x{} window does not fit the {h}x{w} image", k[0], k[1]))
                    })?;
                let word = if l.class == "MaxPooling2D" {
                    "maxpool"
                } else {
                    "avgpool"
                };
                let mut words = format!("{word} {}", pair(k));
                if s != k {
                    words += &format!(" stride {}", pair(s));
                }
                if same {
                    words += " same";
                }
                (plain(words), Shape::Image { h: oh, w: ow, c: ch })
            }
            "GlobalAveragePooling2D" | "GlobalMaxPooling2D" => {
                let [_, _, ch] = image()?;
                if c.bool("keepdims", false)? {
                    return Err(c.err("keepdims = true (the language's global pools give a vector)"));
                }
                let word = if l.class == "GlobalMaxPooling2D" {
                    "globalmaxpool"
                } else {
                    "globalavgpool"
                };
                (plain(word.into()), Shape::Vector(ch))
            }
            "BatchNormalization" => {
                let ch = match shape {
                    Shape::Image { c, .. } => c,
                    Shape::Vector(n) => n,
                };
                let axis = match c.get("axis") {
                    None => -1,
                    Some(Value::Array(a)) if a.len() == 1 => a[0].as_i64().unwrap_or(0),
                    Some(v) => v.as_i64().unwrap_or(0),
                };
                let last = if matches!(shape, Shape::Image { .. }) { 3 } else { 1 };
                if axis != -1 && axis != last {
                    return Err(c.err(format!("axis = {axis} (the language normalises channels, the last axis)")));
                }
                for key in ["renorm", "synchronized"] {
                    if c.bool(key, false)? {
                        return Err(c.err(format!("{key} = true")));
                    }
                }
                let momentum = c.f32("momentum", 0.99)?;
                let epsilon = c.f32("epsilon", 0.001)?;
                let (center, scale) = (c.bool("center", true)?, c.bool("scale", true)?);
                let mut words = "batchnorm".to_string();
                if momentum != 0.99 {
                    words += &format!(" momentum {}", decimal(momentum));
                }
                if epsilon != 0.001 {
                    words += &format!(" epsilon {}", decimal(epsilon));
                }
                if !scale {
                    words += " noscale";
                }
                if !center {
                    words += " nocenter";
                }
                let mut want = Vec::new();
                if scale {
                    want.push(("gamma", vec![ch]));
                }
                if center {
                    want.push(("beta", vec![ch]));
                }
                want.push(("moving_mean", vec![ch]));
                want.push(("moving_variance", vec![ch]));
                let layer = Layer {
                    params: self.params(&c, &want)?,
                    ..plain(words)
                };
                (layer, shape)
            }
            "Dropout" => {
                if let Some(n) = c.get("noise_shape") {
                    return Err(c.err(format!("noise_shape = {n}")));
                }
                let rate = c.f32("rate", 0.5)?;
                if rate == 0.0 {
                    self.alias(l, *x);
                    return Ok(());
                }
                (plain(format!("dropout {}", decimal(rate))), shape)
            }
            "Flatten" => match shape {
                Shape::Vector(_) => {
                    self.alias(l, *x);
                    return Ok(());
                }
                Shape::Image { h, w, c: ch } => {
                    (plain("flatten".into()), Shape::Vector(h * w * ch))
                }
            },
            "Activation" => match c.activation()? {
                None => {
                    self.alias(l, *x);
                    return Ok(());
                }
                Some(word) => (act_layer(word), shape),
            },
            "ReLU" => {
                let max = c.get("max_value").map(|_| c.f32("max_value", 0.0)).transpose()?;
                let slope = c.f32("negative_slope", 0.0)?;
                let threshold = c.f32("threshold", 0.0)?;
                let word = match (max, slope, threshold) {
                    (None, 0.0, 0.0) => "relu".to_string(),
                    (Some(6.0), 0.0, 0.0) => "relu6".to_string(),
                    (None, s, 0.0) if s > 0.0 => format!("leaky_relu {}", decimal(s)),
                    _ => {
                        return Err(c.err(format!(
                            "max_value = {max:?}, negative_slope = {slope}, threshold = {threshold}: the language has relu, relu6 and leaky_relu"
                        )))
                    }
                };
                (act_layer(word), shape)
            }
            "LeakyReLU" => {
                let s = match c.get("negative_slope") {
                    Some(_) => c.f32("negative_slope", 0.3)?,
                    None => c.f32("alpha", 0.3)?,
                };
                let word = if s == 0.3 {
                    "leaky_relu".to_string()
                } else {
                    format!("leaky_relu {}", decimal(s))
                };
                (act_layer(word), shape)
            }
            "ELU" => {
                let a = c.f32("alpha", 1.0)?;
                if a != 1.0 {
                    return Err(c.err(format!("alpha = {a} (the language's elu has 1)")));
                }
                (act_layer("elu".into()), shape)
            }
            "Softmax" => {
                let axis = match c.get("axis") {
                    None => -1,
                    Some(Value::Array(a)) if a.len() == 1 => a[0].as_i64().unwrap_or(0),
                    Some(v) => v.as_i64().unwrap_or(0),
                };
                let last = if matches!(shape, Shape::Image { .. }) { 3 } else { 1 };
                if axis != -1 && axis != last {
                    return Err(c.err(format!("axis = {axis} (the language's softmax is over the last axis)")));
                }
                (act_layer("softmax".into()), shape)
            }
            "ZeroPadding2D" => {
                let [h, w, ch] = image()?;
                let [t, b, le, r] = zero_padding(&c)?;
                let (oh, ow) = (h + t + b, w + le + r);
                if oh > MAX_SIZE || ow > MAX_SIZE {
                    return Err(c.err("an output too large"));
                }
                (
                    plain(format!("zeropad {t}x{b}x{le}x{r}")),
                    Shape::Image { h: oh, w: ow, c: ch },
                )
            }
            "UpSampling2D" => {
                let [h, w, ch] = image()?;
                let s = c.pair("size", Some([2, 2]))?;
                let mut words = format!("upsample {}", pair(s));
                match c.str("interpolation", "nearest")? {
                    "nearest" => {}
                    "bilinear" => words += " bilinear",
                    i => {
                        return Err(c.err(format!(
                            "interpolation = '{i}'; the language has nearest and bilinear"
                        )))
                    }
                }
                let (oh, ow) = (h.saturating_mul(s[0]), w.saturating_mul(s[1]));
                if oh > MAX_SIZE || ow > MAX_SIZE {
                    return Err(c.err("an output too large"));
                }
                (plain(words), Shape::Image { h: oh, w: ow, c: ch })
            }
            "RandomFlip" | "RandomTranslation" | "RandomRotation" | "RandomZoom" => {
                image()?;
                (plain(augment(&c)?), shape)
            }
            "InputLayer" => return Err(c.err("a second input")),
            "Lambda" => {
                return Err(c.err(
                    "a Lambda layer is Python code, which an import cannot read (write the layer as one of the language's)",
                ))
            }
            "Sequential" | "Functional" | "Model" => {
                return Err(c.err("a model nested in the model (save the inner model's layers in the outer one)"))
            }
            _ => return Err(c.err("not a layer the language has")),
        };
        let size = match out {
            Shape::Image { h, w, c } => h.checked_mul(w).and_then(|x| x.checked_mul(c)),
            Shape::Vector(n) => Some(n),
        };
        if size.is_none_or(|s| s == 0 || s > MAX_SIZE) {
            return Err(c.err(format!("an output of shape {out:?}")));
        }
        self.push(&l.name, &l.class, Kind::Layer(layer), vec![v], out);
        Ok(())
    }

    fn join(&mut self, c: &Cfg<'_>, ins: &[(usize, Shape)]) -> Result<(), ImportError> {
        let Some(&(_, first)) = ins.first() else {
            return Err(c.err("joins nothing"));
        };
        if ins.len() == 1 {
            self.alias(c.l, ins[0]);
            return Ok(());
        }
        let kind = if c.l.class == "Add" {
            if let Some((_, s)) = ins.iter().find(|(_, s)| *s != first) {
                return Err(c.err(format!("adds values of shapes {first:?} and {s:?}")));
            }
            JoinKind::Add
        } else {
            let axis = c.l.config.get("axis").and_then(Value::as_i64).unwrap_or(-1);
            let shape = |s: Shape| match s {
                Shape::Image { h, w, c } => (Some((h, w)), c, 3),
                Shape::Vector(n) => (None, n, 1),
            };
            let (hw, _, last) = shape(first);
            if axis != -1 && axis != last {
                return Err(c.err(format!(
                    "axis = {axis} (the language concatenates channels)"
                )));
            }
            let mut total = 0usize;
            for (_, s) in ins {
                let (shw, n, _) = shape(*s);
                if shw != hw {
                    return Err(c.err(format!("concatenates values of shapes {first:?} and {s:?}")));
                }
                total = total.saturating_add(n);
            }
            let out = match first {
                Shape::Image { h, w, .. } => Shape::Image { h, w, c: total },
                Shape::Vector(_) => Shape::Vector(total),
            };
            let inputs = ins.iter().map(|i| i.0).collect();
            self.push(
                &c.l.name,
                &c.l.class,
                Kind::Join(JoinKind::Concat),
                inputs,
                out,
            );
            return Ok(());
        };
        let inputs = ins.iter().map(|i| i.0).collect();
        self.push(&c.l.name, &c.l.class, Kind::Join(kind), inputs, first);
        Ok(())
    }
}

/// `ZeroPadding2D`'s padding as top, bottom, left, right.
fn zero_padding(c: &Cfg<'_>) -> Result<[usize; 4], ImportError> {
    let v = c.get("padding").cloned().unwrap_or(Value::from(1));
    let n = |v: &Value| {
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .filter(|&x| x <= MAX_SIZE)
    };
    let got = match &v {
        Value::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
            (Value::Array(p), Value::Array(q)) if p.len() == 2 && q.len() == 2 => n(&p[0])
                .zip(n(&p[1]))
                .zip(n(&q[0]).zip(n(&q[1])))
                .map(|((t, b), (l, r))| [t, b, l, r]),
            (p, q) => n(p).zip(n(q)).map(|(a, b)| [a, a, b, b]),
        },
        v => n(v).map(|a| [a; 4]),
    };
    got.ok_or_else(|| c.err(format!("padding = {v}")))
}

/// A random augmentation layer's statement, for Keras's defaults of fill
/// (`reflect`) and interpolation (`bilinear`), which the language's are.
fn augment(c: &Cfg<'_>) -> Result<String, ImportError> {
    c.only("fill_mode", &["reflect"])?;
    c.only("interpolation", &["bilinear"])?;
    let factor = |key: &str| -> Result<Option<f32>, ImportError> {
        match c.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() == 2 => {
                let (lo, hi) = (a[0].as_f64(), a[1].as_f64());
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo == -hi && hi >= 0.0 => Ok(Some(hi as f32)),
                    _ => Err(c.err(format!(
                        "{key} = {} (the language's factors are symmetric)",
                        c.get(key).unwrap_or(&Value::Null)
                    ))),
                }
            }
            Some(_) => c.f32(key, 0.0).map(|f| Some(f.abs())),
        }
    };
    let f = |x: f32| decimal(x);
    Ok(match c.l.class.as_str() {
        "RandomFlip" => match c.str("mode", "horizontal_and_vertical")? {
            "horizontal_and_vertical" => "randomflip".to_string(),
            "horizontal" => "randomflip horizontal".to_string(),
            "vertical" => "randomflip vertical".to_string(),
            m => return Err(c.err(format!("mode = '{m}'"))),
        },
        "RandomTranslation" => {
            let h = factor("height_factor")?.unwrap_or(0.0);
            let w = factor("width_factor")?.unwrap_or(0.0);
            if h == w {
                format!("randomtranslate {}", f(h))
            } else {
                format!("randomtranslate {} {}", f(h), f(w))
            }
        }
        "RandomRotation" => format!("randomrotate {}", f(factor("factor")?.unwrap_or(0.0))),
        _ => {
            let h = factor("height_factor")?.unwrap_or(0.0);
            if let Some(w) = factor("width_factor")? {
                if w != h {
                    return Err(c.err(format!(
                        "height_factor {h} and width_factor {w} differ (the language zooms both alike)"
                    )));
                }
            }
            format!("randomzoom {}", f(h))
        }
    })
}

/// The model's layers as items over numbered values (value 0: the input).
pub(crate) fn map(m: &ModelConfig<'_>, saved: &Saved) -> Result<Items, ImportError> {
    let classes: Vec<&str> = m
        .layers
        .iter()
        .filter(|l| l.class != "InputLayer")
        .map(|l| l.class.as_str())
        .collect();
    let named: Vec<&KLayer<'_>> = m
        .layers
        .iter()
        .filter(|l| l.class != "InputLayer")
        .collect();
    let stores = named
        .iter()
        .zip(store_names(classes))
        .map(|(l, s)| (l.name.clone(), s))
        .collect();
    let input_name = &m.layers[0].name;
    let (input, shape) = match m.input_shape.as_slice() {
        &[h, w, c] if [h, w, c].iter().all(|&d| (1..=MAX_SIZE).contains(&d)) => {
            ([h, w, c], Shape::Image { h, w, c })
        }
        &[n] if (1..=MAX_SIZE).contains(&n) => ([n, 1, 1], Shape::Image { h: n, w: 1, c: 1 }),
        s => {
            return Err(ImportError::NotKeras(format!(
                "the input '{input_name}' has shape {s:?}; the language takes (H, W, C) or (n)"
            )))
        }
    };
    let mut mp = Mapper {
        saved,
        items: Vec::new(),
        values: HashMap::from([(input_name.clone(), (0, shape))]),
        next: 1,
        stores,
    };
    // A vector input: `input n x 1 x 1; flatten`.
    if m.input_shape.len() == 1 {
        let n = m.input_shape[0];
        mp.push(
            input_name,
            "Flatten",
            Kind::Layer(Layer {
                words: "flatten".into(),
                takes_act: false,
                nobias: false,
                act: None,
                is_act: false,
                params: Vec::new(),
            }),
            vec![0],
            Shape::Vector(n),
        );
    }
    for l in &m.layers[1..] {
        mp.layer(l)?;
    }
    let &(output, _) = mp.values.get(&m.output).ok_or_else(|| {
        ImportError::NotKeras(format!("the output layer '{}' is not computed", m.output))
    })?;
    Ok(Items {
        items: mp.items,
        input,
        output,
        values: mp.next,
    })
}
