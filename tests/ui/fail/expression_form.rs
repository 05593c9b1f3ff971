use cnn::cnn;

fn main() {
    let _net = cnn!(input 6x6x1; conv 4 3x3 relu; dense 10 softmax);
}
