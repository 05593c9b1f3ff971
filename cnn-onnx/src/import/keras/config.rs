//! A Keras model config, Sequential or Functional, in Keras 3's spelling or
//! Keras 2's, as its layers in order, each with the layers it reads.

use serde_json::{Map, Value};

use super::super::ImportError;

/// Largest number of layers read.
const MAX_LAYERS: usize = 100_000;

/// One layer of the model.
#[derive(Debug)]
pub(crate) struct KLayer<'a> {
    pub name: String,
    /// Its class (`Conv2D`, `InputLayer`, ...).
    pub class: String,
    /// Its `config` object.
    pub config: &'a Map<String, Value>,
    /// The layers whose outputs it reads, in order (none for the input).
    pub inputs: Vec<String>,
}

/// The model: its layers in an order where each comes after those it
/// reads, the first being the input layer.
#[derive(Debug)]
pub(crate) struct ModelConfig<'a> {
    pub name: String,
    pub layers: Vec<KLayer<'a>>,
    /// The input's `[H, W, C]` (or `[n]`).
    pub input_shape: Vec<usize>,
    /// The layer whose output is the model's.
    pub output: String,
}

fn bad(what: impl std::fmt::Display) -> ImportError {
    ImportError::NotKeras(format!("model config: {what}"))
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ImportError> {
    v.as_object()
        .ok_or_else(|| bad(format!("{what} is not an object")))
}

fn text<'a>(m: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, ImportError> {
    m.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{what} has no string '{key}'")))
}

/// The model config of `top` (`{"class_name": ..., "config": {...}}`).
pub(crate) fn parse(top: &Value) -> Result<ModelConfig<'_>, ImportError> {
    let top = obj(top, "the model")?;
    let class = text(top, "class_name", "the model")?;
    let config = obj(
        top.get("config")
            .ok_or_else(|| bad("the model has no 'config'"))?,
        "the model's config",
    )?;
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("imported")
        .to_string();
    let layers = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the model's config has no list 'layers'"))?;
    if layers.len() > MAX_LAYERS {
        return Err(bad(format!("{} layers", layers.len())));
    }
    match class {
        "Sequential" => sequential(name, config, layers),
        "Functional" | "Model" => functional(name, config, layers),
        c => Err(ImportError::Layer {
            layer: name,
            class: c.to_string(),
            reason: "a model class other than Sequential and Functional".into(),
        }),
    }
}

/// A layer's name and class.
fn head(v: &Value) -> Result<(String, String, &Map<String, Value>), ImportError> {
    let l = obj(v, "a layer")?;
    let class = text(l, "class_name", "a layer")?.to_string();
    let config = obj(
        l.get("config")
            .ok_or_else(|| bad(format!("a {class} layer has no 'config'")))?,
        "a layer's config",
    )?;
    let name = l
        .get("name")
        .or_else(|| config.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("a {class} layer has no name")))?
        .to_string();
    Ok((name, class, config))
}

/// A shape list with the batch axis first (`[null, 28, 28, 1]`), without it.
fn batch_shape(v: &Value) -> Option<Vec<usize>> {
    let a = v.as_array()?;
    let (first, rest) = a.split_first()?;
    if !first.is_null() && first.as_u64().is_none() {
        return None;
    }
    rest.iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect()
}

/// The input shape an `InputLayer`'s config (or a first layer's) states.
fn stated_input(c: &Map<String, Value>) -> Option<Vec<usize>> {
    ["batch_shape", "batch_input_shape"]
        .iter()
        .find_map(|k| c.get(*k).and_then(batch_shape))
}

fn input_error(name: &str) -> ImportError {
    bad(format!(
        "the input '{name}' states no shape with fixed sizes ([null, H, W, C])"
    ))
}

fn sequential<'a>(
    name: String,
    config: &'a Map<String, Value>,
    layers: &'a [Value],
) -> Result<ModelConfig<'a>, ImportError> {
    let mut out = Vec::with_capacity(layers.len());
    let mut input_shape = None;
    let mut prev: Option<String> = None;
    for v in layers {
        let (lname, class, c) = head(v)?;
        if class == "InputLayer" {
            if prev.is_some() {
                return Err(bad(format!("input layer '{lname}' after other layers")));
            }
            input_shape = Some(stated_input(c).ok_or_else(|| input_error(&lname))?);
        } else if prev.is_none() {
            // No InputLayer: the shape is the first layer's, or the model's.
            input_shape = stated_input(c)
                .or_else(|| config.get("build_input_shape").and_then(batch_shape))
                .or_else(|| {
                    v.get("build_config")
                        .and_then(|b| b.get("input_shape"))
                        .and_then(batch_shape)
                });
            let input = KLayer {
                name: "input".to_string(),
                class: "InputLayer".to_string(),
                config: c,
                inputs: Vec::new(),
            };
            prev = Some(input.name.clone());
            out.push(input);
        }
        let inputs = prev.iter().cloned().collect();
        prev = Some(lname.clone());
        out.push(KLayer {
            name: lname,
            class,
            config: c,
            inputs,
        });
    }
    let output = prev.ok_or_else(|| bad("a Sequential model without layers"))?;
    let input_shape = input_shape.ok_or_else(|| input_error(&name))?;
    Ok(ModelConfig {
        name,
        layers: out,
        input_shape,
        output,
    })
}

/// The (layer, node index, tensor index) of a Keras 3 tensor or a Keras 2
/// inbound entry.
fn history(v: &Value) -> Option<(String, u64, u64)> {
    let h = match v {
        Value::Object(m) => m.get("config")?.get("keras_history")?,
        Value::Array(_) => v,
        _ => return None,
    };
    let a = h.as_array()?;
    Some((
        a.first()?.as_str()?.to_string(),
        a.get(1)?.as_u64()?,
        a.get(2)?.as_u64()?,
    ))
}

/// The Keras 3 tensors in `v`, depth first (the args of a call: a tensor,
/// or a list of them for a join).
fn tensors(v: &Value, out: &mut Vec<(String, u64, u64)>, depth: usize) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Object(m)
            if m.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            if let Some(h) = history(v) {
                out.push(h);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| tensors(x, out, depth + 1)),
        _ => {}
    }
}

/// The layers one layer reads, from its `inbound_nodes`.
fn inbound(name: &str, class: &str, v: &Value) -> Result<Vec<String>, ImportError> {
    let nodes = match v.get("inbound_nodes") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad(format!("layer '{name}': inbound_nodes is not a list"))),
    };
    let unsupported = |reason: String| ImportError::Layer {
        layer: name.to_string(),
        class: class.to_string(),
        reason,
    };
    match nodes.len() {
        0 => return Ok(Vec::new()),
        1 => {}
        n => {
            return Err(unsupported(format!(
                "applied {n} times (a layer shared by several calls; the language's layers each have their own weights)"
            )))
        }
    }
    let node = &nodes[0];
    let mut found = Vec::new();
    match node {
        // Keras 3: {"args": [...], "kwargs": {...}}.
        Value::Object(m) => {
            if let Some(args) = m.get("args") {
                tensors(args, &mut found, 0);
            }
            let mut extra = Vec::new();
            if let Some(kwargs) = m.get("kwargs").and_then(Value::as_object) {
                for v in kwargs.values() {
                    tensors(&Value::Array(vec![v.clone()]), &mut extra, 0);
                }
            }
            if !extra.is_empty() {
                return Err(unsupported(
                    "a call with tensors as keyword arguments (a mask?)".into(),
                ));
            }
        }
        // Keras 2: [["layer", node, tensor, {kwargs}], ...].
        Value::Array(entries) => {
            for e in entries {
                found.push(history(e).ok_or_else(|| {
                    bad(format!(
                        "layer '{name}': an inbound entry {e} is not [name, node, tensor, ...]"
                    ))
                })?);
            }
        }
        _ => return Err(bad(format!("layer '{name}': an inbound node is {node}"))),
    }
    found
        .into_iter()
        .map(|(l, n, t)| {
            if n != 0 || t != 0 {
                Err(unsupported(format!(
                    "reads output {t} of call {n} of layer '{l}' (layers with several calls or outputs)"
                )))
            } else {
                Ok(l)
            }
        })
        .collect()
}

/// The one layer named in `input_layers` / `output_layers` (Keras 2 nests
/// `[["name", 0, 0]]`, Keras 3 may write `["name", 0, 0]`).
fn the_one(config: &Map<String, Value>, key: &str) -> Result<String, ImportError> {
    let v = config
        .get(key)
        .ok_or_else(|| bad(format!("the model's config has no '{key}'")))?;
    let list: Vec<&Value> = match v.as_array() {
        Some(a) if a.first().is_some_and(Value::is_string) => vec![v],
        Some(a) => a.iter().collect(),
        None => Vec::new(),
    };
    match list.as_slice() {
        [one] => history(one)
            .map(|(l, _, _)| l)
            .ok_or_else(|| bad(format!("'{key}' is {v}"))),
        _ => Err(ImportError::Unsupported {
            node: key.to_string(),
            op: "Functional".to_string(),
            reason: format!(
                "{} entries; the language's models have one input and one output",
                list.len()
            ),
        }),
    }
}

fn functional<'a>(
    name: String,
    config: &'a Map<String, Value>,
    layers: &'a [Value],
) -> Result<ModelConfig<'a>, ImportError> {
    let input = the_one(config, "input_layers")?;
    let output = the_one(config, "output_layers")?;
    let mut out: Vec<KLayer<'a>> = Vec::with_capacity(layers.len());
    let mut input_shape = None;
    for v in layers {
        let (lname, class, c) = head(v)?;
        if class == "InputLayer" {
            if lname != input {
                return Err(bad(format!(
                    "input layer '{lname}' is not the model's input '{input}'"
                )));
            }
            input_shape = Some(stated_input(c).ok_or_else(|| input_error(&lname))?);
            // The input first, whatever its place in the list.
            out.insert(
                0,
                KLayer {
                    name: lname,
                    class,
                    config: c,
                    inputs: Vec::new(),
                },
            );
            continue;
        }
        let inputs = inbound(&lname, &class, v)?;
        if inputs.is_empty() {
            return Err(bad(format!("layer '{lname}' reads nothing")));
        }
        out.push(KLayer {
            name: lname,
            class,
            config: c,
            inputs,
        });
    }
    let input_shape = input_shape.ok_or_else(|| input_error(&input))?;
    // Each layer after those it reads (Keras lists them so; checked).
    let mut seen = std::collections::HashSet::new();
    for l in &out {
        for i in &l.inputs {
            if !seen.contains(i.as_str()) {
                return Err(bad(format!(
                    "layer '{}' reads '{i}', which is not a layer listed before it",
                    l.name
                )));
            }
        }
        if !seen.insert(l.name.as_str()) {
            return Err(bad(format!("two layers are named '{}'", l.name)));
        }
    }
    if !seen.contains(output.as_str()) {
        return Err(bad(format!("the output layer '{output}' is not listed")));
    }
    Ok(ModelConfig {
        name,
        layers: out,
        input_shape,
        output,
    })
}
