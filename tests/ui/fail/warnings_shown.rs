// Warnings as a user sees them beside an error of their own (here a type
// error; the model compiles): rustc's `warning:` on the token, named after the
// warning's code and kind.
use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        conv 4 3x3 relu;
        batchnorm;
        batchnorm;
        flatten;
        dense 10 softmax;
        dropout 0.5;
    }
}

fn main() {
    let _net = Net::new(0);
    let _not_a_model: u8 = "model";
}
