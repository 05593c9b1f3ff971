use cnn::cnn;

cnn! {
    model Net {
        input 100000x100000x1000;
        conv 64 3x3 same;
        flatten;
        dense 10;
    }
}

fn main() {}
