//! Keras as a new user writes it in a `.cnn` file: class names (`Conv2D`),
//! calls (`Conv2D(32, (3, 3), activation='relu')`), keyword arguments
//! (`padding='same'`) and tuples (`(3, 3)`), read so that a help line can
//! give the language's own text for them. Pure functions: `habits` reports,
//! and checks every text made here before a help shows it.

use super::vocab::{activation_of, VALUE_OPTIONS};

/// Keras's layer classes and their twins here; `""` is `Activation`, whose
/// twin is the activation's own word. Two spellings where Keras has two.
const CLASSES: [(&str, &str); 34] = [
    ("Conv2D", "conv"),
    ("Convolution2D", "conv"),
    ("DepthwiseConv2D", "dwconv"),
    ("SeparableConv2D", "sepconv"),
    ("SeparableConvolution2D", "sepconv"),
    ("Conv2DTranspose", "deconv"),
    ("Convolution2DTranspose", "deconv"),
    ("MaxPooling2D", "maxpool"),
    ("MaxPool2D", "maxpool"),
    ("AveragePooling2D", "avgpool"),
    ("AvgPool2D", "avgpool"),
    ("GlobalAveragePooling2D", "globalavgpool"),
    ("GlobalAvgPool2D", "globalavgpool"),
    ("GlobalMaxPooling2D", "globalmaxpool"),
    ("GlobalMaxPool2D", "globalmaxpool"),
    ("BatchNormalization", "batchnorm"),
    ("Dense", "dense"),
    ("Dropout", "dropout"),
    ("Flatten", "flatten"),
    ("ZeroPadding2D", "zeropad"),
    ("UpSampling2D", "upsample"),
    ("RandomFlip", "randomflip"),
    ("RandomTranslation", "randomtranslate"),
    ("RandomRotation", "randomrotate"),
    ("RandomZoom", "randomzoom"),
    ("Add", "add"),
    ("Concatenate", "concat"),
    ("Activation", ""),
    ("ReLU", "relu"),
    ("LeakyReLU", "leaky_relu"),
    ("ELU", "elu"),
    ("Softmax", "softmax"),
    ("Input", "input"),
    ("InputLayer", "input"),
];

/// The Keras class `word` names, as written or with its module
/// (`layers.Conv2D`, `tf.keras.layers.Conv2D`): the class and its twin.
pub(super) fn class_of(word: &str) -> Option<(&'static str, &'static str)> {
    let name = word.rsplit('.').next().unwrap_or(word);
    CLASSES.iter().find(|(c, _)| *c == name).copied()
}

/// A Python value as Keras code writes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Py {
    Int(u64),
    /// Any other number, as written (`0.5`, `1e-3`, `-1`).
    Num(String),
    /// `'same'` or `"same"`, without its quotes.
    Str(String),
    /// `relu`, `True`, `None`.
    Name(String),
    /// `(3, 3)` or `[3, 3]`.
    Tuple(Vec<Py>),
}

impl Py {
    /// A word, quoted or not.
    pub(super) fn word(&self) -> Option<&str> {
        match self {
            Py::Str(s) | Py::Name(s) => Some(s),
            _ => None,
        }
    }

    fn int(&self) -> Option<u64> {
        match self {
            Py::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// A size as the language writes it: `3`, or `3x3` for `(3, 3)`.
    pub(super) fn dims(&self) -> Option<String> {
        match self {
            Py::Int(n) => Some(n.to_string()),
            Py::Tuple(v) if (1..=4).contains(&v.len()) => {
                let n: Option<Vec<String>> = v.iter().map(|x| Some(x.int()?.to_string())).collect();
                Some(n?.join("x"))
            }
            _ => None,
        }
    }

    /// A decimal as the language writes it (`0.5`, `1e-3`): Python's own
    /// text when the grammar reads it the same.
    fn number(&self) -> Option<String> {
        match self {
            Py::Int(n) => Some(n.to_string()),
            Py::Num(t) => {
                let (mantissa, exponent) = t.split_once(['e', 'E']).unwrap_or((t, "0"));
                let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                (digits(int) && digits(frac) && digits(exponent)).then(|| t.clone())
            }
            _ => None,
        }
    }

    /// `True` or `False`.
    fn boolean(&self) -> Option<bool> {
        match self {
            Py::Name(n) if n == "True" => Some(true),
            Py::Name(n) if n == "False" => Some(false),
            _ => None,
        }
    }

    fn is_none(&self) -> bool {
        matches!(self, Py::Name(n) if n == "None")
    }
}

/// One argument of a call: `key=value`, or a positional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Arg {
    pub(super) key: Option<String>,
    pub(super) val: Py,
}

/// Nesting of tuples read at most: Keras's deepest is `((1, 1), (2, 2))`,
/// and a bound keeps the recursion off the stack's limit.
const MAX_NESTING: usize = 4;

/// A reader of Python text, one value at a time.
struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_spaces();
        let yes = self.s.get(self.i) == Some(&b);
        self.i += usize::from(yes);
        yes
    }

    /// The bytes from here while `f` holds.
    fn take(&mut self, f: impl Fn(u8) -> bool) -> &str {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| f(*b)) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self, depth: usize) -> Option<Py> {
        self.skip_spaces();
        let first = *self.s.get(self.i)?;
        match first {
            b'(' | b'[' if depth < MAX_NESTING => {
                self.i += 1;
                let close = if first == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        self.eat(close).then_some(())?;
                        break;
                    }
                }
                Some(Py::Tuple(items))
            }
            b'\'' | b'"' => {
                self.i += 1;
                let s = self.take(|b| b != first && b != b'\n').to_string();
                self.eat(first).then_some(Py::Str(s))
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let t = self.take(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
                Some(match t.parse() {
                    Ok(n) => Py::Int(n),
                    Err(_) => Py::Num(t.to_string()),
                })
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let t = self.take(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                Some(Py::Name(t.to_string()))
            }
            _ => None,
        }
    }

    /// `key=` at this point (not `==`), consumed; or nothing consumed.
    fn key(&mut self) -> Option<String> {
        let start = self.i;
        self.skip_spaces();
        let key = self
            .take(|b| b.is_ascii_alphanumeric() || b == b'_')
            .to_string();
        self.skip_spaces();
        if !key.is_empty()
            && self.s.get(self.i) == Some(&b'=')
            && self.s.get(self.i + 1) != Some(&b'=')
        {
            self.i += 1;
            return Some(key);
        }
        self.i = start;
        None
    }

    fn at_end(&mut self) -> bool {
        self.skip_spaces();
        self.i == self.s.len()
    }
}

/// `text` as one Python value (a trailing `,` allowed, as between arguments).
pub(super) fn value(text: &str) -> Option<Py> {
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    let v = r.value(0)?;
    r.eat(b',');
    r.at_end().then_some(v)
}

/// The arguments of a call, `text` being `(32, (3, 3), activation='relu')`;
/// what follows the closing `)` may only be more calls (the functional
/// API's `(x)`) and a `,`.
pub(super) fn call(text: &str) -> Option<Vec<Arg>> {
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    r.eat(b'(').then_some(())?;
    let mut args = Vec::new();
    while !r.eat(b')') {
        let key = r.key();
        args.push(Arg {
            key,
            val: r.value(0)?,
        });
        if !r.eat(b',') {
            r.eat(b')').then_some(())?;
            break;
        }
    }
    while r.s.get(r.i) == Some(&b'(') {
        r.value(0)?;
    }
    r.eat(b',');
    r.at_end().then_some(args)
}

/// What a Keras argument becomes here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fix {
    /// One of the statement's numbers (its index among them): `32`, `3x3`.
    Slot(usize, String),
    /// An option, written after the numbers: `same`, `stride 2`, `relu`.
    Opt(String),
    /// Keras's default, or nothing the language needs: left out.
    Default,
    /// The model's input shape (`input_shape=(28, 28, 1)`): a statement of
    /// its own, `input 28x28x1`, first in the model.
    Input(String),
    /// A statement word of its own (`ReLU(max_value=6)` is `relu6`).
    Head(&'static str),
}

/// The numbers a statement starts with, by Keras's names for them (the
/// positional arguments of its Keras twin, in order).
fn slots(twin: &str) -> &'static [&'static str] {
    match twin {
        "conv" | "sepconv" | "deconv" => &["filters", "kernel_size"],
        "dwconv" => &["kernel_size"],
        "maxpool" | "avgpool" | "minpool" => &["pool_size"],
        "dense" => &["units"],
        "dropout" => &["rate"],
        "zeropad" => &["padding"],
        "upsample" => &["size"],
        "randomflip" => &["mode"],
        "randomtranslate" => &["height_factor", "width_factor"],
        "randomrotate" => &["factor"],
        "randomzoom" => &["height_factor"],
        "input" => &["shape"],
        "leaky_relu" => &["negative_slope"],
        "" => &["activation"],
        _ => &[],
    }
}

/// `key=val` in a statement `twin` (or in a call of its Keras class) as
/// the language writes it; `None` when the language has nothing for it.
pub(super) fn fix(twin: &str, key: &str, val: &Py) -> Option<Fix> {
    // Keras's older name for the slope, and `InputLayer`'s for the shape.
    let slot_key = match key {
        "alpha" if twin == "leaky_relu" => "negative_slope",
        "input_shape" if twin == "input" => "shape",
        _ => key,
    };
    if let Some(k) = slots(twin).iter().position(|n| *n == slot_key) {
        let text = match slot_key {
            "filters" | "units" => val.int()?.to_string(),
            "rate" | "negative_slope" | "factor" | "height_factor" | "width_factor" => {
                val.number()?
            }
            "mode" => flip_mode(val)?,
            "padding" => zeropad(val)?,
            "activation" => activation(val)?,
            _ => val.dims()?,
        };
        return Some(Fix::Slot(k, text));
    }
    if VALUE_OPTIONS.contains(&key) {
        // The language's own option, written Keras's way: `stride=2`.
        let v = square(val).or_else(|| val.number())?;
        return Some(Fix::Opt(format!("{key} {v}")));
    }
    let flag = |word: &'static str| match val.boolean()? {
        false => Some(Fix::Opt(word.to_string())),
        true => Some(Fix::Default),
    };
    Some(match key {
        "padding" => Fix::Opt(match val.word()? {
            w @ ("same" | "valid") => w.to_string(),
            _ => return None,
        }),
        "strides" | "dilation_rate" if val.is_none() => Fix::Default,
        "strides" => Fix::Opt(format!("stride {}", square(val)?)),
        "dilation_rate" => Fix::Opt(format!("dilation {}", square(val)?)),
        "activation" if val.is_none() => Fix::Default,
        "activation" => Fix::Opt(activation(val)?),
        "use_bias" => flag("nobias")?,
        "scale" => flag("noscale")?,
        "center" => flag("nocenter")?,
        "depth_multiplier" => Fix::Opt(format!("multiplier {}", val.int()?)),
        "interpolation" => Fix::Opt(match val.word()? {
            w @ ("nearest" | "bilinear") => w.to_string(),
            _ => return None,
        }),
        "max_value" if twin == "relu" && val.number()?.parse::<f64>() == Ok(6.0) => {
            Fix::Head("relu6")
        }
        // Keras's defaults for the augmentation layers; their draws follow
        // the run's seed here.
        "fill_mode" if val.word() == Some("reflect") => Fix::Default,
        "width_factor" if twin == "randomzoom" && val.is_none() => Fix::Default,
        "seed" => Fix::Default,
        "name" => Fix::Default,
        "data_format" if val.word() == Some("channels_last") => Fix::Default,
        "input_shape" => Fix::Input(val.dims()?),
        _ => return None,
    })
}

/// A stride or dilation as the language writes it: `2` for `(2, 2)`, as
/// the README does, and `2x1` for `(2, 1)`.
fn square(val: &Py) -> Option<String> {
    let d = val.dims()?;
    match d.split_once('x') {
        Some((a, b)) if a == b => Some(a.to_string()),
        Some((_, b)) if b.contains('x') => None,
        _ => Some(d),
    }
}

/// Whether `key` is an argument of a Keras layer that the language has
/// (its value may still be one it has not): other keys get "the language
/// has no `key`".
pub(super) fn known_key(key: &str) -> bool {
    const KEYS: [&str; 31] = [
        "filters",
        "kernel_size",
        "pool_size",
        "units",
        "rate",
        "size",
        "shape",
        "input_shape",
        "padding",
        "strides",
        "dilation_rate",
        "activation",
        "use_bias",
        "groups",
        "depth_multiplier",
        "momentum",
        "epsilon",
        "scale",
        "center",
        "interpolation",
        "negative_slope",
        "alpha",
        "max_value",
        "name",
        "data_format",
        "mode",
        "factor",
        "height_factor",
        "width_factor",
        "fill_mode",
        "seed",
    ];
    KEYS.contains(&key) || VALUE_OPTIONS.contains(&key)
}

/// `RandomFlip`'s mode as `randomflip`'s words (both axes: both words).
fn flip_mode(val: &Py) -> Option<String> {
    match val.word()? {
        w @ ("horizontal" | "vertical") => Some(w.to_string()),
        "horizontal_and_vertical" => Some("horizontal vertical".to_string()),
        _ => None,
    }
}

/// An activation's word (Keras's names are the language's).
fn activation(val: &Py) -> Option<String> {
    let w = val.word()?;
    activation_of(w).map(|_| w.to_string())
}

/// `ZeroPadding2D`'s padding: `1`, `(1, 2)` or `((1, 2), (3, 4))`.
fn zeropad(val: &Py) -> Option<String> {
    if let Py::Tuple(v) = val {
        if let [Py::Tuple(a), Py::Tuple(b)] = &v[..] {
            let (a, b) = (Py::Tuple(a.clone()).dims()?, Py::Tuple(b.clone()).dims()?);
            return (a.split('x').count() == 2 && b.split('x').count() == 2)
                .then(|| format!("{a}x{b}"));
        }
    }
    val.dims().filter(|d| d.split('x').count() <= 2)
}

/// A call of the Keras class whose twin is `twin` as the language's text
/// (`Conv2D(32, (3, 3), activation='relu')` is `conv 32 3x3 relu`; an
/// `input_shape` puts `input ...;` first), when every argument has its
/// twin. The text is still to be checked by the caller.
pub(super) fn translate(twin: &str, args: &[Arg]) -> Option<String> {
    let names = slots(twin);
    let mut head = twin;
    let mut numbers: Vec<Option<String>> = vec![None; names.len()];
    let mut options = Vec::new();
    let mut input = None;
    let mut next = 0;
    for a in args {
        let key = match &a.key {
            Some(k) => k.as_str(),
            None => {
                next += 1;
                names.get(next - 1)?
            }
        };
        match fix(twin, key, &a.val)? {
            Fix::Slot(k, t) => numbers[k].replace(t).is_none().then_some(())?,
            Fix::Opt(t) => options.push(t),
            Fix::Default => {}
            Fix::Input(t) => input = Some(t),
            Fix::Head(h) => head = h,
        }
    }
    // Keras's defaults where the language has none.
    if matches!(twin, "maxpool" | "avgpool") && numbers[0].is_none() {
        numbers[0] = Some("2".to_string());
    }
    let mut text = match twin {
        // `Activation('relu')` is `relu`.
        "" => numbers.pop()??,
        // The slope is optional.
        "leaky_relu" => [Some(head.to_string()), numbers.pop()?]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            let mut words = vec![head.to_string()];
            for n in numbers {
                words.push(n?);
            }
            words.join(" ")
        }
    };
    for o in options {
        text.push(' ');
        text.push_str(&o);
    }
    Some(match input {
        Some(shape) => format!("input {shape}; {text}"),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(class: &str, args: &str) -> Option<String> {
        translate(class_of(class)?.1, &call(args)?)
    }

    #[test]
    fn calls_read_as_keras_writes_them() {
        assert_eq!(
            call("(32, (3,3), activation='relu')"),
            Some(vec![
                Arg {
                    key: None,
                    val: Py::Int(32)
                },
                Arg {
                    key: None,
                    val: Py::Tuple(vec![Py::Int(3), Py::Int(3)])
                },
                Arg {
                    key: Some("activation".into()),
                    val: Py::Str("relu".into())
                },
            ])
        );
        assert_eq!(call("()(x)"), Some(vec![]));
        assert_eq!(call("(1, 2"), None);
        assert_eq!(call("(a == b)"), None);
        assert_eq!(value("(((((1)))))"), None, "nesting is bounded");
        assert_eq!(value("'same',"), Some(Py::Str("same".into())));
    }

    #[test]
    fn classes_translate_to_statements() {
        assert_eq!(
            tr("Conv2D", "(32, (3, 3), activation='relu')").as_deref(),
            Some("conv 32 3x3 relu")
        );
        assert_eq!(
            tr(
                "layers.Conv2D",
                "(filters=8, kernel_size=3, strides=(2, 2), padding=\"same\", use_bias=False)"
            )
            .as_deref(),
            Some("conv 8 3 stride 2 same nobias")
        );
        assert_eq!(
            tr("Conv2D", "(32, 3, input_shape=(28, 28, 1))").as_deref(),
            Some("input 28x28x1; conv 32 3")
        );
        assert_eq!(tr("MaxPooling2D", "()").as_deref(), Some("maxpool 2"));
        assert_eq!(
            tr("Dense", "(10, activation='softmax')").as_deref(),
            Some("dense 10 softmax")
        );
        assert_eq!(tr("Dropout", "(0.5)").as_deref(), Some("dropout 0.5"));
        // The augmentation layers, with Keras's defaults left out.
        let aug = [
            (
                "RandomFlip",
                "('horizontal')",
                Some("randomflip horizontal"),
            ),
            (
                "RandomFlip",
                "(mode='horizontal_and_vertical')",
                Some("randomflip horizontal vertical"),
            ),
            (
                "RandomTranslation",
                "(0.1, 0.2, fill_mode='reflect')",
                Some("randomtranslate 0.1 0.2"),
            ),
            (
                "RandomRotation",
                "(0.05, seed=3)",
                Some("randomrotate 0.05"),
            ),
            (
                "RandomZoom",
                "(0.1, width_factor=None)",
                Some("randomzoom 0.1"),
            ),
            ("RandomRotation", "(0.1, fill_mode='constant')", None),
            ("RandomZoom", "(0.1, 0.2)", None),
        ];
        for (class, args, want) in aug {
            assert_eq!(tr(class, args).as_deref(), want, "{class}{args}");
        }
        assert_eq!(tr("Activation", "('relu')").as_deref(), Some("relu"));
        assert_eq!(tr("ReLU", "(max_value=6)").as_deref(), Some("relu6"));
        assert_eq!(
            tr("LeakyReLU", "(alpha=0.1)").as_deref(),
            Some("leaky_relu 0.1")
        );
        assert_eq!(tr("LeakyReLU", "()").as_deref(), Some("leaky_relu"));
        assert_eq!(
            tr("Input", "(shape=(28, 28, 1))").as_deref(),
            Some("input 28x28x1")
        );
        assert_eq!(
            tr("ZeroPadding2D", "(((1, 2), (3, 4)))").as_deref(),
            Some("zeropad 1x2x3x4")
        );
        assert_eq!(
            tr(
                "BatchNormalization",
                "(momentum=0.9, epsilon=1e-5, scale=False)"
            )
            .as_deref(),
            Some("batchnorm momentum 0.9 epsilon 1e-5 noscale")
        );
        // Nothing the language has: no translation.
        assert_eq!(
            tr("Conv2D", "(32, 3, kernel_initializer='he_normal')"),
            None
        );
        assert_eq!(tr("Conv2D", "(32)"), None);
        assert_eq!(tr("Dropout", "(.5)"), None);
        assert_eq!(tr("Activation", "('exponential')"), None);
    }
}
