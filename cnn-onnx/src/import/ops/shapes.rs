//! Shape arithmetic: the `Shape`, `Gather`, `Unsqueeze`, `Concat` chain
//! PyTorch writes for `x.view(x.size(0), -1)`, folded to the integer vector
//! it computes (the batch size unknown), so that the `Reshape` it feeds is
//! read as a flatten.

use super::*;

impl Mapper<'_> {
    /// The integer vector `name` holds: a folded shape, or an int constant.
    fn int_vec(&self, name: &str) -> Option<Vec<Option<i64>>> {
        if self.names.contains_key(name) {
            return None;
        }
        self.shapes.get(name).cloned().or_else(|| {
            self.g
                .consts
                .get(name)
                .and_then(|t| t.ints())
                .filter(|v| v.len() <= 16)
                .map(|v| v.iter().map(|&x| Some(x)).collect())
        })
    }

    /// Folds `n` when it computes on shapes; `false` for other nodes.
    pub(super) fn shape_op(&mut self, n: &Node) -> Result<bool, ImportError> {
        let first = n.inputs.first().map(String::as_str).unwrap_or("");
        let folded: Vec<Option<i64>> = match n.op.as_str() {
            "Shape" => {
                let (_, f) = self.one(n)?;
                let dims: Vec<Option<i64>> = match f {
                    Form::Image { h, w, c } => {
                        vec![None, Some(c as i64), Some(h as i64), Some(w as i64)]
                    }
                    Form::Nhwc { h, w, c } => {
                        vec![None, Some(h as i64), Some(w as i64), Some(c as i64)]
                    }
                    Form::Pooled(c) => vec![None, Some(c as i64), Some(1), Some(1)],
                    Form::Vector { n: len, .. } => vec![None, Some(len as i64)],
                };
                let r = dims.len() as i64;
                let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
                let (s, e) = (clamp(int(n, "start", 0)?), clamp(int(n, "end", r)?));
                dims.get(s..e.max(s)).unwrap_or(&[]).to_vec()
            }
            "Gather" => {
                let Some(v) = self.int_vec(first) else {
                    return Ok(false);
                };
                let idx = self
                    .constant(n, 1)
                    .and_then(|t| t.ints())
                    .filter(|i| i.len() == 1);
                let (Some(idx), 0) = (idx, int(n, "axis", 0)?) else {
                    return Err(unsupported(
                        n,
                        "gathers from a shape with other than one constant index on axis 0",
                    ));
                };
                let len = v.len() as i64;
                let i = if idx[0] < 0 { idx[0] + len } else { idx[0] };
                match usize::try_from(i).ok().and_then(|i| v.get(i)) {
                    Some(x) => vec![*x],
                    None => {
                        return Err(unsupported(
                            n,
                            format!("index {} out of a shape of {len}", idx[0]),
                        ))
                    }
                }
            }
            "Unsqueeze" | "Squeeze" | "Cast" => match self.int_vec(first) {
                Some(v) if v.len() == 1 || n.op == "Cast" => v,
                Some(v) => return Err(unsupported(n, format!("on a shape of {} values", v.len()))),
                None => return Ok(false),
            },
            "Concat" => {
                let parts: Option<Vec<Vec<Option<i64>>>> =
                    n.inputs.iter().map(|i| self.int_vec(i)).collect();
                match parts {
                    Some(p)
                        if !n.inputs.is_empty()
                            && n.inputs.iter().any(|i| self.shapes.contains_key(i)) =>
                    {
                        p.concat()
                    }
                    _ => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        let o = self.out_name(n)?.to_string();
        self.shapes.insert(o, folded);
        Ok(true)
    }

    /// The target shape of a `Reshape`: constant, or folded with the batch
    /// size kept (`0`).
    pub(super) fn reshape_target(&self, n: &Node) -> Result<Vec<i64>, ImportError> {
        let name = n.inputs.get(1).map(String::as_str).unwrap_or("");
        if let Some(v) = self.shapes.get(name) {
            return v
                .iter()
                .enumerate()
                .map(|(i, x)| match (i, x) {
                    (_, Some(x)) => Ok(*x),
                    (0, None) => Ok(0),
                    _ => Err(unsupported(
                        n,
                        "a shape whose unknown size is not the batch",
                    )),
                })
                .collect();
        }
        Ok(self
            .required(n, 1, "shape")?
            .ints()
            .ok_or_else(|| unsupported(n, "the shape is not int64"))?
            .to_vec())
    }
}
