use cnn::cnn;

// Every mistake is reported, each on its own token.
cnn! {
    model Net {
        input 8x8x1;
        conv 4 9x9;
        maxpool 0;
        flatten;
        dense 10 relu;
        conv 2 3x3;
    }
}

fn main() {}
