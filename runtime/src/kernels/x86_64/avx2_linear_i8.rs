//! The int8 linear layer on AVX2 (x86-64 without AVX-512: Intel N100 and other kiosk CPUs,
//! older desktops): `vpmaddwd` on sign-extended bytes.
//!
//! Weights stay `i8` in memory and are widened by the load itself (`vpmovsxbw`); activations
//! are quantized to `i8` as everywhere and stored widened to `i16`, so one 32-bit broadcast
//! gives a row's pair of `k`. One `vpmaddwd` then does 16 multiply-adds (8 columns × 2 `k`,
//! exact in 32 bits), `vpaddd` accumulates. Panels of 24 columns, groups of 2 `k`; a tile is up
//! to 3 rows × 24 columns in 9 accumulators.

use super::avx2_math::gelu8;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use std::arch::x86_64::*;

/// Rows per tile.
const MR: usize = 3;
/// Columns per panel (three 8-lane registers).
const NR: usize = 24;

/// Handed out only where AVX2 and FMA were detected.
pub static KERNEL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_avx2_i32_3x24",
    nr: NR,
    ku: 2,
    k_align: 2,
    activation_bytes: 2,
    offset_activations: false,
    quantize: |x, k, k_padded, a, scales| {
        crate::kernels::generic::quantize_rows_i16(x, k, k_padded, a, scales)
    },
    // SAFETY: only chosen where AVX2 and FMA were detected; `Gemm` holds operands of the sizes
    // it states.
    gemm: |g, panels| unsafe { gemm(g, panels) },
};

#[target_feature(enable = "avx2,fma")]
unsafe fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    for p in panels {
        let mut r = 0;
        while r < g.m {
            let rows = (g.m - r).min(MR);
            match rows {
                3 => tile::<3>(g, r, p),
                2 => tile::<2>(g, r, p),
                _ => tile::<1>(g, r, p),
            }
            r += rows;
        }
    }
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize>(g: &Gemm, r0: usize, p: usize) {
    let w = g.w;
    let row_bytes = 2 * w.k_padded;
    let a: [*const u8; R] = std::array::from_fn(|i| g.a.as_ptr().add((r0 + i) * row_bytes));
    let mut acc = [[_mm256_setzero_si256(); 3]; R];
    let mut wp = w.panels.as_ptr().add(p * NR * w.k_padded);
    for gi in 0..w.k_padded / 2 {
        let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp as *const _));
        let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(16) as *const _));
        let w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(32) as *const _));
        for i in 0..R {
            let pair = _mm256_set1_epi32((a[i].add(4 * gi) as *const i32).read_unaligned());
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(pair, w0));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(pair, w1));
            acc[i][2] = _mm256_add_epi32(acc[i][2], _mm256_madd_epi16(pair, w2));
        }
        wp = wp.add(NR * 2);
    }
    for (i, acc) in acc.iter().enumerate() {
        for (j, &v) in acc.iter().enumerate() {
            let col = p * NR + 8 * j;
            if col >= w.n {
                break;
            }
            finish8(g, r0 + i, col, v);
        }
    }
}

/// Scales, biases, applies the epilogue to and stores the eight columns `col..` of row `row`
/// from their exact 32-bit sums (the AVX-VNNI kernel's too, once it took its offset out).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn finish8(g: &Gemm, row: usize, col: usize, sums: __m256i) {
    let w = g.w;
    let scale = _mm256_mul_ps(
        _mm256_loadu_ps(w.weight_scale.as_ptr().add(col)),
        _mm256_set1_ps(g.scales[row]),
    );
    let mut value = _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(sums),
        scale,
        _mm256_loadu_ps(w.bias.as_ptr().add(col)),
    );
    if g.epilogue.gelu {
        value = gelu8(value);
    }
    let at = row * w.n + col;
    let out = g.y.ptr().add(at);
    let live = (w.n - col).min(8);
    if live == 8 {
        if let Some(res) = g.epilogue.residual {
            value = _mm256_add_ps(value, _mm256_loadu_ps(res.as_ptr().add(at)));
        }
        _mm256_storeu_ps(out, value);
    } else {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), value);
        for (c, lane) in lanes.iter().enumerate().take(live) {
            *out.add(c) = lane + g.epilogue.residual.map_or(0.0, |res| res[at + c]);
        }
    }
}
