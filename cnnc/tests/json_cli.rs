//! `--format json` on train, eval and predict: results on stdout that a script
//! can parse, with the same numbers the text form prints.

mod common;

use common::cnnc_ok;

#[test]
fn train_eval_and_predict_speak_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.cnn");
    std::fs::write(
        &model,
        "input 16x16x3; conv 4 3x3 same relu; maxpool 2; flatten; dense 5 softmax;",
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let w = dir.path().join("w.safetensors");
    let ws = w.to_str().unwrap();
    let lines = |out: std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    };
    let train = lines(cnnc_ok(&[
        "train",
        m,
        "--data",
        "shapes:200",
        "--epochs",
        "2",
        "--batch",
        "16",
        "--save",
        ws,
        "--format",
        "json",
    ]));
    assert_eq!(train.len(), 3, "two epochs and the totals: {train:?}");
    for (k, e) in train[..2].iter().enumerate() {
        assert_eq!(e["epoch"], k + 1);
        for key in [
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "seconds",
            "steps",
        ] {
            assert!(e[key].is_number(), "{key} in {e}");
        }
    }
    let done = &train[2];
    assert_eq!(
        done["steps"],
        2 * 13,
        "200 training images in batches of 16"
    );
    assert_eq!(done["test_accuracy"], train[1]["val_accuracy"]);
    assert_eq!(done["saved"], ws);

    let eval = lines(cnnc_ok(&[
        "eval",
        m,
        "--weights",
        ws,
        "--data",
        "shapes:200",
        "--format",
        "json",
    ]));
    assert_eq!(eval.len(), 1);
    assert_eq!(eval[0]["examples"], 40);
    // The same evaluation as the run's last validation, in f32.
    let (a, b) = (
        eval[0]["accuracy"].as_f64().unwrap(),
        done["test_accuracy"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");

    let x = dir.path().join("x.npy");
    cnn::runtime::io::write_npy(&x, &[2, 16, 16, 3], &vec![0.5; 2 * 16 * 16 * 3]).unwrap();
    let pred = lines(cnnc_ok(&[
        "predict",
        m,
        "--weights",
        ws,
        "--input",
        x.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let p = &pred[0]["predictions"];
    assert_eq!(p.as_array().unwrap().len(), 2);
    let top = p[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    assert!(
        top[0]["class"].is_string()
            && top[0]["value"].as_f64().unwrap() >= top[1]["value"].as_f64().unwrap()
    );
}
