//! Portable GRU layer: both products of a step into gate buffers, then the cell update.

use crate::kernels::gru::{GruKernel, GruOperands, GruShapes};
use crate::ops::fast_math::{sigmoid, tanh};

/// Plain loops, any hidden size.
pub static GRU: GruKernel = GruKernel {
    name: "generic",
    hidden_multiple: 1,
    run,
};

fn run(s: &GruShapes, o: GruOperands) {
    let GruOperands {
        x,
        w_t,
        r_t,
        w_bias,
        r_bias,
        h,
        y,
    } = o;
    let hd = s.hidden;
    let (mut gx, mut gh) = (vec![0f32; 3 * hd], vec![0f32; 3 * hd]);
    for t in 0..s.steps {
        for b in 0..s.batch {
            let xt = &x[(t * s.batch + b) * s.input..][..s.input];
            let hb = &mut h[b * hd..(b + 1) * hd];
            project(&mut gx, w_bias, xt, w_t);
            project(&mut gh, r_bias, hb, r_t);
            for (j, hj) in hb.iter_mut().enumerate() {
                let z = sigmoid(gx[j] + gh[j]);
                let r = sigmoid(gx[hd + j] + gh[hd + j]);
                let n = tanh(gx[2 * hd + j] + r * gh[2 * hd + j]);
                *hj = n + z * (*hj - n);
            }
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}

/// `out = bias + Σ_k v[k] · w[k]` (rows of `w` as long as `out`).
fn project(out: &mut [f32], bias: &[f32], v: &[f32], w: &[f32]) {
    out.copy_from_slice(bias);
    for (&vk, row) in v.iter().zip(w.chunks_exact(out.len())) {
        for (o, &wk) in out.iter_mut().zip(row) {
            *o += vk * wk;
        }
    }
}
