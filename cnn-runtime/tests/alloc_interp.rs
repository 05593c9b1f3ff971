//! A counting global allocator shows that interpreted training steps and forward
//! passes allocate nothing once the buffers are sized (after the first step),
//! including the parallel kernels (the thread pool passes jobs without boxing).
//!
//! Its own test binary, with a single test, so no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use cnn_runtime::interp::Sequential;
use cnn_runtime::ndarray::Array4;
use cnn_runtime::{
    Activation, Conv2dSpec, DenseSpec, LayerSpec, Model, Optimizer, Padding, Pool2dSpec, PoolKind,
    Window,
};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Sgd(f32);

impl Optimizer for Sgd {
    fn begin_step(&mut self) {}
    fn update(&mut self, _slot: usize, param: &mut [f32], grad: &[f32]) {
        for (p, g) in param.iter_mut().zip(grad) {
            *p -= self.0 * g;
        }
    }
    fn learning_rate(&self) -> f32 {
        self.0
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.0 = lr;
    }
}

/// A model whose convolutions are large enough to use every core.
fn model() -> Sequential {
    let conv = |h: usize, c: usize, f: usize, act| LayerSpec::Conv2d {
        spec: Conv2dSpec::new([h, h, c], f, Window::new([3, 3], Padding::Same)),
        act,
        bias: true,
        groups: 1,
    };
    let pool = |kind, h: usize, c: usize| {
        LayerSpec::Pool2d(Pool2dSpec::new(
            kind,
            [h, h, c],
            Window::new([2, 2], Padding::Valid).stride([2, 2]),
        ))
    };
    let layers = vec![
        conv(32, 3, 16, Activation::Relu),
        pool(PoolKind::Max, 32, 16),
        conv(16, 16, 32, Activation::Tanh),
        pool(PoolKind::Avg, 16, 32),
        LayerSpec::Flatten { len: 8 * 8 * 32 },
        LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 2048,
                units: 64,
            },
            act: Activation::Sigmoid,
            bias: true,
        },
        LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 64,
                units: 10,
            },
            act: Activation::Softmax,
            bias: true,
        },
    ];
    Sequential::new([32, 32, 3], layers, 3).unwrap()
}

#[test]
fn steady_state_steps_do_not_allocate() {
    let batch = 16;
    let mut net = model();
    let x = Array4::from_shape_fn((batch, 32, 32, 3), |(n, h, w, c)| {
        ((n * 31 + h * 7 + w * 3 + c) % 17) as f32 / 17.0
    });
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut opt = Sgd(0.01);
    // First steps size every buffer (model, kernels' scratch, pool threads, thread-locals).
    for _ in 0..2 {
        net.train_batch(x.view(), &labels, &mut opt).unwrap();
        net.forward(x.view()).unwrap();
    }
    let mut per_run = Vec::new();
    for steps in [3usize, 10] {
        let before = ALLOCS.load(Ordering::SeqCst);
        let mut loss = 0.0;
        for _ in 0..steps {
            loss = net.train_batch(x.view(), &labels, &mut opt).unwrap();
        }
        let out = net.forward(x.view()).unwrap()[[0, 0]];
        let after = ALLOCS.load(Ordering::SeqCst);
        assert!(loss.is_finite() && out.is_finite());
        per_run.push(after - before);
    }
    assert_eq!(
        per_run,
        vec![0, 0],
        "allocations during 3 and 10 steady-state steps"
    );

    // A smaller batch reuses the buffers; a larger one grows them once.
    let small = x
        .slice(cnn_runtime::ndarray::s![..5, .., .., ..])
        .to_owned();
    let before = ALLOCS.load(Ordering::SeqCst);
    net.train_batch(small.view(), &labels[..5], &mut opt)
        .unwrap();
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst) - before,
        0,
        "smaller batch allocated"
    );
}
