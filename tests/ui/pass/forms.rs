// The item and expression forms of cnn! (the include form is tested in
// tests/parity_interp.rs: trybuild builds in a directory of its own).
use cnn::cnn;
use cnn::runtime::Model;

cnn! {
    pub model Small {
        input 6x6x1;
        conv 2 3x3 same relu;
        maxpool 2;
        flatten;
        dense 3 softmax
    }
    model Other { input 2x2x1; flatten; dense 1 }
}

fn main() {
    let mut a = Small::new(1);
    assert_eq!(Small::INPUT_SHAPE, [6, 6, 1]);
    assert_eq!(Small::OUTPUT_SHAPE, [3]);
    let x = cnn::ndarray::Array4::<f32>::ones((4, 6, 6, 1));
    assert_eq!(a.forward(x.view()).unwrap().shape(), &[4, 3]);
    let _ = Other::new(0);
    let mut e = cnn!(input 6x6x1; conv 2 3x3 same relu; maxpool 2; flatten; dense 3 softmax);
    e.reinit(1);
    // Same text and seed: same weights, same outputs.
    assert_eq!(e.forward(x.view()).unwrap(), a.forward(x.view()).unwrap());
    assert_eq!(a.output_shape(), vec![3]);
    // The table of `cnnc summary`: Keras's row names and shapes.
    assert!(Small::summary().contains("l3_dense (Dense)"));
    assert!(Small::summary().contains("(None, 3)"));
}
