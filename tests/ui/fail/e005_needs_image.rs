use cnn::cnn;

cnn! {
    model Net {
        input 20x20x1;
        flatten;
        dense 400 relu;
        conv 8 3x3;
    }
}

fn main() {}
