//! The traversal: the plan's steps in order, each buffer's value in the ONNX
//! graph and the form it is kept in, the conversions between forms, and the
//! graph's edges (NHWC or NCHW input and output).
//!
//! Images are computed in NCHW (ONNX's convolution and pooling layout), so
//! the channel axis is axis 1 of every value, image or vector alike: softmax,
//! batchnorm and concat all work on axis 1. The runtime keeps each sample
//! NHWC row-major, so a flatten (a no-op on the runtime's data) must give the
//! NHWC order here: an image becomes a vector by a transpose back to NHWC,
//! then a `Flatten`.

use std::collections::HashMap;

use cnn_plan::{LayerSpec, Plan, Step, Tensor};

use crate::builder::{batched_value, ints, Builder};
use crate::proto::ValueInfoProto;
use crate::{ExportError, Layout};

/// How a buffer's value is held in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    /// `[N, c, h, w]`: a per-sample `h x w x c` image, NCHW.
    Image { h: usize, w: usize, c: usize },
    /// `[N, n]`: a per-sample vector of `n`, the runtime's (NHWC) order.
    Flat(usize),
}

impl Form {
    /// Values per sample.
    pub fn len(self) -> usize {
        match self {
            Form::Image { h, w, c } => h * w * c,
            Form::Flat(n) => n,
        }
    }
}

/// A value of the graph: its name and form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub name: String,
    pub form: Form,
}

/// Which step an error is about: its position in the plan, its statement
/// and the kind of layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub step: usize,
    pub layer: usize,
    pub kind: &'static str,
}

impl At {
    pub fn new(step: usize, s: &Step) -> At {
        At {
            step,
            layer: s.index,
            kind: kind(&s.layer),
        }
    }

    /// An [`ExportError::Inconsistent`] at this step.
    pub fn inconsistent(self, reason: impl Into<String>) -> ExportError {
        ExportError::Inconsistent {
            step: self.step,
            layer: self.layer,
            kind: self.kind,
            reason: reason.into(),
        }
    }

    /// An [`ExportError::Unsupported`] at this step.
    pub fn unsupported(self, reason: impl Into<String>) -> ExportError {
        ExportError::Unsupported {
            step: self.step,
            layer: self.layer,
            kind: self.kind,
            reason: reason.into(),
        }
    }
}

/// The language's name of a layer kind (what error messages say).
pub(crate) fn kind(l: &LayerSpec) -> &'static str {
    match l {
        LayerSpec::Conv2d { .. } => "conv",
        LayerSpec::DwConv2d { .. } => "dwconv",
        LayerSpec::SepConv2d { .. } => "sepconv",
        LayerSpec::Deconv2d { .. } => "deconv",
        LayerSpec::Pool2d(_) => "pool",
        LayerSpec::Flatten { .. } => "flatten",
        LayerSpec::Dense { .. } => "dense",
        LayerSpec::Activation { .. } => "activation",
        LayerSpec::BatchNorm(_) => "batchnorm",
        LayerSpec::Dropout { .. } => "dropout",
        LayerSpec::GlobalPool(_) => "global pool",
        LayerSpec::ZeroPad(_) => "zeropad",
        LayerSpec::Upsample(_) => "upsample",
        LayerSpec::Augment(_) => "augmentation",
        LayerSpec::Join(_) => "join",
    }
}

/// The export of one plan under way.
pub(crate) struct Lowering<'p, W> {
    pub b: Builder,
    pub plan: &'p Plan,
    weights: W,
    /// Each buffer's value, as the step that wrote it left it. A `flatten`
    /// writes nothing (it shares its input's buffer): the reader that needs a
    /// vector converts, so a sibling branch that reads the same buffer as an
    /// image still finds it.
    values: Vec<Option<Value>>,
    /// Conversions made so far, per buffer and target form, so that two
    /// readers of one buffer share one transpose.
    converted: HashMap<(usize, Form), String>,
}

impl<'p, W: FnMut(&str) -> Option<Vec<f32>>> Lowering<'p, W> {
    pub fn new(plan: &'p Plan, weights: W) -> Self {
        Lowering {
            b: Builder::default(),
            plan,
            weights,
            values: vec![None; plan.buffers.len()],
            converted: HashMap::new(),
        }
    }

    /// The values of `t`, checked against its shape in the plan.
    pub fn weight(&mut self, t: &Tensor) -> Result<Vec<f32>, ExportError> {
        let data = (self.weights)(&t.name).ok_or_else(|| ExportError::MissingWeight {
            name: t.name.to_string(),
        })?;
        let expected: usize = t.shape.iter().product();
        if data.len() != expected {
            return Err(ExportError::WeightSize {
                name: t.name.to_string(),
                shape: t.shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(data)
    }

    /// Buffer `buffer`'s value as its writer left it.
    pub fn value(&self, buffer: usize, at: At) -> Result<Value, ExportError> {
        self.values
            .get(buffer)
            .cloned()
            .flatten()
            .ok_or_else(|| at.inconsistent(format!("reads buffer {buffer}, which nothing wrote")))
    }

    /// Records the value a step wrote.
    pub fn set(&mut self, buffer: usize, v: Value, at: At) -> Result<(), ExportError> {
        let slot = self
            .values
            .get_mut(buffer)
            .ok_or_else(|| at.inconsistent(format!("writes buffer {buffer}, which is not one")))?;
        *slot = Some(v);
        Ok(())
    }

    /// Buffer `buffer` as a vector of `n` values per sample, in the runtime's
    /// order: an image is transposed back to NHWC first, unless the transpose
    /// changes nothing (one pixel or one channel).
    pub fn flat(&mut self, buffer: usize, n: usize, at: At) -> Result<String, ExportError> {
        let v = self.value(buffer, at)?;
        if v.form.len() != n {
            return Err(
                at.inconsistent(format!("expects {n} values per sample, gets {:?}", v.form))
            );
        }
        let target = Form::Flat(n);
        if v.form == target {
            return Ok(v.name);
        }
        if let Some(name) = self.converted.get(&(buffer, target)) {
            return Ok(name.clone());
        }
        let Form::Image { h, w, c } = v.form else {
            unreachable!("a vector of the same length is the target itself");
        };
        let nhwc = if h * w == 1 || c == 1 {
            v.name
        } else {
            let hint = format!("{}.nhwc", v.name);
            self.b.node(
                "Transpose",
                &hint,
                &[&v.name],
                vec![ints("perm", &[0, 2, 3, 1])],
            )
        };
        let hint = format!("{nhwc}.flat");
        let name = self.b.node(
            "Flatten",
            &hint,
            &[&nhwc],
            vec![crate::builder::int("axis", 1)],
        );
        self.converted.insert((buffer, target), name.clone());
        Ok(name)
    }

    /// Buffer `buffer` as an `h x w x c` image (NCHW): a vector of the runtime's
    /// (NHWC) order is reshaped and transposed; an image of other dims with
    /// as many values goes through a vector.
    pub fn image(
        &mut self,
        buffer: usize,
        [h, w, c]: [usize; 3],
        at: At,
    ) -> Result<String, ExportError> {
        let v = self.value(buffer, at)?;
        let target = Form::Image { h, w, c };
        if v.form == target {
            return Ok(v.name);
        }
        if v.form.len() != h * w * c {
            return Err(at.inconsistent(format!("expects a {h}x{w}x{c} image, gets {:?}", v.form)));
        }
        if let Some(name) = self.converted.get(&(buffer, target)) {
            return Ok(name.clone());
        }
        let flat = self.flat(buffer, h * w * c, at)?;
        // `0` keeps the batch axis as it is (Reshape's default `allowzero = 0`).
        let direct = h * w == 1 || c == 1;
        let dims: [i64; 4] = if direct {
            [0, c as i64, h as i64, w as i64]
        } else {
            [0, h as i64, w as i64, c as i64]
        };
        let shape = self.b.init_i64(&format!("shape.{h}x{w}x{c}"), &[4], &dims);
        let hint = format!("{flat}.image");
        let mut name = self.b.node("Reshape", &hint, &[&flat, &shape], vec![]);
        if !direct {
            let hint = format!("{name}.nchw");
            name = self.b.node(
                "Transpose",
                &hint,
                &[&name],
                vec![ints("perm", &[0, 3, 1, 2])],
            );
        }
        self.converted.insert((buffer, target), name.clone());
        Ok(name)
    }

    /// The graph's input value (`input`, NHWC or NCHW by `layout`), bound to
    /// buffer 0 as an NCHW image.
    pub fn input(&mut self, layout: Layout) -> ValueInfoProto {
        let [h, w, c] = self.plan.input;
        let name = self.b.fresh("input");
        let (dims, image) = match layout {
            Layout::Nhwc => {
                let t = self.b.node(
                    "Transpose",
                    "input.nchw",
                    &[&name],
                    vec![ints("perm", &[0, 3, 1, 2])],
                );
                ([h, w, c], t)
            }
            Layout::Nchw => ([c, h, w], name.clone()),
        };
        self.values[0] = Some(Value {
            name: image,
            form: Form::Image { h, w, c },
        });
        batched_value(&name, &dims)
    }

    /// The graph's output value (`output`): the plan's output buffer in the
    /// plan's output shape, an image back in `layout`.
    pub fn output(&mut self, layout: Layout) -> Result<ValueInfoProto, ExportError> {
        let buffer = self.plan.output_buffer();
        let at = At {
            step: self.plan.steps.len(),
            layer: self.plan.steps.last().map_or(0, |s| s.index),
            kind: "output",
        };
        let shape = self.plan.output_shape.to_vec();
        let (last, dims) = match *shape.as_slice() {
            [h, w, c] => {
                let x = self.image(buffer, [h, w, c], at)?;
                match layout {
                    Layout::Nhwc => (
                        ("Transpose", x, vec![ints("perm", &[0, 2, 3, 1])]),
                        vec![h, w, c],
                    ),
                    Layout::Nchw => (("Identity", x, vec![]), vec![c, h, w]),
                }
            }
            [n] => (("Identity", self.flat(buffer, n, at)?, vec![]), vec![n]),
            _ => {
                return Err(at.inconsistent(format!("an output of shape {shape:?}")));
            }
        };
        let (op, x, attrs) = last;
        let name = self.b.node(op, "output", &[&x], attrs);
        Ok(batched_value(&name, &dims))
    }
}
