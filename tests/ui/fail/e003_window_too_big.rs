use cnn::cnn;

// LeNet-5 on 28x28 without same padding: the third conv gets a 4x4 input.
cnn! {
    pub model LeNet28 {
        input 28x28x1;
        conv 6 5x5 tanh;
        avgpool 2;
        conv 16 5x5 tanh;
        avgpool 2;
        conv 120 5x5 tanh;
        flatten;
        dense 84 tanh;
        dense 10 softmax;
    }
}

fn main() {}
