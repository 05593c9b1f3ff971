//! Keras import: a model saved by Keras (`.keras`, or the legacy `.h5`) to
//! `.cnn` text and its weights, through the same structuring and rendering
//! as the ONNX import: [`file`] reads the config and the weight arrays,
//! [`config`] lists the layers and what each reads, [`layers`] maps them to
//! statements and joins (checking every array's shape); the forks and joins
//! then become nested blocks.

mod config;
mod file;
mod layers;

use super::{render, structure, ImportError, Imported};

/// The `.cnn` model and weights of the Keras model file `bytes` (a `.keras`
/// zip or an `.h5` HDF5 file, told apart by their first bytes). `name`
/// names the model block (default: from the Keras model's name).
///
/// Weights are named by the statements' paths (`layer3.1.0.kernel`), in
/// Keras's layouts, which are the runtime's.
///
/// # Errors
/// [`ImportError`]: bytes that are not a Keras model file, a layer the
/// language cannot express (named, with the setting at fault), weights
/// that do not fit their layer; never a different model.
///
/// ```
/// let err = cnn_onnx::import_keras(b"not keras", None).unwrap_err();
/// assert!(err.to_string().starts_with("not a Keras model"));
/// ```
pub fn import_keras(bytes: &[u8], name: Option<&str>) -> Result<Imported, ImportError> {
    let saved = file::read(bytes)?;
    let model = config::parse(&saved.config)?;
    let items = layers::map(&model, &saved)?;
    let tree = structure::structure(&items)?;
    let name = render::model_name(name.unwrap_or(&model.name));
    let comment = format!(
        "Imported from Keras (model '{}').",
        model
            .name
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
    );
    let r = render::render(&name, &comment, &items, &tree);
    checked(&r, &name)?;
    Ok(Imported {
        name,
        source: r.source,
        weights: r.weights,
    })
}

/// The rendered text compiled: a value the language does not take (an
/// epsilon of 0, a dropout rate of 1...) is an error naming the Keras layer
/// it came from, with the compiler's message.
fn checked(r: &render::Rendered, name: &str) -> Result<(), ImportError> {
    let c = cnn_compiler::compile(&r.source, name);
    let Some(d) = c
        .diagnostics
        .iter()
        .find(|d| d.severity == cnn_compiler::diag::Severity::Error)
    else {
        return Ok(());
    };
    let line = r.source[..d.span.start.min(r.source.len())]
        .matches('\n')
        .count();
    Err(match r.origins.get(line).cloned().flatten() {
        Some((layer, class)) => ImportError::Layer {
            layer,
            class,
            reason: d.message.clone(),
        },
        None => ImportError::NotKeras(format!(
            "the model does not fit the language: {}",
            d.message
        )),
    })
}
