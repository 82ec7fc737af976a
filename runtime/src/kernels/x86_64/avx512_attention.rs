//! Fused self-attention for one head on AVX-512 F: scores for six query rows at a time against
//! the keys transposed once, softmax numerators with `exp16`, 1/Σ folded into the context;
//! never more than six rows of scores.
#![allow(clippy::missing_safety_doc)]

/// Rows of queries per block.
const MR: usize = 6;

/// Handed out only where AVX-512 F was detected.
pub static KERNEL: AttentionKernel = AttentionKernel {
    name: "kinglet_avx512_attention_6x32",
    head_dim_multiple: 16,
    max_head_dim: 64,
    head,
};

use super::avx512_math::exp16;
use crate::kernels::math::{AttentionKernel, Head};
use std::arch::x86_64::*;

/// `kt` and `p` are scratch, resized here.
#[target_feature(enable = "avx512f")]
unsafe fn head(h: &Head, kt: &mut Vec<f32>, p: &mut Vec<f32>) {
    // keys transposed to [head_dim, padded rows], zero-padded to whole registers
    let padded = h.kv_rows.div_ceil(16) * 16;
    kt.clear();
    kt.resize(h.head_dim * padded, 0.0);
    for t in 0..h.kv_rows {
        let row = std::slice::from_raw_parts(h.k.add(t * h.row_stride), h.head_dim);
        for (d, &x) in row.iter().enumerate() {
            *kt.get_unchecked_mut(d * padded + t) = x;
        }
    }
    p.clear();
    p.resize(MR * padded, 0.0);
    for first in (0..h.q_rows).step_by(MR) {
        match h.head_dim / 16 {
            1 => block::<1>(h, first, kt, padded, p),
            2 => block::<2>(h, first, kt, padded, p),
            3 => block::<3>(h, first, kt, padded, p),
            _ => block::<4>(h, first, kt, padded, p),
        }
    }
}

/// Rows `first .. first + MR` (fewer at the end: the last row is computed again in the
/// unused slots and not stored).
#[target_feature(enable = "avx512f")]
unsafe fn block<const DC: usize>(h: &Head, first: usize, kt: &[f32], padded: usize, p: &mut [f32]) {
    let live = (h.q_rows - first).min(MR);
    let q: [*const f32; MR] =
        std::array::from_fn(|i| h.q.add((first + i.min(live - 1)) * h.row_stride));
    let scale = _mm512_set1_ps(h.scale);
    let kt = kt.as_ptr();
    let pp = p.as_mut_ptr();
    // scores · scale, 32 then 16 keys at a time
    let mut t = 0;
    while t + 32 <= padded {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for d in 0..h.head_dim {
            let k0 = _mm512_loadu_ps(kt.add(d * padded + t));
            let k1 = _mm512_loadu_ps(kt.add(d * padded + t + 16));
            for i in 0..MR {
                let b = _mm512_set1_ps(*q[i].add(d));
                acc[i][0] = _mm512_fmadd_ps(b, k0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(b, k1, acc[i][1]);
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(pp.add(i * padded + t), _mm512_mul_ps(acc[0], scale));
            _mm512_storeu_ps(pp.add(i * padded + t + 16), _mm512_mul_ps(acc[1], scale));
        }
        t += 32;
    }
    if t < padded {
        let mut acc = [_mm512_setzero_ps(); MR];
        for d in 0..h.head_dim {
            let k0 = _mm512_loadu_ps(kt.add(d * padded + t));
            for (i, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*q[i].add(d)), k0, *acc);
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(pp.add(i * padded + t), _mm512_mul_ps(*acc, scale));
        }
    }
    // softmax numerators in place; the 1/Σ is applied to the context
    let mut inv_sum = [0f32; MR];
    for (i, inv_sum) in inv_sum.iter_mut().enumerate().take(live) {
        let row = pp.add(i * padded);
        let mask = |t: usize| -> __mmask16 {
            let left = h.kv_rows - t;
            if left >= 16 {
                0xffff
            } else {
                (1u16 << left) - 1
            }
        };
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for t in (0..h.kv_rows).step_by(16) {
            let x = _mm512_mask_loadu_ps(max, mask(t), row.add(t));
            max = _mm512_max_ps(max, x);
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        for t in (0..h.kv_rows).step_by(16) {
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row.add(t)), max));
            _mm512_storeu_ps(row.add(t), e);
            sum = _mm512_mask_add_ps(sum, mask(t), sum, e);
        }
        *inv_sum = 1.0 / _mm512_reduce_add_ps(sum);
    }
    // context = numerators · V
    let mut acc = [[_mm512_setzero_ps(); DC]; MR];
    for t in 0..h.kv_rows {
        let v = h.v.add(t * h.row_stride);
        let v: [__m512; DC] = std::array::from_fn(|c| _mm512_loadu_ps(v.add(16 * c)));
        for (i, acc) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*pp.add(i * padded + t));
            for c in 0..DC {
                acc[c] = _mm512_fmadd_ps(b, v[c], acc[c]);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(live) {
        let out = h.out.add((first + i) * h.row_stride);
        let s = _mm512_set1_ps(inv_sum[i]);
        for (c, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(16 * c), _mm512_mul_ps(*acc, s));
        }
    }
}
