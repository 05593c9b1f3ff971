//! The interpreter against the language-2 Keras oracle: every case (graphs included)
//! of `../shared/oracle/goldens2/` (FORMAT2.md), compiled from its `model.cnn`
//! and run through the compiler's one lowering, with every check of
//! `check_case2`. All cases run; the failures are listed together.

mod codegen_support;

use codegen_support::oracle2::{all_cases, check_case2, goldens2};

#[test]
fn every_case_matches_keras() {
    let cases = all_cases();
    assert!(cases.len() >= 30, "only {} cases found", cases.len());
    let mut failed = Vec::new();
    for case in &cases {
        let src = std::fs::read_to_string(goldens2().join(case).join("model.cnn")).unwrap();
        let compiled = cnn_compiler::compile(&src, "Case");
        if compiled.has_errors() {
            failed.push(format!("{case}: {:?}", compiled.diagnostics));
            continue;
        }
        let run = std::panic::catch_unwind(|| {
            let mut m = cnn::lower::interpreter(&compiled.models[0], 0).expect("plan");
            check_case2(&mut m, case);
        });
        if let Err(e) = run {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{case}: {msg}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases fail:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
