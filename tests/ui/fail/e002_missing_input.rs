use cnn::cnn;

cnn! {
    model Net {
        conv 8 3x3 relu;
        flatten;
        dense 10 softmax;
    }
}

fn main() {}
