// A model with only warnings compiles (the warnings are printed, not errors).
use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        conv 4 3x3 softmax;
        maxpool 1 stride 2;
        flatten;
        dense 10 relu;
        sigmoid;
    }
}

fn main() {
    let mut net = Net::new(7);
    let x = cnn::ndarray::Array4::<f32>::zeros((2, 8, 8, 1));
    let y = net.forward(x.view()).unwrap();
    assert_eq!(y.shape(), &[2, 10]);
    // A wrong input shape is an error value, not a panic.
    let bad = cnn::ndarray::Array4::<f32>::zeros((2, 9, 8, 1));
    assert!(net.forward(bad.view()).is_err());
}
