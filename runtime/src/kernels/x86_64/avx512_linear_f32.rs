//! The f32 linear layer on AVX-512 F: tiles of 6 rows × 64 columns in 24 accumulators, one
//! broadcast per row and `k`, bias, GELU and residual in the same pass.

use super::avx512_math::gelu16;
use crate::kernels::linear_f32::{GemmF32, LinearF32Kernel};
use std::arch::x86_64::*;

/// Rows per tile.
const MR: usize = 6;
/// Columns per panel (four 16-lane registers).
const NR: usize = 64;

/// Handed out only where AVX-512 F was detected.
pub static KERNEL: LinearF32Kernel = LinearF32Kernel {
    name: "kinglet_avx512_f32_6x64",
    nr: NR,
    // SAFETY: only chosen where AVX-512 F was detected; `GemmF32` holds operands of the sizes
    // it states.
    gemm: |g, panels| unsafe { gemm(g, panels) },
};

#[target_feature(enable = "avx512f")]
unsafe fn gemm(g: &GemmF32, panels: std::ops::Range<usize>) {
    for p in panels {
        let mut r = 0;
        while r < g.m {
            let rows = (g.m - r).min(MR);
            match rows {
                6 => tile::<6>(g, r, p),
                5 => tile::<5>(g, r, p),
                4 => tile::<4>(g, r, p),
                3 => tile::<3>(g, r, p),
                2 => tile::<2>(g, r, p),
                _ => tile::<1>(g, r, p),
            }
            r += rows;
        }
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize>(g: &GemmF32, r0: usize, p: usize) {
    let w = g.w;
    let k = w.k;
    let x: [*const f32; R] = std::array::from_fn(|i| g.x.as_ptr().add((r0 + i) * k));
    let mut wp = w.panels.as_ptr().add(p * NR * k);
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    for kk in 0..k {
        let w0 = _mm512_loadu_ps(wp);
        let w1 = _mm512_loadu_ps(wp.add(16));
        let w2 = _mm512_loadu_ps(wp.add(32));
        let w3 = _mm512_loadu_ps(wp.add(48));
        for (i, acc) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*x[i].add(kk));
            acc[0] = _mm512_fmadd_ps(b, w0, acc[0]);
            acc[1] = _mm512_fmadd_ps(b, w1, acc[1]);
            acc[2] = _mm512_fmadd_ps(b, w2, acc[2]);
            acc[3] = _mm512_fmadd_ps(b, w3, acc[3]);
        }
        wp = wp.add(NR);
    }
    let cols = (w.n - p * NR).min(NR);
    for (i, acc) in acc.iter().enumerate() {
        let row = r0 + i;
        for (j, &a) in acc.iter().enumerate() {
            let first = 16 * j;
            if first >= cols {
                break;
            }
            let col = p * NR + first;
            let mut v = _mm512_add_ps(a, _mm512_loadu_ps(w.bias.as_ptr().add(col)));
            if g.epilogue.gelu {
                v = gelu16(v);
            }
            let live = (cols - first).min(16);
            let mask: __mmask16 = if live == 16 {
                0xffff
            } else {
                (1u16 << live) - 1
            };
            let at = row * w.n + col;
            if let Some(res) = g.epilogue.residual {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res.as_ptr().add(at)));
            }
            _mm512_mask_storeu_ps(g.y.ptr().add(at), mask, v);
        }
    }
}
