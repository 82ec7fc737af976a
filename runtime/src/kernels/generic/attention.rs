//! Portable attention for one head: the twin the native kernels are tested against.

use crate::kernels::math::{AttentionKernel, Head};
use crate::ops::fast_math::exp;

/// Plain loops, any head size.
pub static ATTENTION: AttentionKernel = AttentionKernel {
    name: "generic",
    head_dim_multiple: 1,
    max_head_dim: usize::MAX,
    head,
};

/// # Safety
/// The pointers of `h` must address tensors of the sizes it states.
unsafe fn head(h: &Head, scores: &mut Vec<f32>, _: &mut Vec<f32>) {
    scores.clear();
    scores.resize(h.kv_rows, 0.0);
    for s in 0..h.q_rows {
        let q = std::slice::from_raw_parts(h.q.add(s * h.row_stride), h.head_dim);
        let mut max = f32::NEG_INFINITY;
        for (t, score) in scores.iter_mut().enumerate() {
            let k = std::slice::from_raw_parts(h.k.add(t * h.row_stride), h.head_dim);
            *score = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * h.scale;
            max = max.max(*score);
        }
        let mut sum = 0.0;
        for score in scores.iter_mut() {
            *score = exp(*score - max);
            sum += *score;
        }
        let out = std::slice::from_raw_parts_mut(h.out.add(s * h.row_stride), h.head_dim);
        out.fill(0.0);
        for (t, p) in scores.iter().enumerate() {
            let v = std::slice::from_raw_parts(h.v.add(t * h.row_stride), h.head_dim);
            for (o, v) in out.iter_mut().zip(v) {
                *o += p * v;
            }
        }
        out.iter_mut().for_each(|o| *o /= sum);
    }
}
