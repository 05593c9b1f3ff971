//! Uses the models the build script generated from `models/*.cnn`.
use cnn::ndarray::Array4;

mod models {
    include!(concat!(env!("OUT_DIR"), "/digits.rs"));
    include!(concat!(env!("OUT_DIR"), "/pair.rs"));
}

fn main() -> Result<(), cnn::Error> {
    println!("{}", models::Digits::summary());
    let mut net = models::Digits::new(42);
    let x = Array4::<f32>::zeros((4, 28, 28, 1));
    let y = net.forward(x.view())?;
    println!("Digits output: {:?}", y.shape());
    let mut opt = cnn::runtime::Sgd::new(0.1);
    let loss = net.train_step(x.view(), &[0, 1, 2, 3], &mut opt)?;
    println!("one training step, loss {loss:.4}");
    let mut tiny = models::Tiny::new(0);
    let mut wide = models::Wide::new(0);
    println!(
        "Tiny -> {:?}",
        tiny.forward(Array4::zeros((1, 8, 8, 1)).view())?.shape()
    );
    println!(
        "Wide -> {:?}",
        wide.forward(Array4::zeros((1, 8, 8, 3)).view())?.shape()
    );
    Ok(())
}
