//! The f32 linear layer family: `y = gelu?(x · Wᵀ + b) + residual?` in one pass, weights packed
//! once at load in panels of `nr` columns (`[panel][k][nr]`, zero-padded), so one step of the
//! micro-kernel reads `nr` consecutive floats of one `k`.

use crate::workers::{share_out, SharedOut, Workers};

/// A native f32 linear kernel.
#[derive(Debug)]
pub struct LinearF32Kernel {
    /// Name listed by `inspect --profile` (contains `f32`, like tract's kernels).
    pub name: &'static str,
    /// Output columns per packed panel.
    pub nr: usize,
    /// The product for output panels `panels`, all rows.
    pub gemm: fn(&GemmF32, std::ops::Range<usize>),
}

/// One call's operands.
pub struct GemmF32<'a> {
    /// Packed weights.
    pub w: &'a PackedF32,
    /// Activations, `m × w.k`, row-major.
    pub x: &'a [f32],
    /// Output, `m × w.n`, row-major.
    pub y: SharedOut,
    /// Rows.
    pub m: usize,
    /// GELU flag and residual (`m × w.n`).
    pub epilogue: super::Epilogue<'a>,
}

/// Weights packed for one [`LinearF32Kernel`], with the bias.
#[derive(Debug, Clone)]
pub struct PackedF32 {
    /// Contracted length.
    pub k: usize,
    /// Output columns.
    pub n: usize,
    /// Columns per panel.
    pub nr: usize,
    /// `[panel][k][nr]`, zero-padded.
    pub panels: Vec<f32>,
    /// Per-column bias, padded with zeros to whole panels.
    pub bias: Vec<f32>,
}

impl PackedF32 {
    /// Packs `w` (`[n, k]`, row-major) and `bias` (`[n]`) for `kernel`.
    pub fn pack(kernel: &LinearF32Kernel, w: &[f32], n: usize, k: usize, bias: &[f32]) -> Self {
        assert_eq!(w.len(), n * k);
        assert_eq!(bias.len(), n);
        let nr = kernel.nr;
        let n_padded = n.div_ceil(nr) * nr;
        let mut panels = vec![0f32; n_padded * k];
        for col in 0..n {
            let base = (col / nr) * nr * k + col % nr;
            for (kk, &v) in w[col * k..(col + 1) * k].iter().enumerate() {
                panels[base + kk * nr] = v;
            }
        }
        let mut b = bias.to_vec();
        b.resize(n_padded, 0.0);
        PackedF32 {
            k,
            n,
            nr,
            panels,
            bias: b,
        }
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        4 * (self.panels.len() + self.bias.len())
    }

    /// `y = gelu?(x · Wᵀ + b) + residual?` with `kernel` (the one these weights were packed
    /// for), for `x` `[m, k]` and `y` `[m, n]`; panels shared out over the `pool`.
    pub fn matmul(
        &self,
        kernel: &LinearF32Kernel,
        x: &[f32],
        y: &mut [f32],
        m: usize,
        pool: Option<&Workers>,
        epilogue: super::Epilogue,
    ) {
        assert_eq!(kernel.nr, self.nr);
        assert_eq!(x.len(), m * self.k);
        assert_eq!(y.len(), m * self.n);
        if let Some(r) = epilogue.residual {
            assert_eq!(r.len(), y.len());
        }
        let gemm = GemmF32 {
            w: self,
            x,
            y: SharedOut(y.as_mut_ptr()),
            m,
            epilogue,
        };
        share_out(
            pool,
            self.n.div_ceil(self.nr),
            m * self.k * self.n,
            &|panels| (kernel.gemm)(&gemm, panels),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{generic, linear_f32_candidates, Epilogue};

    fn run(
        kernel: &LinearF32Kernel,
        (m, n, k): (usize, usize, usize),
        gelu: bool,
        residual: bool,
        pool: Option<&Workers>,
    ) -> Vec<f32> {
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.031)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.002)
            .collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.05 - 1.0).collect();
        let r: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32 - 3.0).collect();
        let packed = PackedF32::pack(kernel, &w, n, k, &b);
        let mut y = vec![f32::NAN; m * n];
        let epilogue = Epilogue {
            gelu,
            residual: residual.then_some(&r[..]),
        };
        packed.matmul(kernel, &x, &mut y, m, pool, epilogue);
        y
    }

    #[test]
    fn generic_f32_kernel_is_the_plain_product() {
        let (m, n, k) = (3, 5, 7);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.031)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.002)
            .collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.05 - 1.0).collect();
        let got = run(&generic::LINEAR_F32, (m, n, k), false, false, None);
        for r in 0..m {
            for c in 0..n {
                let want: f32 = (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>() + b[c];
                assert!(
                    (got[r * n + c] - want).abs() < 1e-5,
                    "{} vs {want}",
                    got[r * n + c]
                );
            }
        }
    }

    #[test]
    fn every_native_f32_kernel_matches_the_generic_twin() {
        let pool = Workers::start(2).unwrap();
        for kernel in linear_f32_candidates() {
            for shape in [
                (1, 1, 1),
                (7, 70, 13),
                (13, 64, 384),
                (6, 130, 35),
                (5, 17, 33),
                (1, 384, 1536),
                (20, 130, 300),
            ] {
                for (gelu, residual) in [(false, false), (true, false), (false, true), (true, true)]
                {
                    let want = run(&generic::LINEAR_F32, shape, gelu, residual, None);
                    let got = run(kernel, shape, gelu, residual, None);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                            "{} {shape:?} gelu={gelu} residual={residual} [{i}]: {g} vs {w}",
                            kernel.name
                        );
                    }
                    let threaded = run(kernel, shape, gelu, residual, Some(&pool));
                    assert_eq!(
                        got, threaded,
                        "{}: 3 threads give the bits of 1",
                        kernel.name
                    );
                }
            }
        }
    }
}
