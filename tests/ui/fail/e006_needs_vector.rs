use cnn::cnn;

cnn! {
    model Net {
        input 8x8x3;
        conv 4 3x3 relu;
        dense 10 softmax;
    }
}

fn main() {}
