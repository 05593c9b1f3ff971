//! A tiny persistent thread pool that runs one closure on every core, with no
//! allocation per call.
//!
//! Why not rayon: `rayon::join`/`scope` box a job per spawn, so every parallel
//! kernel call would allocate, and a training step must not allocate in steady
//! state. Here the pool is created once (the only allocation), the job is passed
//! as a borrowed `&dyn Fn(usize)` through a shared slot, and workers wake by
//! spinning briefly and then parking (`park`/`unpark` never allocate).
//!
//! Parts are *claimed* from a shared counter by whichever thread is free, the
//! caller included, and the caller waits only for parts already being run. So a
//! worker that the OS has descheduled (a busy machine) never stalls a step: the
//! caller simply runs its parts too. (A fixed part-per-thread assignment was
//! measured 2x slower than one thread on a loaded 2-core machine for LeNet.)
//!
//! Calls are serialised by a `try_lock`: when the pool is busy (a nested call
//! from inside a job, or two test threads using kernels at once), the caller
//! runs every part itself, in order. Results never depend on which thread ran a
//! part, only on the part index; and where parts' results are summed, the
//! number of parts never depends on the number of threads ([`fixed_parts`]).
//!
//! Every thread also owns a scratch buffer (`with_scratch`), made by each
//! worker when it starts, so that kernels (the GEMM's pack buffers) can use it
//! on whichever thread runs their part without allocating in a steady-state
//! call. This module needs nothing of its users: they depend on it, never the
//! other way round.

use crate::aligned::AlignedVec;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

type Job = *const (dyn Fn(usize) + Sync);

/// `state` layout: epoch in the high 32 bits, part count in bits 16..32, next
/// unclaimed part in bits 0..16. One word, so a claim (CAS) sees a consistent
/// (epoch, parts, next) triple.
const EPOCH_SHIFT: u32 = 32;
const PARTS_SHIFT: u32 = 16;
const FIELD: u64 = 0xffff;
const MAX_PARTS: usize = 1024;

struct Shared {
    state: AtomicU64,
    /// Parts finished in the current job.
    done: AtomicUsize,
    /// Set when a job panicked on a worker.
    panicked: AtomicBool,
    /// Workers that have finished their start-up allocations.
    ready: AtomicUsize,
    /// The current job; written only by the caller holding `lock` while no part
    /// of the previous job runs, before the new epoch is published (Release);
    /// read by a worker only after it claimed a part of that epoch (Acquire).
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: the atomics are Sync; for `job` see above: writes and reads never
// overlap, and are ordered by the Release/Acquire operations on `state`.
unsafe impl Sync for Shared {}
// SAFETY: the job pointer is only dereferenced under the protocol above; the
// rest is plain atomics.
unsafe impl Send for Shared {}

struct Pool {
    shared: &'static Shared,
    workers: Vec<Thread>,
    lock: Mutex<()>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::env::var("CNN_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 64);
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
        }));
        let mut workers = Vec::new();
        for tid in 1..n {
            let spawned = thread::Builder::new()
                .name(format!("cnn-worker-{tid}"))
                .spawn(move || worker_loop(shared));
            match spawned {
                Ok(h) => workers.push(h.thread().clone()),
                // Fewer threads is still correct: the caller runs the missing parts.
                Err(_) => break,
            }
        }
        // Wait (briefly) until every worker made its thread-local buffers, so
        // that they are not allocated during a later, steady-state call.
        let start = Instant::now();
        while shared.ready.load(Ordering::Acquire) < workers.len()
            && start.elapsed() < Duration::from_secs(2)
        {
            thread::yield_now();
        }
        Pool {
            shared,
            workers,
            lock: Mutex::new(()),
        }
    })
}

/// Claims and runs parts of the job of epoch `epoch` until none is left.
fn help(shared: &Shared, epoch: u64) {
    loop {
        let cur = shared.state.load(Ordering::Acquire);
        if cur >> EPOCH_SHIFT != epoch {
            return;
        }
        let parts = ((cur >> PARTS_SHIFT) & FIELD) as usize;
        let next = (cur & FIELD) as usize;
        if next >= parts {
            return;
        }
        if shared
            .state
            .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        // SAFETY: we hold an unfinished part of this epoch, so the caller is still
        // waiting and the job (written before the epoch was published) is alive.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            // SAFETY: as above: the caller's closure outlives every claimed part.
            let f: &(dyn Fn(usize) + Sync) = unsafe { &*job };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(next)));
            if r.is_err() {
                shared.panicked.store(true, Ordering::Release);
            }
        }
        shared.done.fetch_add(1, Ordering::AcqRel);
    }
}

fn worker_loop(shared: &'static Shared) {
    // The scratch buffer now, so that no later (steady-state) job allocates it.
    with_scratch(THREAD_SCRATCH, |_| ());
    shared.ready.fetch_add(1, Ordering::AcqRel);
    let mut seen = shared.state.load(Ordering::Acquire) >> EPOCH_SHIFT;
    loop {
        // Spin a little (kernels come in quick succession during a step), then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = shared.state.load(Ordering::Acquire) >> EPOCH_SHIFT;
            if e != seen {
                break e;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && start.elapsed() >= Duration::from_micros(300) {
                thread::park_timeout(Duration::from_millis(50));
            } else {
                std::hint::spin_loop();
            }
        };
        seen = epoch;
        help(shared, epoch);
    }
}

/// Number of threads the pool runs jobs on (including the caller).
pub fn num_threads() -> usize {
    pool().workers.len() + 1
}

/// Runs `f(0)`, `f(1)`, ..., `f(parts - 1)`, in parallel when the pool is free.
/// Returns when all parts are done.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts == 0 {
        return;
    }
    if parts == 1 {
        f(0);
        return;
    }
    // Every part of a split job runs marked as such, on whichever thread, so
    // that the kernels it calls do not split again (see [`parts_for`]).
    let marked = |i: usize| {
        let _inside = Inside::enter();
        f(i);
    };
    let f: &(dyn Fn(usize) + Sync) = &marked;
    // A test forcing the portable kernels on this thread keeps every part here.
    #[cfg(test)]
    if crate::cpu::forced_portable() {
        (0..parts).for_each(f);
        return;
    }
    let p = pool();
    if parts > MAX_PARTS || p.workers.is_empty() {
        (0..parts).for_each(f);
        return;
    }
    let Ok(guard) = p.lock.try_lock() else {
        (0..parts).for_each(f);
        return;
    };
    let shared = p.shared;
    // SAFETY: erase the borrow's lifetime; we wait until every claimed part is
    // done (and no part can be claimed afterwards) before returning.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
    // SAFETY: we hold `lock` and every part of the previous job is done, so no
    // worker reads the slot until the new epoch is published below.
    unsafe { *shared.job.get() = Some(job) };
    shared.done.store(0, Ordering::Release);
    let epoch = (shared.state.load(Ordering::Acquire) >> EPOCH_SHIFT).wrapping_add(1) & 0xffff_ffff;
    shared.state.store(
        (epoch << EPOCH_SHIFT) | ((parts as u64) << PARTS_SHIFT),
        Ordering::Release,
    );
    for w in &p.workers {
        w.unpark();
    }
    help(shared, epoch);
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < parts {
        spins += 1;
        if spins < 4096 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    // SAFETY: every part is done and none can be claimed any more, so no worker
    // reads the slot; we still hold `lock`.
    unsafe { *shared.job.get() = None };
    let panicked = shared.panicked.swap(false, Ordering::AcqRel);
    drop(guard);
    if panicked {
        panic!("a cnn-runtime worker job panicked");
    }
}

/// Splits `0..n` into `parts` near-equal contiguous ranges; returns range `i`.
pub fn split(n: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    let parts = parts.max(1);
    let base = n / parts;
    let rem = n % parts;
    let start = i * base + i.min(rem);
    let len = base + usize::from(i < rem);
    start..(start + len).min(n)
}

/// How many parts to split work of `flops` floating-point operations over
/// `items` independent items into: 1 for small work (a wake-up costs a few
/// microseconds) and inside a part of a split job (the pool is busy with it),
/// else up to the pool size.
pub fn parts_for(flops: usize, items: usize) -> usize {
    parts_upto(num_threads(), flops, items)
}

/// Calls `f` on near-equal ranges covering `0..n` independent items, on
/// the pool when work of `flops` is worth splitting ([`parts_for`]), else
/// once on the whole range: for passes whose values never depend on the
/// split (element by element, row by row).
pub(crate) fn over_ranges(n: usize, flops: usize, f: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
    let parts = parts_for(flops, n);
    if parts > 1 {
        run(parts, &|t| f(split(n, parts, t)));
    } else {
        f(0..n);
    }
}

/// Most parts of [`fixed_parts`].
pub const FIXED_PARTS: usize = 4;

/// As [`parts_for`], but the count depends on the work alone, never on the
/// pool's size: for work whose parts' results are added up (the parameter
/// gradients of a batch), and for batches cut into parts whose kernels choose
/// their method by the part's size (a GEMM of few rows streams B). The sums,
/// in part order, and every value are then bit-identical on any number of
/// cores. A pool with fewer threads than parts runs several parts per thread;
/// one with more leaves some idle.
pub fn fixed_parts(flops: usize, items: usize) -> usize {
    parts_upto(FIXED_PARTS, flops, items)
}

fn parts_upto(most: usize, flops: usize, items: usize) -> usize {
    const MIN_FLOPS_PER_PART: usize = 400_000;
    if items < 2 || flops < 2 * MIN_FLOPS_PER_PART || INSIDE.get() {
        return 1;
    }
    most.min(items).min(flops / MIN_FLOPS_PER_PART).max(1)
}

thread_local! {
    /// Whether this thread is running a part of a job split in two or more.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running a part until dropped (also on a panic).
struct Inside(bool);

impl Inside {
    fn enter() -> Inside {
        Inside(INSIDE.replace(true))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.set(self.0);
    }
}

/// Floats of scratch each worker allocates when it starts (1.25 MiB): enough for
/// the GEMM's pack buffers, which `gemm` checks at compile time.
pub(crate) const THREAD_SCRATCH: usize = 5 << 16;

thread_local! {
    /// This thread's scratch buffer; see [`with_scratch`].
    static SCRATCH: RefCell<AlignedVec> = const { RefCell::new(AlignedVec::new()) };
}

/// Runs `f` on this thread's scratch buffer of at least `len` floats (contents
/// unspecified). The buffer is grown when shorter (on a pool worker never for
/// `len <= THREAD_SCRATCH`) and then kept, so later calls allocate nothing.
///
/// # Panics
/// When called again from inside `f` on the same thread.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}

/// A raw pointer that may be sent to workers; each part writes a disjoint region.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T = f32>(pub *mut T);
// SAFETY: the pointer is only turned into slices through `slice`, whose
// contract makes the parts' regions disjoint; the values are plain floats.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as for Send: sharing the pointer is harmless, using it is `unsafe`.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The region `start..start + len` of the original slice, mutably.
    ///
    /// # Safety
    /// The range must be in bounds of the original slice, the slice must outlive
    /// the returned one, and no other part may touch the range meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_part_once() {
        for parts in 1..6 {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            run(parts, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn split_covers_range() {
        for n in 0..20 {
            for parts in 1..5 {
                let mut next = 0;
                for i in 0..parts {
                    let r = split(n, parts, i);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
