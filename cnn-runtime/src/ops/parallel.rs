//! A tiny persistent thread pool that runs one closure on every core, with no
//! allocation per call.
//!
//! Why not rayon: `rayon::join`/`scope` box a job per spawn, so every parallel
//! kernel call would allocate, and a training step must not allocate in steady
//! state. Here the pool is created once (the only allocation), the job is passed
//! as a borrowed `&dyn Fn(usize)` through a shared slot, and workers wake by
//! spinning briefly and then parking (`park`/`unpark` never allocate).
//!
//! Calls are serialised by a `try_lock`: when the pool is busy (a nested call
//! from inside a job, or two test threads using kernels at once), the caller
//! simply runs every part itself, in order. Results never depend on the number of
//! threads that actually ran, only on the part index.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Incremented by the caller for each new job; workers wait for a change.
    epoch: AtomicUsize,
    /// Workers still running the current job.
    pending: AtomicUsize,
    /// Set when a job panicked on a worker.
    panicked: AtomicBool,
    /// The current job; written only by the caller holding `lock`, before the
    /// epoch is published (Release), read by workers after they see it (Acquire).
    job: UnsafeCell<Option<Job>>,
    /// How many parts the current job has (workers with a higher index skip it).
    parts: AtomicUsize,
}

// SAFETY: `job` is only written while no worker reads it (between jobs, under
// `Pool::lock`), and the epoch's Release/Acquire orders that write before reads.
unsafe impl Sync for Shared {}
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
            epoch: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            parts: AtomicUsize::new(0),
        }));
        let mut workers = Vec::new();
        for tid in 1..n {
            let spawned = thread::Builder::new()
                .name(format!("cnn-worker-{tid}"))
                .spawn(move || worker_loop(shared, tid));
            match spawned {
                Ok(h) => workers.push(h.thread().clone()),
                // Fewer threads is still correct: the caller runs the missing parts.
                Err(_) => break,
            }
        }
        Pool {
            shared,
            workers,
            lock: Mutex::new(()),
        }
    })
}

fn worker_loop(shared: &'static Shared, tid: usize) {
    let mut seen = 0usize;
    loop {
        // Spin a little (kernels come in quick succession during a step), then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let epoch = loop {
            let e = shared.epoch.load(Ordering::Acquire);
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
        // SAFETY: the caller wrote the job before publishing the epoch and keeps it
        // alive until `pending` drops to zero.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            if tid < shared.parts.load(Ordering::Acquire) {
                let f: &(dyn Fn(usize) + Sync) = unsafe { &*job };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tid)));
                if r.is_err() {
                    shared.panicked.store(true, Ordering::Release);
                }
            }
        }
        shared.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Number of threads the pool runs jobs on (including the caller).
pub fn num_threads() -> usize {
    pool().workers.len() + 1
}

/// Runs `f(0)`, `f(1)`, ..., `f(parts - 1)`, in parallel when the pool is free
/// (part 0 on the calling thread). `parts` should not exceed [`num_threads`]; extra
/// parts run on the caller after its own. Returns when all parts are done.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts == 0 {
        return;
    }
    if parts == 1 {
        f(0);
        return;
    }
    let p = pool();
    let guard = match p.lock.try_lock() {
        Ok(g) => g,
        Err(_) => {
            for i in 0..parts {
                f(i);
            }
            return;
        }
    };
    let nw = p.workers.len();
    if nw == 0 {
        for i in 0..parts {
            f(i);
        }
        return;
    }
    let shared = p.shared;
    // SAFETY: erase the borrow's lifetime; we wait for every worker to finish with
    // it (pending == 0) before returning, so it never outlives `f`.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
    unsafe { *shared.job.get() = Some(job) };
    shared.parts.store(parts, Ordering::Release);
    shared.pending.store(nw, Ordering::Release);
    shared.epoch.fetch_add(1, Ordering::AcqRel);
    for w in &p.workers {
        w.unpark();
    }
    f(0);
    // Parts beyond the pool's size run here.
    for i in (nw + 1)..parts {
        f(i);
    }
    let mut spins = 0u32;
    while shared.pending.load(Ordering::Acquire) != 0 {
        spins += 1;
        if spins < 4096 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
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
/// microseconds), else up to the pool size.
pub fn parts_for(flops: usize, items: usize) -> usize {
    const MIN_FLOPS_PER_PART: usize = 400_000;
    if items < 2 || flops < 2 * MIN_FLOPS_PER_PART {
        return 1;
    }
    num_threads()
        .min(items)
        .min(flops / MIN_FLOPS_PER_PART)
        .max(1)
}

/// A raw pointer that may be sent to workers; each part writes a disjoint region.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// # Safety
    /// The range must be in bounds of the original slice and not touched by any
    /// other part while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
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
