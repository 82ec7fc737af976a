//! The portable f32 linear kernel: the reference the native ones are tested against.

use super::gelu_as;
use crate::kernels::linear_f32::{GemmF32, LinearF32Kernel};

/// Plain loops over panels of 8 columns.
pub static LINEAR_F32: LinearF32Kernel = LinearF32Kernel {
    name: "kinglet_generic_f32_1x8",
    nr: 8,
    gemm,
};

fn gemm(g: &GemmF32, panels: std::ops::Range<usize>) {
    let w = g.w;
    for p in panels {
        let cols = (w.n - p * w.nr).min(w.nr);
        let panel = &w.panels[p * w.nr * w.k..(p + 1) * w.nr * w.k];
        for r in 0..g.m {
            let x = &g.x[r * w.k..(r + 1) * w.k];
            let mut acc = [0f32; 8];
            for (xk, wk) in x.iter().zip(panel.chunks_exact(w.nr)) {
                for (a, &wv) in acc.iter_mut().zip(wk) {
                    *a = xk.mul_add(wv, *a);
                }
            }
            for (c, &acc) in acc.iter().enumerate().take(cols) {
                let col = p * w.nr + c;
                let mut v = acc + w.bias[col];
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
