//! External data (ONNX tensors kept in a file beside the model): an
//! exported model with every initializer moved to one blob imports as the
//! original does, and hostile references (a path out of the folder, a
//! wrong length, an unknown key, a reader's error) are refused naming the
//! initializer.

mod support;

use cnn_onnx::proto::{ModelProto, StringStringEntryProto};
use prost::Message;

const SRC: &str = "input 8x8x2;
conv 4 3x3 same relu;
residual { conv 4 3x3 same nobias; batchnorm }
flatten;
dense 3 softmax;
";

/// The exported model, and the same with its initializers' bytes in a blob
/// (`(location, offset, length)` per tensor as written).
fn models() -> (Vec<u8>, ModelProto, Vec<u8>) {
    let plan = support::plan_of(SRC);
    let bytes = cnn_onnx::export(
        &plan,
        |n| {
            let t = plan.tensors.iter().find(|t| &*t.name == n)?;
            let len: usize = t.shape.iter().product();
            Some((0..len).map(|i| (i % 7) as f32 * 0.1 + 0.5).collect())
        },
        &cnn_onnx::Options::default(),
    )
    .unwrap();
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    let mut blob = Vec::new();
    for t in &mut m.graph.as_mut().unwrap().initializer {
        let raw = match t.raw_data.take() {
            Some(r) => r,
            None => t.float_data.drain(..).flat_map(f32::to_le_bytes).collect(),
        };
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v),
        };
        t.external_data = vec![
            entry("location", "weights.bin".into()),
            entry("offset", blob.len().to_string()),
            entry("length", raw.len().to_string()),
        ];
        t.data_location = Some(1);
        blob.extend_from_slice(&raw);
    }
    (bytes, m, blob)
}

fn reader(blob: &[u8]) -> impl Fn(&str, u64, usize) -> Result<Vec<u8>, String> + '_ {
    move |location, offset, len| {
        assert_eq!(location, "weights.bin");
        let at = offset as usize;
        blob.get(at..at + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "past the end".into())
    }
}

#[test]
fn external_weights_import_as_embedded_ones() {
    let (bytes, m, blob) = models();
    let want = cnn_onnx::import(&bytes, None).unwrap();
    let got = cnn_onnx::import_with_external(&m.encode_to_vec(), None, &reader(&blob)).unwrap();
    assert_eq!(got, want);
    let e = cnn_onnx::import(&m.encode_to_vec(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("external file 'weights.bin'"), "{e}");
}

#[test]
fn hostile_references_are_refused() {
    let (_, m, blob) = models();
    let change = |key: &str, value: &str| {
        let mut m = m.clone();
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        match t
            .external_data
            .iter_mut()
            .find(|e| e.key.as_deref() == Some(key))
        {
            Some(e) => e.value = Some(value.to_string()),
            None => t.external_data.push(StringStringEntryProto {
                key: Some(key.to_string()),
                value: Some(value.to_string()),
            }),
        }
        m.encode_to_vec()
    };
    let any = |_: &str, _: u64, len: usize| -> Result<Vec<u8>, String> { Ok(vec![0; len]) };
    for (key, value, want) in [
        (
            "location",
            "../weights.bin",
            "not a file inside the model's folder",
        ),
        (
            "location",
            "/etc/passwd",
            "not a file inside the model's folder",
        ),
        (
            "location",
            "C:weights.bin",
            "not a file inside the model's folder",
        ),
        (
            "location",
            "a\\..\\b",
            "not a file inside the model's folder",
        ),
        ("location", "", "not a file inside the model's folder"),
        ("length", "4", "the dims and type need"),
        ("offset", "-1", "external data offset"),
        ("hash", "x", "external data key"),
    ] {
        let e = cnn_onnx::import_with_external(&change(key, value), None, &any)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("initializer '") && e.contains(want),
            "{key} = {value}: {e}"
        );
    }
    // The reader's own error (a short file), named with the initializer.
    let short = &blob[..blob.len() / 2];
    let e = cnn_onnx::import_with_external(&m.encode_to_vec(), None, &reader(short))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("initializer '") && e.contains("past the end"),
        "{e}"
    );
}
