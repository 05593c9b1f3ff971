//! Building a [`Plan`] from a model's statements: a chain of layers, or a
//! graph whose joins (`residual`, `add`, `concat`) read several branches.
//!
//! Steps come out in source order, which is a topological order: every
//! branch's steps, then its join. Every step writes a buffer of its own
//! (`flatten` shares its input's); a branch that is empty (`{ }`, an identity
//! shortcut) is its input buffer itself, so it costs no copy. A buffer read by
//! several steps (a branch point) gets its gradient summed: the reader the
//! backward pass meets first writes it, the others add to it.

use std::borrow::Cow;

use crate::plan::{
    bad, checked_len, expand, layer_shapes, tensor_names, Buffer, Operand, Place, Plan, Step,
    Tensor, MAX_LEN, SPLIT_MAX_PARAMS, SPLIT_MAX_SAMPLE_LEN,
};
use crate::spec::{Activation, JoinKind, JoinSpec, LayerSpec, PoolKind};

/// One statement of a model, as the plan takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Index of the top-level statement it belongs to.
    pub index: usize,
    /// Its path (`5`, `5.1.0`): tensors are named `layer{path}.{tensor}`.
    pub path: String,
    pub kind: NodeKind,
}

/// What a node does.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A layer.
    Layer(LayerSpec),
    /// Branches fed the same input, then joined (`spec.inputs` branches; an
    /// empty branch is the input itself). A `repeat` or a block use is no
    /// node of its own: its statements are nodes of the enclosing chain.
    Join {
        spec: JoinSpec,
        branches: Vec<Vec<Node>>,
    },
}

/// The plan under construction.
#[derive(Default)]
struct Builder {
    buffers: Vec<Buffer>,
    buffer_total: usize,
    tensors: Vec<Tensor>,
    param_total: usize,
    argmax_total: usize,
    stats_total: usize,
    steps: Vec<Step>,
    operands: Vec<Operand>,
    flops: usize,
    /// Statements (leaves) numbered so far: the next [`Step::id`].
    leaves: usize,
}

/// A buffer and the per-sample shape it holds.
type Value = (usize, Vec<usize>);

fn step(layer: LayerSpec, index: usize, input: usize, output: usize) -> Step {
    Step {
        layer,
        index,
        id: 0,
        input,
        accumulate: false,
        operands: (0, 0),
        output,
        tensors: (0, 0),
        argmax: 0,
        stats: 0,
        fused_softmax: false,
        needs_dx: false,
        needs_backward: false,
        fold: None,
        fold_act: None,
        folded: false,
    }
}

impl Builder {
    fn buffer(&mut self, len: usize) -> Result<usize, String> {
        self.buffers.push(Buffer {
            len,
            offset: self.buffer_total,
            place: None,
        });
        // Whole 64-byte runs, so that every buffer of a 64-byte-aligned arena
        // starts aligned (a vector load of an unaligned one straddles lines).
        self.buffer_total = self
            .buffer_total
            .checked_add(len.next_multiple_of(16))
            .filter(|&n| n <= MAX_LEN)
            .ok_or_else(|| bad("buffers too large".into()))?;
        Ok(self.buffers.len() - 1)
    }

    /// The steps of one layer (see [`expand`]) on `cur`.
    fn layer(
        &mut self,
        node: &Node,
        spec: &LayerSpec,
        last: bool,
        cur: Value,
    ) -> Result<Value, String> {
        let i = node.index;
        let id = self.leaves;
        self.leaves += 1;
        self.flops = self.flops.saturating_add(spec.flops());
        let (mut buf, mut shape) = cur;
        for (spec, pointwise) in expand(*spec, last) {
            let (out_shape, params) = layer_shapes(i, &spec, &shape)?;
            let out_len = checked_len(&out_shape)?;
            if out_len == 0 {
                return Err(bad(format!("layer {i}: empty output {out_shape:?}")));
            }
            let output = if matches!(spec, LayerSpec::Flatten { .. }) {
                buf
            } else {
                self.buffer(out_len)?
            };
            let first = self.tensors.len();
            for (name, (shape, init, trainable)) in
                tensor_names(&spec, pointwise).into_iter().zip(params)
            {
                let len = checked_len(&shape)?;
                self.tensors.push(Tensor {
                    name: Cow::Owned(format!("layer{}.{name}", node.path)),
                    shape: Cow::Owned(shape),
                    offset: self.param_total,
                    len,
                    init,
                    trainable,
                });
                self.param_total = self
                    .param_total
                    .checked_add(len)
                    .filter(|&n| n <= MAX_LEN)
                    .ok_or_else(|| bad("too many parameters".into()))?;
            }
            let mut s = step(spec, i, buf, output);
            s.id = id;
            s.tensors = (first, self.tensors.len());
            s.argmax = self.argmax_total;
            if let LayerSpec::Pool2d(p) = spec {
                if p.kind != PoolKind::Avg {
                    self.argmax_total += out_len;
                }
            }
            s.stats = self.stats_total;
            if let LayerSpec::BatchNorm(b) = spec {
                self.stats_total += 2 * b.c;
            }
            self.steps.push(s);
            (buf, shape) = (output, out_shape);
        }
        Ok((buf, shape))
    }

    /// A chain of nodes on `cur` (`last`: the model's final chain, whose last
    /// layer may end in the softmax that training fuses with the loss).
    fn chain(&mut self, nodes: &[Node], last: bool, mut cur: Value) -> Result<Value, String> {
        for (k, node) in nodes.iter().enumerate() {
            let last = last && k + 1 == nodes.len();
            cur = match &node.kind {
                NodeKind::Layer(spec) => self.layer(node, spec, last, cur)?,
                NodeKind::Join { spec, branches } => self.join(node, spec, branches, cur)?,
            };
        }
        Ok(cur)
    }

    fn join(
        &mut self,
        node: &Node,
        spec: &JoinSpec,
        branches: &[Vec<Node>],
        cur: Value,
    ) -> Result<Value, String> {
        let i = node.index;
        if branches.len() != spec.inputs || branches.is_empty() {
            return Err(bad(format!(
                "layer {i}: a join of {} inputs with {} branches",
                spec.inputs,
                branches.len()
            )));
        }
        let mut outs = Vec::with_capacity(branches.len());
        for b in branches {
            outs.push(self.chain(b, false, cur.clone())?);
        }
        let (lead, _) = outs[0].1.split_at(outs[0].1.len() - 1);
        let hw: usize = lead.iter().product();
        let mut c = 0usize;
        for (_, shape) in &outs {
            let (l, last) = shape.split_at(shape.len() - 1);
            let fits = match spec.kind {
                JoinKind::Add => shape == &outs[0].1,
                JoinKind::Concat => l == lead,
            };
            if !fits {
                return Err(bad(format!(
                    "layer {i}: branches of shapes {:?} do not join",
                    outs.iter().map(|o| &o.1).collect::<Vec<_>>()
                )));
            }
            c = match spec.kind {
                JoinKind::Add => last[0],
                JoinKind::Concat => c.saturating_add(last[0]),
            };
        }
        if (hw, c) != (spec.hw, spec.c) {
            return Err(bad(format!(
                "layer {i}: join of {}x{}, branches give {hw}x{c}",
                spec.hw, spec.c
            )));
        }
        let mut shape = lead.to_vec();
        shape.push(c);
        let len = checked_len(&shape)?;
        let output = self.buffer(len)?;
        let first = self.operands.len();
        self.operands
            .extend(outs.iter().map(|&(buffer, _)| Operand {
                buffer,
                accumulate: false,
            }));
        self.flops = self.flops.saturating_add(LayerSpec::Join(*spec).flops());
        let mut s = step(LayerSpec::Join(*spec), i, outs[0].0, output);
        s.id = self.leaves;
        self.leaves += 1;
        s.operands = (first, self.operands.len());
        s.tensors = (self.tensors.len(), self.tensors.len());
        self.steps.push(s);
        Ok((output, shape))
    }
}

/// Places each concat input whose one writer can write it with a cell
/// stride, and that nothing else reads, in the concat's output ([`Place`]).
fn place_concat_inputs(
    steps: &[Step],
    buffers: &mut [Buffer],
    operands: &[Operand],
    readers: &[usize],
) {
    let mut writer = vec![None; buffers.len()];
    for s in steps.iter().filter(|s| s.input != s.output) {
        writer[s.output] = Some(s.layer);
    }
    for s in steps {
        let LayerSpec::Join(j) = s.layer else {
            continue;
        };
        let cells = buffers[s.output].len / j.c.max(1);
        if j.kind != JoinKind::Concat || cells == 0 {
            continue;
        }
        let mut at = 0;
        for o in &operands[s.operands.0..s.operands.1] {
            let width = buffers[o.buffer].len / cells;
            let fits = writer[o.buffer].is_some_and(|w| w.writes_cells() && w.channels() == width)
                && readers[o.buffer] == 1;
            if fits {
                buffers[o.buffer].place = Some(Place {
                    buffer: s.output,
                    at,
                    stride: j.c,
                });
            }
            at += width;
        }
    }
}

impl Plan {
    /// The plan of a model's statements on a `[H, W, C]` input (see the
    /// module's description). [`Plan::sequential`] is the plan of a chain.
    ///
    /// Errors when the specs do not chain or the branches of a join do not
    /// join, or a size is zero or absurdly large. A model without layers is
    /// the identity (its output is its input buffer).
    pub fn graph(input: [usize; 3], nodes: &[Node]) -> Result<Plan, String> {
        let in_len = checked_len(&input)?;
        if in_len == 0 {
            return Err(bad(format!("input {input:?} is empty")));
        }
        let mut b = Builder::default();
        b.buffer(in_len)?;
        let (out_buf, out_shape) = b.chain(nodes, true, (0, input.to_vec()))?;
        let Builder {
            mut buffers,
            buffer_total,
            tensors,
            param_total,
            argmax_total,
            stats_total,
            mut steps,
            mut operands,
            flops,
            ..
        } = b;
        debug_assert_eq!(steps.last().map_or(0, |s| s.output), out_buf);
        let ends_in_softmax = matches!(
            steps.last().map(|s| s.layer),
            Some(LayerSpec::Activation {
                act: Activation::Softmax,
                ..
            })
        );
        let first_param = steps
            .iter()
            .position(|s| s.layer.has_params())
            .unwrap_or(steps.len());
        // The pre-activation gradient of a parameterised layer needs scratch when
        // it goes through an activation.
        let nsteps = steps.len();
        let mut dz_len = 0;
        for (pos, s) in steps.iter_mut().enumerate() {
            s.needs_dx = pos > first_param;
            s.needs_backward = pos >= first_param;
            s.fused_softmax = pos + 1 == nsteps && ends_in_softmax;
            if s.layer.has_kernel() && s.layer.activation() != Activation::Linear {
                dz_len = dz_len.max(buffers[s.output].len);
            }
        }
        // Branch points: walking backward, the first reader of a buffer
        // writes its gradient, every later one adds to it.
        let mut written = vec![false; buffers.len()];
        let mut readers = vec![0usize; buffers.len()];
        for s in steps.iter_mut().rev() {
            if s.operands.0 < s.operands.1 {
                for o in &mut operands[s.operands.0..s.operands.1] {
                    o.accumulate = std::mem::replace(&mut written[o.buffer], true);
                    readers[o.buffer] += 1;
                }
            } else if s.input != s.output {
                s.accumulate = std::mem::replace(&mut written[s.input], true);
                readers[s.input] += 1;
            }
        }
        // Inference folds a batchnorm into the layer that feeds it alone, when
        // that layer has no activation between them and nothing else reads
        // that layer's output (a folded layer does not write it).
        for pos in 1..nsteps {
            let (before, after) = steps.split_at_mut(pos);
            let (prev, bn) = (&mut before[pos - 1], &mut after[0]);
            if matches!(bn.layer, LayerSpec::BatchNorm(_))
                && bn.input == prev.output
                && readers[prev.output] == 1
                && prev.layer.fold_stride().is_some()
                && prev.layer.activation() == Activation::Linear
            {
                prev.fold = Some(pos);
                bn.folded = true;
            }
        }
        place_concat_inputs(&steps, &mut buffers, &operands, &readers);
        // It also applies an activation layer that alone reads such a layer's
        // output (or its folded batchnorm's), or a join's, in that layer's
        // kernel: one pass over the activations fewer again. Not softmax,
        // which needs whole rows where a conv's epilogue sees tiles; not
        // after a concat whose inputs are written in place (they are in the
        // concat's own buffer), and not into a layer that cannot write a
        // placed activation's cells.
        for pos in 0..nsteps {
            let s = &steps[pos];
            let absorbs = s.layer.fold_stride().is_some() || matches!(s.layer, LayerSpec::Join(_));
            if s.folded || !absorbs || s.layer.activation() != Activation::Linear {
                continue;
            }
            let placed_into = |out: usize| {
                buffers
                    .iter()
                    .any(|b| b.place.is_some_and(|p| p.buffer == out))
            };
            if matches!(s.layer, LayerSpec::Join(_)) && placed_into(s.output) {
                continue;
            }
            let last = s.fold.unwrap_or(pos);
            let Some(next) = steps.get(last + 1) else {
                continue;
            };
            if matches!(next.layer, LayerSpec::Activation { act, .. } if act != Activation::Softmax)
                && next.input == steps[last].output
                && readers[next.input] == 1
                && (buffers[next.output].place.is_none() || s.layer.writes_cells())
            {
                steps[pos].fold_act = Some(last + 1);
                steps[last + 1].folded = true;
            }
        }
        // The final softmax's input holds the logits (training leaves the softmax
        // out); a model without one is trained on its output as logits.
        let logits = match steps.last() {
            Some(last) if ends_in_softmax => last.input,
            Some(last) => last.output,
            None => 0,
        };
        let max_sample = buffers.iter().map(|b| b.len).chain([dz_len]).max();
        let batchnorm = steps
            .iter()
            .any(|s| matches!(s.layer, LayerSpec::BatchNorm(_)));
        let split = max_sample.unwrap_or(1) <= SPLIT_MAX_SAMPLE_LEN
            && param_total <= SPLIT_MAX_PARAMS
            && !batchnorm;
        Ok(Plan {
            input,
            output_shape: Cow::Owned(out_shape),
            steps: Cow::Owned(steps),
            buffers: Cow::Owned(buffers),
            tensors: Cow::Owned(tensors),
            operands: Cow::Owned(operands),
            buffer_total,
            argmax_total,
            stats_total,
            dz_len,
            param_total,
            flops: flops.max(1),
            logits,
            ends_in_softmax,
            split,
        })
    }
}
