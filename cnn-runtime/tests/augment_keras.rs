//! The augmentation layers against their Keras twins: `keras/augment_twins.json`
//! (made by real Keras 3 with `keras/regenerate.sh`) holds a batch, what
//! Keras's `RandomFlip`, `RandomTranslation`, `RandomRotation` and
//! `RandomZoom` made of it, and the transform Keras drew for each image.
//! Each transform rebuilt here (the same matrix as Keras's layer) must give
//! Keras's image within 1e-5: the same centre, directions, interpolation and
//! reflection at the edges.

use cnn_runtime::ops::augment::{resample, Affine};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

#[test]
fn transforms_match_keras() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keras/augment_twins.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let shape: Vec<usize> = data["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let [n, h, w, c] = shape[..] else {
        panic!("shape {shape:?}")
    };
    let len = h * w * c;
    let x = floats(&data["x"]);
    let mut compared = 0;
    for case in data["cases"].as_array().unwrap() {
        let layer = case["layer"].as_str().unwrap();
        let want = floats(&case["y"]);
        assert_eq!(want.len(), n * len, "{layer}");
        for (i, t) in case["transforms"].as_array().unwrap().iter().enumerate() {
            let num = |k: &str| t[k].as_f64().unwrap();
            let affine = match layer {
                "RandomFlip" => {
                    let flip = t["flip"].as_bool().unwrap();
                    let horizontal = case["config"]["mode"] == "horizontal";
                    Affine::flip(flip && horizontal, flip && !horizontal, h, w)
                }
                "RandomTranslation" => Affine::translation(num("dx"), num("dy")),
                "RandomRotation" => Affine::rotation(num("radians"), h, w),
                "RandomZoom" => Affine::zoom(num("zoom"), h, w),
                _ => panic!("unknown layer {layer}"),
            };
            let mut got = vec![f32::NAN; len];
            resample(&affine, [h, w, c], &x[i * len..(i + 1) * len], &mut got);
            let keras = &want[i * len..(i + 1) * len];
            let worst = got
                .iter()
                .zip(keras)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst <= 1e-5,
                "{layer} image {i} ({t}): off by {worst}\n got {got:?}\nwant {keras:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 5 * n, "every case compared");
}
