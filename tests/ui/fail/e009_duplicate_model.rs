use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        flatten;
        dense 10;
    }
    model Net {
        input 16x16x1;
        flatten;
        dense 10;
    }
}

fn main() {}
