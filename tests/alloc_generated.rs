//! Steady state allocates nothing: a counting global allocator around generated
//! models. After the first `train_step` (which sizes the buffers, and the
//! optimizer's state), further steps on the same batch size allocate nothing; the
//! same holds for `forward_view` after its first call, and for a smaller batch
//! after a larger one (buffers only grow).
//!
//! One test function only: the count is process-wide (kernels may run on worker
//! threads), so no other test may run beside it.

use cnn::cnn;
use cnn::ndarray::Array4;
use cnn::runtime::{Adam, Sgd};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Counts one allocation (a reallocation counts as one), then makes it.
fn counted(allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    allocate()
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps `alloc`'s contract; it is passed on as is.
        counted(|| unsafe { System.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps `alloc_zeroed`'s contract; passed on as is.
        counted(|| unsafe { System.alloc_zeroed(layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with
        // `layout`: the caller keeps `realloc`'s contract.
        counted(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout` (see `realloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

// The benchmark LeNet-5, `Lenet5`.
cnn!(include "examples/models/lenet5.cnn");

cnn! {
    // Every layer kind: max/min pools (argmax buffers), a standalone softmax.
    model Mixed {
        input 12x12x3;
        conv 4 3x3 same relu;
        maxpool 2;
        minpool 2 stride 1 same;
        conv 5 3x3 stride 2 valid sigmoid;
        flatten;
        dense 7;
        softmax;
    }
}

// A graph with batchnorm and dropout: residual blocks (identity and
// projected shortcuts: summed gradients), a concat (its last branch writes
// its channels in place), a repeated block.
cnn! {
    block basic f {
        residual { conv f 3x3 same nobias; batchnorm; relu; conv f 3x3 same nobias; batchnorm }
        relu
    }
    model Graph {
        input 12x12x3;
        conv 8 3x3 same nobias; batchnorm; relu;
        repeat 2 { basic 8 }
        residual { conv 16 3x3 stride 2 same } shortcut { conv 16 1x1 stride 2; batchnorm }
        concat { } { conv 4 1x1 relu; dropout 0.5 } { maxpool 3 stride 1 same } { conv 4 3x3 same relu };
        globalavgpool;
        dense 7 softmax;
    }
}

// MobileNet's and U-Net's layers: depthwise and separable convs (whose rows
// the pool splits at batch 1), an inverted residual, a transposed conv and
// upsampling, batchnorm folded into convs for inference.
cnn! {
    model Mobile {
        input 12x12x3;
        conv 16 3x3 stride 2 same nobias; batchnorm; relu6;
        residual { conv 32 1x1 nobias; batchnorm; relu6; dwconv 3x3 same nobias; batchnorm; relu6; conv 16 1x1 nobias; batchnorm }
        dwconv 3x3 stride 2 same multiplier 2 relu6;
        sepconv 8 3x3 same relu;
        deconv 8 3x3 stride 2 same relu;
        upsample 2;
        globalavgpool;
        dense 7 softmax;
    }
}

fn batch(b: usize, h: usize, w: usize, c: usize) -> (Array4<f32>, Vec<usize>) {
    let x = Array4::from_shape_fn((b, h, w, c), |(n, i, j, k)| {
        ((n * 7 + i * 3 + j * 5 + k) % 11) as f32 / 11.0
    });
    let labels = (0..b).map(|n| n % 7).collect();
    (x, labels)
}

#[test]
fn steady_state_allocates_nothing() {
    // LeNet, SGD, batch 32.
    let mut net = Lenet5::new(1);
    let (x, labels) = batch(32, 28, 28, 1);
    let mut sgd = Sgd::new(0.05);
    let first = allocations_in(|| {
        net.train_step(x.view(), &labels, &mut sgd).unwrap();
    });
    assert!(first > 0, "the first step sizes the buffers");
    let steady = allocations_in(|| {
        for _ in 0..3 {
            net.train_step(x.view(), &labels, &mut sgd).unwrap();
        }
    });
    assert_eq!(steady, 0, "LeNet train_step after the first step");

    // forward_view: first call on a fresh model sizes the forward buffers only.
    let mut inf = Lenet5::new(2);
    let _ = allocations_in(|| {
        inf.forward_view(x.view()).unwrap();
    });
    let steady = allocations_in(|| {
        for _ in 0..3 {
            let y = inf.forward_view(x.view()).unwrap();
            assert_eq!(y.nrows(), 32);
        }
    });
    assert_eq!(steady, 0, "LeNet forward_view after the first call");
    // A smaller batch reuses the larger buffers.
    let (small, small_labels) = batch(8, 28, 28, 1);
    let steady = allocations_in(|| {
        inf.forward_view(small.view()).unwrap();
        net.train_step(small.view(), &small_labels, &mut sgd)
            .unwrap();
    });
    assert_eq!(steady, 0, "a smaller batch after a larger one");

    // Mixed layers, Adam (its moments are allocated on its first step).
    let mut mixed = Mixed::new(3);
    let (x, labels) = batch(16, 12, 12, 3);
    let mut adam = Adam::new(1e-3);
    mixed.train_step(x.view(), &labels, &mut adam).unwrap();
    let steady = allocations_in(|| {
        for _ in 0..3 {
            mixed.train_step(x.view(), &labels, &mut adam).unwrap();
            mixed.forward_view(x.view()).unwrap();
        }
    });
    assert_eq!(steady, 0, "mixed model with Adam after the first step");

    // A graph with batchnorm and dropout, Adam; folded predictions too.
    let mut graph = Graph::new(4);
    graph.train_step(x.view(), &labels, &mut adam).unwrap();
    graph.predict_view(x.view()).unwrap();
    let steady = allocations_in(|| {
        for _ in 0..3 {
            graph.train_step(x.view(), &labels, &mut adam).unwrap();
            graph.forward_view(x.view()).unwrap();
            graph.predict_view(x.view()).unwrap();
        }
    });
    assert_eq!(
        steady, 0,
        "a graph with batchnorm and dropout after the first step"
    );

    // Depthwise, separable and transposed convs, at the batch sizes of
    // training and of serving one image at a time.
    let mut mobile = Mobile::new(5);
    let (one, _) = batch(1, 12, 12, 3);
    mobile.train_step(x.view(), &labels, &mut adam).unwrap();
    mobile.predict_view(x.view()).unwrap();
    mobile.predict_view(one.view()).unwrap();
    let steady = allocations_in(|| {
        for _ in 0..3 {
            mobile.train_step(x.view(), &labels, &mut adam).unwrap();
            mobile.forward_view(x.view()).unwrap();
            mobile.predict_view(x.view()).unwrap();
            mobile.predict_view(one.view()).unwrap();
        }
    });
    assert_eq!(
        steady, 0,
        "depthwise, separable and transposed convs after the first step"
    );
}
