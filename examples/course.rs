//! The course's two example models, written with `cnn!`: the `same`/`valid`
//! padding pair on 32x32 RGB images and the 150x150 RGB five-class classifier.
//! Prints their summaries (shapes, parameters, FLOPs, all computed at compile
//! time), runs each once on a random batch, and shows what a wrong input gives.
//!
//! ```text
//! cargo run --release --example course
//! ```

use cnn::cnn;
use cnn::ndarray::{Array, Array4, ArrayView4, Dimension};
use std::time::Instant;

cnn! {
    // `same` keeps 32x32; `valid` shrinks to 30x30.
    pub model CoursePair {
        input 32x32x3;
        conv 32 3x3 same;
        conv 32 3x3 valid;
    }

    // 150x150x32, 75x75x32, 72x72x32, 36x36x32, 41472, 256, 5.
    pub model Seed {
        input 150x150x3;
        conv 32 3x3 same relu;
        maxpool 2;
        conv 32 4x4 valid;
        maxpool 2;
        flatten;
        dense 256 relu;
        dense 5 softmax
    }
}

fn pseudo_random(shape: (usize, usize, usize, usize)) -> Array4<f32> {
    let mut s = 0x2545_f491_u32;
    Array4::from_shape_fn(shape, |_| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s >> 8) as f32 / (1u32 << 24) as f32
    })
}

/// Runs `forward` once on a pseudo-random batch of `shape` and prints how long
/// it took; returns the output.
fn run_once<D: Dimension>(
    name: &str,
    shape: (usize, usize, usize, usize),
    forward: impl FnOnce(ArrayView4<'_, f32>) -> Result<Array<f32, D>, cnn::Error>,
) -> Result<Array<f32, D>, cnn::Error> {
    let x = pseudo_random(shape);
    let t = Instant::now();
    let y = forward(x.view())?;
    println!(
        "{name}: input {:?} -> output {:?} in {:.1} ms",
        x.shape(),
        y.shape(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(y)
}

fn main() -> Result<(), cnn::Error> {
    println!("{}", CoursePair::summary());
    let mut pair = CoursePair::new(0);
    run_once("CoursePair", (2, 32, 32, 3), |x| pair.forward(x))?;
    println!();

    println!("{}", Seed::summary());
    let mut seed = Seed::new(0);
    let y = run_once("Seed", (4, 150, 150, 3), |x| seed.forward(x))?;
    println!("class probabilities of sample 0: {:.4}", y.row(0));

    // The input size is fixed by the model: anything else is an error, not a panic.
    let wrong = Array4::<f32>::zeros((1, 32, 32, 3));
    match seed.forward(wrong.view()) {
        Ok(_) => println!("unexpected: a 32x32 input was accepted"),
        Err(e) => println!("Seed on a 32x32x3 image: {e}"),
    }
    Ok(())
}
