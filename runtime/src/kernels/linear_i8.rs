//! The int8 linear layer family: `y = gelu?(dequant(quant(x) · Wᵀ) + b) + residual?` in one
//! pass over the activations.
//!
//! Activations are quantized per row, symmetric (`s = max|row| / 127`, `q = round(x / s)`
//! half away from zero, as [`crate::ops::quantize_rows`]), so every kernel computes exactly the
//! same integer products; kernels differ only in float rounding of the rescale and GELU.
//!
//! Weights are packed once, at load, for the chosen kernel: panels of `nr` output columns; in
//! each panel, groups of `ku` consecutive `k`, and in a group the `nr` columns one after the
//! other, `ku` bytes each (`[panel][k / ku][nr][ku]`). A group is what one step of the
//! micro-kernel consumes: 64 bytes for AVX-512 VNNI (`nr` 64, `ku` 4), SDOT (16, 4) and
//! SMULL/SADALP (4, 16) alike.

use crate::workers::{share_out, SharedOut, Workers};

/// A native int8 linear kernel: its packing geometry and its two passes.
#[derive(Debug)]
pub struct LinearI8Kernel {
    /// Name listed by `inspect --profile` (contains `i32`, like tract's integer kernels).
    pub name: &'static str,
    /// Output columns per packed panel.
    pub nr: usize,
    /// Consecutive `k` per packed group.
    pub ku: usize,
    /// `k` is padded to a multiple of this (≥ `ku`): the micro-kernel's step.
    pub k_align: usize,
    /// Bytes per stored activation: 1 (`i8`, or `u8` with offset), 2 (`i16`).
    pub activation_bytes: usize,
    /// Activations are stored as `q + 128` (`u8`), not as `i8`: the kernel subtracts
    /// `128 · Σ w` per column.
    pub offset_activations: bool,
    /// Quantizes rows: `x` `[m, k]` into `a` (`m` rows of `k_padded` activations of
    /// `activation_bytes`, padding untouched) and one scale per row.
    pub quantize: fn(x: &[f32], k: usize, k_padded: usize, a: &mut [u8], scales: &mut [f32]),
    /// The product for output panels `panels`, all rows.
    pub gemm: fn(&Gemm, std::ops::Range<usize>),
}

/// What happens to each output after scaling and bias.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Exact GELU.
    pub gelu: bool,
    /// Added last; same shape as the output.
    pub residual: Option<&'a [f32]>,
}

/// One call's operands, as the micro-kernels read them.
pub struct Gemm<'a> {
    /// Packed weights.
    pub w: &'a PackedI8,
    /// Quantized activations, `m` rows of `w.k_padded` activations.
    pub a: &'a [u8],
    /// One scale per row.
    pub scales: &'a [f32],
    /// Output, `m × w.n`, row-major.
    pub y: SharedOut,
    /// Rows.
    pub m: usize,
    /// GELU flag and residual (`m × w.n`).
    pub epilogue: Epilogue<'a>,
}

/// Weights packed for one [`LinearI8Kernel`], with what the epilogue needs.
#[derive(Debug, Clone)]
pub struct PackedI8 {
    /// Contracted length, as in the graph.
    pub k: usize,
    /// `k` rounded up to the kernel's `k_align`.
    pub k_padded: usize,
    /// Output columns, as in the graph.
    pub n: usize,
    /// Columns per panel (the kernel's `nr`).
    pub nr: usize,
    /// `k` per group (the kernel's `ku`).
    pub ku: usize,
    /// `[panel][k_padded / ku][nr][ku]`, zero-padded.
    pub panels: Vec<i8>,
    /// `128 · Σ_k w[n][k]` per column (for offset activations), padded to whole panels.
    pub offset_correction: Vec<i32>,
    /// Per-column weight scale, padded with zeros.
    pub weight_scale: Vec<f32>,
    /// Per-column bias, padded with zeros.
    pub bias: Vec<f32>,
}

impl PackedI8 {
    /// Packs `w` (`[n, k]`, row-major, one scale per row) for `kernel`.
    pub fn pack(
        kernel: &LinearI8Kernel,
        w: &[i8],
        n: usize,
        k: usize,
        weight_scale: &[f32],
        bias: &[f32],
    ) -> Self {
        assert_eq!(w.len(), n * k);
        assert_eq!(weight_scale.len(), n);
        assert_eq!(bias.len(), n);
        let (nr, ku) = (kernel.nr, kernel.ku);
        let k_padded = k.div_ceil(kernel.k_align) * kernel.k_align;
        let n_padded = n.div_ceil(nr) * nr;
        let mut panels = vec![0i8; n_padded * k_padded];
        for col in 0..n {
            let base = (col / nr) * nr * k_padded + (col % nr) * ku;
            for (kk, &v) in w[col * k..(col + 1) * k].iter().enumerate() {
                panels[base + (kk / ku) * nr * ku + kk % ku] = v;
            }
        }
        let mut offset_correction = vec![0i32; n_padded];
        for (col, c) in offset_correction.iter_mut().take(n).enumerate() {
            *c = 128
                * w[col * k..(col + 1) * k]
                    .iter()
                    .map(|&v| v as i32)
                    .sum::<i32>();
        }
        let pad = |v: &[f32]| {
            let mut p = v.to_vec();
            p.resize(n_padded, 0.0);
            p
        };
        PackedI8 {
            k,
            k_padded,
            n,
            nr,
            ku,
            panels,
            offset_correction,
            weight_scale: pad(weight_scale),
            bias: pad(bias),
        }
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        self.panels.len() + 4 * (self.offset_correction.len() + 2 * self.weight_scale.len())
    }

    /// Panels of `nr` columns.
    pub fn panel_count(&self) -> usize {
        self.n.div_ceil(self.nr)
    }

    /// The `ku × nr` bytes of group `g` of panel `p`.
    pub fn group(&self, p: usize, g: usize) -> &[i8] {
        let start = p * self.nr * self.k_padded + g * self.nr * self.ku;
        &self.panels[start..start + self.nr * self.ku]
    }

    /// `y[m][n] = gelu?(Σ_k x[m][k] · w[n][k] + bias[n]) + residual?` computed in int8 with
    /// `kernel` (the one these weights were packed for), for `x` `[m, k]` and `y` `[m, n]`.
    /// With a `pool`, the output panels are shared out among its threads.
    pub fn matmul(
        &self,
        kernel: &LinearI8Kernel,
        x: &[f32],
        y: &mut [f32],
        m: usize,
        pool: Option<&Workers>,
        epilogue: Epilogue,
    ) {
        assert_eq!((kernel.nr, kernel.ku), (self.nr, self.ku));
        assert_eq!(x.len(), m * self.k);
        assert_eq!(y.len(), m * self.n);
        if let Some(r) = epilogue.residual {
            assert_eq!(r.len(), y.len());
        }
        let zero = if kernel.offset_activations { 128 } else { 0 };
        let mut a = vec![zero; m * self.k_padded * kernel.activation_bytes];
        let mut scales = vec![0f32; m];
        (kernel.quantize)(x, self.k, self.k_padded, &mut a, &mut scales);
        let gemm = Gemm {
            w: self,
            a: &a,
            scales: &scales,
            y: SharedOut(y.as_mut_ptr()),
            m,
            epilogue,
        };
        share_out(pool, self.panel_count(), m * self.k * self.n, &|panels| {
            (kernel.gemm)(&gemm, panels)
        });
    }
}

/// Tests every native kernel this CPU runs against the generic twin, on ragged shapes, with
/// and without GELU and residual, on one and three threads.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic;

    /// `x`, `w`, weight scales, bias, residual.
    type Case = (Vec<f32>, Vec<i8>, Vec<f32>, Vec<f32>, Vec<f32>);

    fn case(m: usize, n: usize, k: usize) -> Case {
        let x = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.031)
            .collect();
        let w = (0..n * k)
            .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
            .collect();
        let ws = (0..n).map(|i| 0.001 + i as f32 * 1e-4).collect();
        let b = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
        let r = (0..m * n).map(|i| (i % 7) as f32 - 3.0).collect();
        (x, w, ws, b, r)
    }

    fn run(
        kernel: &LinearI8Kernel,
        (m, n, k): (usize, usize, usize),
        gelu: bool,
        residual: bool,
        pool: Option<&Workers>,
    ) -> Vec<f32> {
        let (x, w, ws, b, r) = case(m, n, k);
        let packed = PackedI8::pack(kernel, &w, n, k, &ws, &b);
        let mut y = vec![f32::NAN; m * n];
        let epilogue = Epilogue {
            gelu,
            residual: residual.then_some(&r[..]),
        };
        packed.matmul(kernel, &x, &mut y, m, pool, epilogue);
        y
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (7, 70, 13),
        (13, 64, 384),
        (6, 130, 35),
        (5, 17, 33),
        (128, 96, 64),
        (37, 130, 100),
        (1, 384, 1536),
    ];

    #[test]
    fn every_native_int8_kernel_matches_the_generic_twin() {
        let pool = Workers::start(2).unwrap();
        let natives = crate::kernels::linear_i8_candidates();
        eprintln!(
            "int8 kernels on this CPU: {:?}",
            natives.iter().map(|k| k.name).collect::<Vec<_>>()
        );
        for kernel in natives {
            for &shape in SHAPES {
                for (gelu, residual) in [(false, false), (true, false), (false, true), (true, true)]
                {
                    let want = run(&generic::LINEAR_I8, shape, gelu, residual, None);
                    let got = run(kernel, shape, gelu, residual, None);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 2e-5 * w.abs().max(1.0),
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

    #[test]
    fn generic_int8_kernel_equals_the_unfused_int8_graph() {
        use crate::ops::quantize_rows::quantize_rows;
        for &(m, n, k) in SHAPES {
            let (x, w, ws, b, _) = case(m, n, k);
            let mut q = vec![0i8; m * k];
            let mut s = vec![0f32; m];
            quantize_rows(&x, k, &mut q, &mut s);
            let got = run(&generic::LINEAR_I8, (m, n, k), false, false, None);
            for r in 0..m {
                for c in 0..n {
                    let acc: i32 = (0..k)
                        .map(|i| q[r * k + i] as i32 * w[c * k + i] as i32)
                        .sum();
                    let want = acc as f32 * s[r] * ws[c] + b[c];
                    let g = got[r * n + c];
                    assert!(
                        (g - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{g} vs {want}"
                    );
                }
            }
        }
    }
}
