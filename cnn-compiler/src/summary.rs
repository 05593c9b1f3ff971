//! Model summaries: a Keras-style `model.summary()` table (plus a FLOPs column)
//! and the JSON object of `cnnc summary --format json`.

use crate::ir::{Activation, Augment, GraphKind, Model, Op, PoolKind, Shape};

/// Keras's class name for a layer (`MinPooling2D` has no Keras twin).
pub fn keras_class(op: &Op) -> &'static str {
    match op {
        Op::Conv(_) => "Conv2D",
        Op::DwConv(_) => "DepthwiseConv2D",
        Op::SepConv(_) => "SeparableConv2D",
        Op::Deconv(_) => "Conv2DTranspose",
        Op::BatchNorm(_) => "BatchNormalization",
        Op::Dropout(_) => "Dropout",
        Op::GlobalPool(PoolKind::Max) => "GlobalMaxPooling2D",
        Op::GlobalPool(_) => "GlobalAveragePooling2D",
        Op::ZeroPad(_) => "ZeroPadding2D",
        Op::Upsample { .. } => "UpSampling2D",
        Op::Augment(a) => match a {
            Augment::Flip { .. } => "RandomFlip",
            Augment::Translate { .. } => "RandomTranslation",
            Augment::Rotate(_) => "RandomRotation",
            Augment::Zoom(_) => "RandomZoom",
        },
        Op::Pool(p) => match p.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Avg => "AveragePooling2D",
            PoolKind::Min => "MinPooling2D",
        },
        Op::Flatten => "Flatten",
        Op::Dense(_) => "Dense",
        // The activations Keras has a layer of its own for.
        Op::Activation(Activation::Relu6) => "ReLU",
        Op::Activation(Activation::LeakyRelu(_)) => "LeakyReLU",
        Op::Activation(Activation::Elu) => "ELU",
        Op::Activation(_) => "Activation",
        // A repeat and a block use are no Keras layer: their layers are.
        Op::Graph(g) => match g.kind {
            GraphKind::Residual { .. } | GraphKind::Add => "Add",
            GraphKind::Concat => "Concatenate",
            GraphKind::Repeat(_) => "repeat",
            GraphKind::Use { .. } => "block",
        },
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in Keras's style: `241.04 KB` (powers of 1024, two decimals).
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

fn keras_shape(s: &Shape) -> String {
    let dims: Vec<String> = s.dims().iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}

/// The summary table as text, like Keras's `model.summary()` with a FLOPs column
/// (FLOPs per sample, see [`crate::ir::Layer::flops`]). The layers of a graph
/// statement follow it, indented, named by their paths (`l5.1.0_conv`); a
/// graph statement's counts include its layers'.
pub fn summary_text(m: &Model) -> String {
    let header = ["Layer (type)", "Output Shape", "Param #", "FLOPs"];
    let rows: Vec<[String; 4]> = m
        .walk()
        .into_iter()
        .map(|(depth, l)| {
            [
                format!(
                    "{}l{}_{} ({})",
                    "  ".repeat(depth),
                    l.path,
                    l.op.keyword(),
                    keras_class(&l.op)
                ),
                keras_shape(&l.output),
                thousands(l.param_count),
                thousands(l.flops),
            ]
        })
        .collect();
    let mut w = header.map(|h| h.len());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    // Keras leaves generous room; keep at least its look for short models.
    w[0] = w[0].max(28);
    w[1] = w[1].max(22);
    w[2] = w[2].max(11);
    w[3] = w[3].max(13);
    let line = |l: char, fill: char, mid: char, r: char| {
        let parts: Vec<String> = w.iter().map(|n| fill.to_string().repeat(n + 2)).collect();
        format!("{l}{}{r}\n", parts.join(&mid.to_string()))
    };
    let cells = |sep: char, c: &[String; 4]| {
        let mut s = String::new();
        for i in 0..4 {
            s.push(sep);
            let pad = w[i] - c[i].chars().count();
            if i >= 2 {
                s.push_str(&format!(" {}{} ", " ".repeat(pad), c[i]));
            } else {
                s.push_str(&format!(" {}{} ", c[i], " ".repeat(pad)));
            }
        }
        s.push(sep);
        s.push('\n');
        s
    };
    let mut out = format!("Model: \"{}\"\n", m.name);
    out.push_str(&format!("Input: {}\n", keras_shape(&m.input)));
    out.push_str(&line('┏', '━', '┳', '┓'));
    out.push_str(&cells('┃', &header.map(String::from)));
    out.push_str(&line('┡', '━', '╇', '┩'));
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(&line('├', '─', '┼', '┤'));
        }
        out.push_str(&cells('│', r));
    }
    out.push_str(&line('└', '─', '┴', '┘'));
    // Keras's three lines: batchnorm's moving statistics are parameters, not
    // trainable ones.
    let counts = [
        ("Total", m.total_params),
        ("Trainable", m.total_params - m.non_trainable_params),
        ("Non-trainable", m.non_trainable_params),
    ];
    for (what, n) in counts {
        out.push_str(&format!(
            " {what} params: {} ({})\n",
            thousands(n),
            human_bytes(n.saturating_mul(4))
        ));
    }
    out.push_str(&format!(
        " Total FLOPs: {} per sample\n",
        thousands(m.total_flops)
    ));
    out
}

/// One layer of [`SummaryJson`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerJson {
    /// Index of the top-level statement after `input` it is or is inside.
    pub index: usize,
    /// Its path (`5`, or `5.1.0` inside a graph statement): its tensors are
    /// `layer{path}.{name}`.
    pub path: String,
    /// Nesting depth (0: a top-level statement).
    pub depth: usize,
    /// The statement's keyword (`conv`, `maxpool`, `dense`, `relu`, ...).
    pub op: &'static str,
    /// Output shape without the batch axis.
    pub output: Vec<usize>,
    /// Parameter count, trainable or not.
    pub params: u64,
    /// Of which trainable.
    pub trainable_params: u64,
    /// Of which not (batchnorm's moving statistics).
    pub non_trainable_params: u64,
    /// FLOPs per sample.
    pub flops: u64,
}

/// The object of `cnnc summary --format json` (fields serialize in this order):
/// `{"model": NAME, "input": [H,W,C], "layers": [{"index": i, "path": "i",
/// "depth": 0, "op": "conv",
/// "output": [..], "params": n, "trainable_params": n, "non_trainable_params": n,
/// "flops": n}, ...], "total_params": n, "trainable_params": n,
/// "non_trainable_params": n}` (the counts as Keras and the oracle name them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SummaryJson {
    /// The model's name.
    pub model: String,
    /// `[H, W, C]`
    pub input: Vec<usize>,
    /// One entry per statement after `input`, nested ones included, in
    /// pre-order (a graph statement, then its branches' statements).
    pub layers: Vec<LayerJson>,
    /// Sum of the layers' parameter counts.
    pub total_params: u64,
    /// Of which trainable.
    pub trainable_params: u64,
    /// Of which not.
    pub non_trainable_params: u64,
}

/// The summary of `m` as [`SummaryJson`] (serialize it with `serde_json`).
pub fn summary_json(m: &Model) -> SummaryJson {
    SummaryJson {
        model: m.name.clone(),
        input: m.input.dims(),
        layers: m
            .walk()
            .into_iter()
            .map(|(depth, l)| LayerJson {
                index: l.index,
                path: l.path.clone(),
                depth,
                op: l.op.keyword(),
                output: l.output.dims(),
                params: l.param_count,
                trainable_params: l.param_count - l.non_trainable,
                non_trainable_params: l.non_trainable,
                flops: l.flops,
            })
            .collect(),
        total_params: m.total_params,
        trainable_params: m.total_params - m.non_trainable_params,
        non_trainable_params: m.non_trainable_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keras's three parameter lines, batchnorm's moving statistics counted
    /// as non-trainable; the JSON form splits the counts the same way.
    #[test]
    fn trainable_and_non_trainable_params() {
        let c = crate::compile("input 6x6x2; conv 4 3x3 same nobias; batchnorm; relu", "Bn");
        let m = &c.models[0];
        let text = summary_text(m);
        assert!(text.contains(" Total params: 88 (352.00 B)\n"), "{text}");
        assert!(
            text.contains(" Trainable params: 80 (320.00 B)\n"),
            "{text}"
        );
        assert!(
            text.contains(" Non-trainable params: 8 (32.00 B)\n"),
            "{text}"
        );
        let json = serde_json::to_value(summary_json(m)).unwrap();
        assert_eq!(json["layers"][1]["params"], 16);
        assert_eq!(json["layers"][1]["trainable_params"], 8);
        assert_eq!(json["layers"][1]["non_trainable_params"], 8);
        assert_eq!(json["trainable_params"], 80);
        assert_eq!(json["non_trainable_params"], 8);
    }

    #[test]
    fn number_formats_like_keras() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_635_685), "10,635,685");
        assert_eq!(human_bytes(61_706 * 4), "241.04 KB");
        assert_eq!(human_bytes(10_635_685 * 4), "40.57 MB");
        assert_eq!(human_bytes(0), "0.00 B");
    }
}
