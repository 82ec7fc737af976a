//! Portable LayerNorm: eight independent lanes, so it vectorizes on every target.

use crate::kernels::norm::LayerNormKernel;

/// Plain loops, any width.
pub static LAYER_NORM: LayerNormKernel = LayerNormKernel {
    name: "generic",
    run,
};

#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + tail.iter().map(|&v| f(v)).sum::<f32>()
}

fn run(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let h = gamma.len();
    for (row, out) in x.chunks_exact(h).zip(y.chunks_exact_mut(h)) {
        let mean = lane_sum(row, |v| v) * (1.0 / h as f32);
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) * (1.0 / h as f32);
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}
