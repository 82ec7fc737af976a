//! Fused self-attention for one head on NEON: scores for four query rows × sixteen keys at a
//! time against the keys transposed once (`fmla` by lane, four `head_dim` per query load),
//! softmax numerators with [`exp4`], and the context four rows × sixteen features at a time with
//! 1/Σ folded in; never more than four rows of scores.

use super::neon_math::exp4;
use crate::kernels::math::{AttentionKernel, Head};
use std::arch::aarch64::*;

/// Query rows per block.
const MR: usize = 4;

/// NEON is part of every aarch64 core.
pub static KERNEL: AttentionKernel = AttentionKernel {
    name: "kinglet_arm64_attention_4x16",
    head_dim_multiple: 16,
    max_head_dim: 256,
    head,
};

/// # Safety
/// The pointers of `h` must address tensors of the sizes it states.
unsafe fn head(h: &Head, kt: &mut Vec<f32>, p: &mut Vec<f32>) {
    head_neon(h, kt, p)
}

#[target_feature(enable = "neon")]
unsafe fn head_neon(h: &Head, kt: &mut Vec<f32>, p: &mut Vec<f32>) {
    // keys transposed to [head_dim, padded rows], zero-padded to whole tiles
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
        block(h, first, kt, padded, p);
    }
}

/// Query rows `first .. first + MR` (fewer at the end: the last row is computed again in the
/// unused slots and not stored).
#[target_feature(enable = "neon")]
unsafe fn block(h: &Head, first: usize, kt: &[f32], padded: usize, p: &mut [f32]) {
    let live = (h.q_rows - first).min(MR);
    let q: [*const f32; MR] =
        std::array::from_fn(|i| h.q.add((first + i.min(live - 1)) * h.row_stride));
    let kt = kt.as_ptr();
    let pp = p.as_mut_ptr();
    // scores · scale, sixteen keys at a time
    for t in (0..padded).step_by(16) {
        let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
        macro_rules! step {
            ($lane:literal, $d:expr, $qv:expr) => {{
                let k = vld1q_f32_x4(kt.add(($d + $lane) * padded + t));
                for i in 0..MR {
                    acc[i][0] = vfmaq_laneq_f32::<$lane>(acc[i][0], k.0, $qv[i]);
                    acc[i][1] = vfmaq_laneq_f32::<$lane>(acc[i][1], k.1, $qv[i]);
                    acc[i][2] = vfmaq_laneq_f32::<$lane>(acc[i][2], k.2, $qv[i]);
                    acc[i][3] = vfmaq_laneq_f32::<$lane>(acc[i][3], k.3, $qv[i]);
                }
            }};
        }
        for d in (0..h.head_dim).step_by(4) {
            let qv: [float32x4_t; MR] = std::array::from_fn(|i| vld1q_f32(q[i].add(d)));
            step!(0, d, qv);
            step!(1, d, qv);
            step!(2, d, qv);
            step!(3, d, qv);
        }
        for (i, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                vst1q_f32(pp.add(i * padded + t + 4 * j), vmulq_n_f32(a, h.scale));
            }
        }
    }
    // softmax numerators in place; the 1/Σ is applied to the context
    let full = h.kv_rows / 4 * 4;
    let mut inv_sum = [0f32; MR];
    for (i, inv_sum) in inv_sum.iter_mut().enumerate().take(live) {
        let row = pp.add(i * padded);
        let mut max = vdupq_n_f32(f32::NEG_INFINITY);
        for t in (0..full).step_by(4) {
            max = vmaxq_f32(max, vld1q_f32(row.add(t)));
        }
        let mut m = vmaxvq_f32(max);
        for t in full..h.kv_rows {
            m = m.max(*row.add(t));
        }
        let max = vdupq_n_f32(m);
        let mut sum = vdupq_n_f32(0.0);
        for t in (0..full).step_by(4) {
            let e = exp4(vsubq_f32(vld1q_f32(row.add(t)), max));
            vst1q_f32(row.add(t), e);
            sum = vaddq_f32(sum, e);
        }
        let mut s = vaddvq_f32(sum);
        for t in full..h.kv_rows {
            let e = crate::ops::fast_math::exp(*row.add(t) - m);
            *row.add(t) = e;
            s += e;
        }
        *inv_sum = 1.0 / s;
    }
    // context = numerators · V, sixteen features at a time
    for d0 in (0..h.head_dim).step_by(16) {
        let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
        macro_rules! row {
            ($lane:literal, $t:expr, $pv:expr) => {{
                let v = vld1q_f32_x4(h.v.add(($t + $lane) * h.row_stride + d0));
                for i in 0..MR {
                    acc[i][0] = vfmaq_laneq_f32::<$lane>(acc[i][0], v.0, $pv[i]);
                    acc[i][1] = vfmaq_laneq_f32::<$lane>(acc[i][1], v.1, $pv[i]);
                    acc[i][2] = vfmaq_laneq_f32::<$lane>(acc[i][2], v.2, $pv[i]);
                    acc[i][3] = vfmaq_laneq_f32::<$lane>(acc[i][3], v.3, $pv[i]);
                }
            }};
        }
        let mut t = 0;
        while t < full {
            let pv: [float32x4_t; MR] = std::array::from_fn(|i| vld1q_f32(pp.add(i * padded + t)));
            row!(0, t, pv);
            row!(1, t, pv);
            row!(2, t, pv);
            row!(3, t, pv);
            t += 4;
        }
        while t < h.kv_rows {
            let v = vld1q_f32_x4(h.v.add(t * h.row_stride + d0));
            for (i, acc) in acc.iter_mut().enumerate() {
                let pt = *pp.add(i * padded + t);
                acc[0] = vfmaq_n_f32(acc[0], v.0, pt);
                acc[1] = vfmaq_n_f32(acc[1], v.1, pt);
                acc[2] = vfmaq_n_f32(acc[2], v.2, pt);
                acc[3] = vfmaq_n_f32(acc[3], v.3, pt);
            }
            t += 1;
        }
        for (i, acc) in acc.iter().enumerate().take(live) {
            let out = h.out.add((first + i) * h.row_stride + d0);
            for (j, &a) in acc.iter().enumerate() {
                vst1q_f32(out.add(4 * j), vmulq_n_f32(a, inv_sum[i]));
            }
        }
    }
}
