//! Element-wise math and attention kernel families: their descriptors and shared operands.

/// Element-wise functions on f32 slices.
#[derive(Debug)]
pub struct MathKernels {
    /// Name listed by `inspect --cpu`.
    pub name: &'static str,
    /// `x ← gelu(x)`, exact (erf) GELU.
    pub gelu: fn(&mut [f32]),
}

/// One attention head over row-major `[rows, heads, head_dim]` tensors: row `r` of q (and of
/// k, v, out) starts at `q + r · row_stride`.
pub struct Head {
    /// Queries, `q_rows` rows.
    pub q: *const f32,
    /// Keys, `kv_rows` rows.
    pub k: *const f32,
    /// Values, `kv_rows` rows.
    pub v: *const f32,
    /// Context, `q_rows` rows.
    pub out: *mut f32,
    /// Query rows (fewer than `kv_rows` where the graph reads only some outputs).
    pub q_rows: usize,
    /// Key and value rows.
    pub kv_rows: usize,
    /// Floats between two rows of the same head.
    pub row_stride: usize,
    /// Features per head.
    pub head_dim: usize,
    /// Multiplies the scores before the softmax (`1/√head_dim`).
    pub scale: f32,
}

/// A fused `softmax(scale · Q·Kᵀ) · V` kernel for one head.
#[derive(Debug)]
pub struct AttentionKernel {
    /// Name listed by `inspect --cpu`.
    pub name: &'static str,
    /// Head sizes it takes: multiples of this...
    pub head_dim_multiple: usize,
    /// ... up to this.
    pub max_head_dim: usize,
    /// Runs one head; the two vectors are scratch, resized as needed.
    ///
    /// # Safety
    /// The pointers of `Head` must address tensors of the sizes it states.
    pub head: unsafe fn(&Head, &mut Vec<f32>, &mut Vec<f32>),
}

impl AttentionKernel {
    /// Whether the kernel takes heads of `head_dim` features.
    pub fn takes(&self, head_dim: usize) -> bool {
        head_dim > 0
            && head_dim.is_multiple_of(self.head_dim_multiple)
            && head_dim <= self.max_head_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{attention_candidates, generic, math_candidates};

    fn random(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1 << 24) as f32 * 6.0 - 3.0
    }

    #[test]
    fn every_native_gelu_matches_the_generic_twin_and_the_erf_definition() {
        let xs: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * 3e-4).collect();
        let mut want = xs.clone();
        (generic::MATH.gelu)(&mut want);
        for (x, w) in xs.iter().zip(&want) {
            let exact = crate::ops::fast_math::gelu_exact(*x);
            assert!((w - exact).abs() < 2e-6 * (1.0 + x.abs()), "gelu({x})");
        }
        for kernels in math_candidates() {
            // every tail length
            for len in [xs.len(), 1, 3, 5, 15, 17, 33] {
                let mut got = xs[..len].to_vec();
                (kernels.gelu)(&mut got);
                for (i, (g, w)) in got.iter().zip(&want[..len]).enumerate() {
                    assert!(
                        (g - w).abs() < 1e-6 * (1.0 + w.abs()),
                        "{} gelu({})",
                        kernels.name,
                        xs[i]
                    );
                }
            }
        }
    }

    #[test]
    fn every_native_attention_kernel_matches_the_generic_twin() {
        let mut seed = 7u32;
        for kernel in attention_candidates() {
            for (heads, head_dim) in [(12, 32), (2, 64), (3, 16), (1, 48)] {
                if !kernel.takes(head_dim) {
                    continue;
                }
                for (q_rows, kv_rows) in [
                    (1, 1),
                    (5, 5),
                    (7, 7),
                    (17, 17),
                    (1, 33),
                    (3, 128),
                    (128, 128),
                ] {
                    let stride = heads * head_dim;
                    let q: Vec<f32> = (0..q_rows * stride).map(|_| random(&mut seed)).collect();
                    let k: Vec<f32> = (0..kv_rows * stride).map(|_| random(&mut seed)).collect();
                    let v: Vec<f32> = (0..kv_rows * stride).map(|_| random(&mut seed)).collect();
                    let run = |kernel: &AttentionKernel| {
                        let mut out = vec![f32::NAN; q_rows * stride];
                        crate::ops::attention::attention(
                            kernel,
                            (&q, &k, &v),
                            &mut out,
                            [q_rows, kv_rows, heads, head_dim],
                            1.0 / (head_dim as f32).sqrt(),
                            None,
                        );
                        out
                    };
                    let (got, want) = (run(kernel), run(&generic::ATTENTION));
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                            "{} {q_rows}×{kv_rows} rows, {heads}×{head_dim}: {g} vs {w}",
                            kernel.name
                        );
                    }
                }
            }
        }
    }
}
