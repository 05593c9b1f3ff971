use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        conv 4 3x3 same valid;
        flatten;
        dense 10 relu softmax;
    }
}

fn main() {}
