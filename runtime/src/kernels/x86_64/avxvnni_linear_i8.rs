//! The int8 linear layer on AVX-VNNI (x86-64 without AVX-512 but with the VEX-encoded dot
//! product: Intel N100 and other Alder Lake-N kiosk CPUs, Alder Lake and later desktops):
//! `vpdpbusd ymm` does 32 multiply-adds per instruction (8 columns × 4 `k`).
//!
//! As in the AVX-512 VNNI kernel, `vpdpbusd` multiplies unsigned by signed bytes, so
//! activations are stored as `q + 128` (`u8`) and `128 · Σ w` is taken back out of each
//! column: the integer result is exactly the i8×i8 product. Panels of 24 columns, groups of 4
//! `k`; a tile is up to 4 rows × 24 columns in 12 accumulators.

use super::avx2_linear_i8::finish8;
use crate::kernels::generic;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use std::arch::x86_64::*;

/// Rows per tile.
const MR: usize = 4;
/// Columns per panel (three 8-lane registers).
const NR: usize = 24;

/// Handed out only where AVX2, FMA and AVX-VNNI were detected.
pub static KERNEL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_avxvnni_i32_4x24",
    nr: NR,
    ku: 4,
    k_align: 4,
    activation_bytes: 1,
    offset_activations: true,
    quantize: |x, k, k_padded, a, scales| {
        (generic::LINEAR_I8.quantize)(x, k, k_padded, a, scales);
        // q + 128 is q's two's-complement byte with the top bit flipped
        for row in a.chunks_exact_mut(k_padded.max(1)) {
            for q in &mut row[..k] {
                *q ^= 0x80;
            }
        }
    },
    // SAFETY: only chosen where AVX2, FMA and AVX-VNNI were detected; `Gemm` holds operands of
    // the sizes it states.
    gemm: |g, panels| unsafe { gemm(g, panels) },
};

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    for p in panels {
        let mut r = 0;
        while r < g.m {
            let rows = (g.m - r).min(MR);
            match rows {
                4 => tile::<4>(g, r, p),
                3 => tile::<3>(g, r, p),
                2 => tile::<2>(g, r, p),
                _ => tile::<1>(g, r, p),
            }
            r += rows;
        }
    }
}

#[target_feature(enable = "avx2,fma,avxvnni")]
#[inline]
unsafe fn tile<const R: usize>(g: &Gemm, r0: usize, p: usize) {
    let w = g.w;
    let a: [*const u8; R] = std::array::from_fn(|i| g.a.as_ptr().add((r0 + i) * w.k_padded));
    let mut acc = [[_mm256_setzero_si256(); 3]; R];
    let mut wp = w.panels.as_ptr().add(p * NR * w.k_padded);
    for gi in 0..w.k_padded / 4 {
        let w0 = _mm256_loadu_si256(wp as *const _);
        let w1 = _mm256_loadu_si256(wp.add(32) as *const _);
        let w2 = _mm256_loadu_si256(wp.add(64) as *const _);
        for i in 0..R {
            let quad = _mm256_set1_epi32((a[i].add(4 * gi) as *const i32).read_unaligned());
            acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], quad, w0);
            acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], quad, w1);
            acc[i][2] = _mm256_dpbusd_avx_epi32(acc[i][2], quad, w2);
        }
        wp = wp.add(NR * 4);
    }
    for (i, acc) in acc.iter().enumerate() {
        for (j, &v) in acc.iter().enumerate() {
            let col = p * NR + 8 * j;
            if col >= w.n {
                break;
            }
            let correction = _mm256_loadu_si256(w.offset_correction.as_ptr().add(col) as *const _);
            finish8(g, r0 + i, col, _mm256_sub_epi32(v, correction));
        }
    }
}
