use cnn::cnn;

cnn! { model Net { input 4x4x1; flatten; dense 2 } }

fn main() {
    // The model is fine; this program only fails on the type of `y`.
    let mut net = Net::new(0);
    let x = cnn::ndarray::Array4::<f32>::zeros((1, 4, 4, 1));
    let y: u8 = net.forward(x.view());
}
