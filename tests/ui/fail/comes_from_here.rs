use cnn::cnn;

// Where a wrong shape comes from is a span of its own, also when that place is
// outside the branch (the residual's input) or inside a block (its body, for
// the use that fails, named in a note).
cnn! {
    block down f {
        conv f 5x5 relu;
        maxpool 2
    }
    model Branch {
        input 12x12x3;
        conv 16 3x3 relu;
        maxpool 2;
        residual { conv 16 7x7 }
        flatten;
        dense 10 softmax
    }
    model Blocks {
        input 32x32x3;
        down 16;
        down 32;
        down 64;
        flatten;
        dense 10 softmax
    }
}

fn main() {}
