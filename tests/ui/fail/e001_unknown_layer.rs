use cnn::cnn;

cnn! {
    pub model Net {
        input 28x28x1;
        conv 8 3x3 relu;
        maxpooling 2;
        flatten;
        dense 10 softmax;
    }
}

fn main() {}
