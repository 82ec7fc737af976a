//! The portable int8 linear kernel: the reference every native one is tested against.

use super::gelu_as;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use crate::ops::quantize_rows::quantize_rows;

/// Plain loops over a 4 × 4 packing.
pub static LINEAR_I8: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_generic_i32_1x4",
    nr: 4,
    ku: 4,
    k_align: 4,
    activation_bytes: 1,
    offset_activations: false,
    quantize,
    gemm,
};

/// Quantizes rows to `i16` (values within ±127) stored little-endian, `k_padded` per row: for
/// kernels that multiply 16-bit lanes.
pub fn quantize_rows_i16(x: &[f32], k: usize, k_padded: usize, a: &mut [u8], scales: &mut [f32]) {
    let mut row = vec![0i8; k];
    for (r, (xs, scale)) in x.chunks_exact(k.max(1)).zip(scales.iter_mut()).enumerate() {
        quantize_rows(xs, k, &mut row, std::slice::from_mut(scale));
        let dst = &mut a[2 * r * k_padded..2 * (r * k_padded + k)];
        for (dst, q) in dst.chunks_exact_mut(2).zip(&row) {
            dst.copy_from_slice(&(*q as i16).to_le_bytes());
        }
    }
}

fn quantize(x: &[f32], k: usize, k_padded: usize, a: &mut [u8], scales: &mut [f32]) {
    let mut row = vec![0i8; k];
    for (r, (xs, scale)) in x.chunks_exact(k.max(1)).zip(scales.iter_mut()).enumerate() {
        quantize_rows(xs, k, &mut row, std::slice::from_mut(scale));
        for (dst, q) in a[r * k_padded..r * k_padded + k].iter_mut().zip(&row) {
            *dst = *q as u8;
        }
    }
}

fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    let w = g.w;
    let groups = w.k_padded / w.ku;
    for p in panels {
        let cols = (w.n - p * w.nr).min(w.nr);
        for r in 0..g.m {
            let a = &g.a[r * w.k_padded..(r + 1) * w.k_padded];
            let mut acc = vec![0i32; w.nr];
            for gi in 0..groups {
                let block = w.group(p, gi);
                for (c, acc) in acc.iter_mut().enumerate() {
                    for u in 0..w.ku {
                        *acc += a[gi * w.ku + u] as i8 as i32 * block[c * w.ku + u] as i32;
                    }
                }
            }
            for (c, &acc) in acc.iter().enumerate().take(cols) {
                let col = p * w.nr + c;
                let scale = w.weight_scale[col] * g.scales[r];
                let mut v = (acc as f32).mul_add(scale, w.bias[col]);
                if g.epilogue.gelu {
                    v = gelu_as(v);
                }
                let at = r * w.n + col;
                if let Some(res) = g.epilogue.residual {
                    v += res[at];
                }
                // SAFETY: `at` < m · n, the size of `y`; this thread owns panel `p`'s columns.
                unsafe { *g.y.ptr().add(at) = v };
            }
        }
    }
}
