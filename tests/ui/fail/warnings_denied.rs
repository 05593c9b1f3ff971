#![deny(deprecated)]
// Warnings do not fail a build; denying them shows what they say and where.
use cnn::cnn;

cnn! {
    model Net {
        input 8x8x1;
        conv 4 3x3 softmax;
        maxpool 1 stride 2;
        flatten;
        dense 10 relu;
        sigmoid;
    }
}

fn main() {}
