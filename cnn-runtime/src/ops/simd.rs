//! The vector instruction sets kernels are written over once ([`Isa`]) and
//! compiled into each by a `#[target_feature]` entry point: the depthwise
//! conv's rows and the direct conv's register tiles.

/// An instruction set the kernel is written over. A value is a proof that the
/// CPU has it: the only constructors check [`crate::cpu`], so the methods can
/// be safe.
pub(crate) trait Isa: Copy {
    /// One vector of `W` floats.
    type V: Copy;
    /// Lanes per vector.
    const W: usize;
    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// The first `W` values of `s`.
    ///
    /// # Panics
    /// When `s` is shorter.
    fn load(self, s: &[f32]) -> Self::V;
    /// Writes the first `W` values of `d`.
    ///
    /// # Panics
    /// When `d` is shorter.
    fn store(self, v: Self::V, d: &mut [f32]);
    /// `a * b + c`, rounded once.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The `W` values at `p`, unchecked (the interior blocks' loads, whose
    /// bounds are proved once per block rather than checked per load).
    ///
    /// # Safety
    /// `p..p + W` must be readable.
    unsafe fn load_at(self, p: *const f32) -> Self::V;
    /// Asks for the cache line of `p` (a hint: any address is allowed).
    fn prefetch(self, p: *const f32);
    /// Every lane `v`.
    fn splat(self, v: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// Zero where `v < 0` (an ordered compare: NaN stays NaN).
    fn relu(self, v: Self::V) -> Self::V;
    /// Writes the `W` values at `p`, unchecked.
    ///
    /// # Safety
    /// `p..p + W` must be writable.
    unsafe fn store_at(self, p: *mut f32, v: Self::V);
    /// Writes the first `count.min(W)` lanes at `p`, the others untouched.
    ///
    /// # Safety
    /// `p..p + count.min(W)` must be writable.
    unsafe fn store_first(self, p: *mut f32, v: Self::V, count: usize);
    /// The token without a check, inside code compiled for the instruction
    /// set.
    ///
    /// # Safety
    /// The CPU must have the instruction set.
    unsafe fn assume() -> Self;
}

/// AVX-512F (with AVX2 and FMA, which the entry point enables too).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// The token, where [`crate::cpu::avx512`] allows.
    pub(crate) fn detect() -> Option<Self> {
        crate::cpu::avx512().then_some(Avx512(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Isa for Avx512 {
    type V = std::arch::x86_64::__m512;
    const W: usize = 16;
    #[inline(always)]
    fn zero(self) -> Self::V {
        // SAFETY: the token exists only where AVX-512F was detected.
        unsafe { std::arch::x86_64::_mm512_setzero_ps() }
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> Self::V {
        let s = &s[..16];
        // SAFETY: AVX-512F was detected (token); `s` holds the 16 floats read.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(s.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: Self::V, d: &mut [f32]) {
        let d = &mut d[..16];
        // SAFETY: AVX-512F was detected (token); `d` holds the 16 floats written.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: AVX-512F was detected (token).
        unsafe { std::arch::x86_64::_mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> Self::V {
        // SAFETY: AVX-512F was detected (token); the caller's contract.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(p) }
    }
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is baseline x86-64; a prefetch never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[inline(always)]
    fn splat(self, v: f32) -> Self::V {
        // SAFETY: AVX-512F was detected (token).
        unsafe { std::arch::x86_64::_mm512_set1_ps(v) }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: AVX-512F was detected (token).
        unsafe { std::arch::x86_64::_mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn relu(self, v: Self::V) -> Self::V {
        use std::arch::x86_64::*;
        // SAFETY: AVX-512F was detected (token).
        unsafe {
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
            _mm512_mask_mov_ps(v, neg, _mm512_setzero_ps())
        }
    }
    #[inline(always)]
    unsafe fn store_at(self, p: *mut f32, v: Self::V) {
        // SAFETY: AVX-512F was detected (token); the caller's contract.
        unsafe { std::arch::x86_64::_mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, v: Self::V, count: usize) {
        let mask = if count >= 16 {
            0xffff
        } else {
            ((1u32 << count) - 1) as u16
        };
        // SAFETY: AVX-512F was detected (token); the mask covers the lanes
        // below `count`, writable by the caller's contract.
        unsafe { std::arch::x86_64::_mm512_mask_storeu_ps(p, mask, v) }
    }
    #[inline(always)]
    unsafe fn assume() -> Self {
        Avx512(())
    }
}

/// AVX2 with FMA.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// The token, where [`crate::cpu::avx2`] allows.
    pub(crate) fn detect() -> Option<Self> {
        crate::cpu::avx2().then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Isa for Avx2 {
    type V = std::arch::x86_64::__m256;
    const W: usize = 8;
    #[inline(always)]
    fn zero(self) -> Self::V {
        // SAFETY: the token exists only where AVX2 and FMA were detected.
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> Self::V {
        let s = &s[..8];
        // SAFETY: AVX was detected (token); `s` holds the 8 floats read.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(s.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: Self::V, d: &mut [f32]) {
        let d = &mut d[..8];
        // SAFETY: AVX was detected (token); `d` holds the 8 floats written.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(d.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // SAFETY: FMA was detected (token).
        unsafe { std::arch::x86_64::_mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> Self::V {
        // SAFETY: AVX was detected (token); the caller's contract.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is baseline x86-64; a prefetch never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[inline(always)]
    fn splat(self, v: f32) -> Self::V {
        // SAFETY: AVX was detected (token).
        unsafe { std::arch::x86_64::_mm256_set1_ps(v) }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: AVX was detected (token).
        unsafe { std::arch::x86_64::_mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn relu(self, v: Self::V) -> Self::V {
        use std::arch::x86_64::*;
        // SAFETY: AVX was detected (token).
        unsafe {
            let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
            _mm256_blendv_ps(v, _mm256_setzero_ps(), neg)
        }
    }
    #[inline(always)]
    unsafe fn store_at(self, p: *mut f32, v: Self::V) {
        // SAFETY: AVX was detected (token); the caller's contract.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, v: Self::V, count: usize) {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 was detected (token); the mask covers the lanes below
        // `count` (at most 8, so the cast is exact), writable by the caller's
        // contract; masked-out lanes are not touched.
        unsafe {
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count.min(8) as i32), lane);
            _mm256_maskstore_ps(p, mask, v)
        }
    }
    #[inline(always)]
    unsafe fn assume() -> Self {
        Avx2(())
    }
}
