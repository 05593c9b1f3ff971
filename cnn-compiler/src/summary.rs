//! Model summaries: a Keras-style `model.summary()` table (plus a FLOPs column)
//! and the JSON object of `cnnc summary --format json`.

use crate::ir::{Model, Op, PoolKind, Shape};

/// Keras's class name for a layer (`MinPooling2D` has no Keras twin).
pub fn keras_class(op: &Op) -> &'static str {
    match op {
        Op::Conv(_) => "Conv2D",
        Op::Pool(p) => match p.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Avg => "AveragePooling2D",
            PoolKind::Min => "MinPooling2D",
        },
        Op::Flatten => "Flatten",
        Op::Dense(_) => "Dense",
        Op::Activation(_) => "Activation",
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
/// (FLOPs per sample, see [`crate::ir::Layer::flops`]).
pub fn summary_text(m: &Model) -> String {
    let header = ["Layer (type)", "Output Shape", "Param #", "FLOPs"];
    let rows: Vec<[String; 4]> = m
        .layers
        .iter()
        .map(|l| {
            [
                format!("l{}_{} ({})", l.index, l.op.keyword(), keras_class(&l.op)),
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
    let p = m.total_params;
    out.push_str(&format!(
        " Total params: {} ({})\n",
        thousands(p),
        human_bytes(p.saturating_mul(4))
    ));
    out.push_str(&format!(
        " Trainable params: {} ({})\n",
        thousands(p),
        human_bytes(p.saturating_mul(4))
    ));
    out.push_str(" Non-trainable params: 0 (0.00 B)\n");
    out.push_str(&format!(
        " Total FLOPs: {} per sample\n",
        thousands(m.total_flops)
    ));
    out
}

/// One layer of [`SummaryJson`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerJson {
    /// Statement index after `input` (as in `layer{i}.kernel`).
    pub index: usize,
    /// The statement's keyword (`conv`, `maxpool`, `dense`, `relu`, ...).
    pub op: &'static str,
    /// Output shape without the batch axis.
    pub output: Vec<usize>,
    /// Parameter count.
    pub params: u64,
    /// FLOPs per sample.
    pub flops: u64,
}

/// The object of `cnnc summary --format json` (fields serialize in this order):
/// `{"model": NAME, "input": [H,W,C], "layers": [{"index": i, "op": "conv",
/// "output": [..], "params": n, "flops": n}, ...], "total_params": n}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SummaryJson {
    /// The model's name.
    pub model: String,
    /// `[H, W, C]`
    pub input: Vec<usize>,
    /// One entry per statement after `input`.
    pub layers: Vec<LayerJson>,
    /// Sum of the layers' parameter counts.
    pub total_params: u64,
}

/// The summary of `m` as [`SummaryJson`] (serialize it with `serde_json`).
pub fn summary_json(m: &Model) -> SummaryJson {
    SummaryJson {
        model: m.name.clone(),
        input: m.input.dims(),
        layers: m
            .layers
            .iter()
            .map(|l| LayerJson {
                index: l.index,
                op: l.op.keyword(),
                output: l.output.dims(),
                params: l.param_count,
                flops: l.flops,
            })
            .collect(),
        total_params: m.total_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
