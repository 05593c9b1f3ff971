use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        conv 0 3x3;
        flatten;
        dense 10;
    }
}

fn main() {}
