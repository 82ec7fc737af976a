//! Portable LSTM layer: gate columns accumulated in registers, 64, then 8, then 1 at a time.

use crate::kernels::lstm::{LstmKernel, LstmOperands, LstmShapes};
use crate::ops::fast_math::{sigmoid, tanh};

/// Plain loops, any hidden size.
pub static LSTM: LstmKernel = LstmKernel {
    name: "generic",
    hidden_multiple: 1,
    run,
};

fn run(s: &LstmShapes, o: LstmOperands) {
    let LstmOperands {
        x,
        w_t,
        r_t,
        bias,
        h,
        c,
        y,
    } = o;
    let (hd, g4) = (s.hidden, 4 * s.hidden);
    let mut gates = vec![0f32; g4];
    for t in 0..s.steps {
        for b in 0..s.batch {
            let xt = &x[(t * s.batch + b) * s.input..][..s.input];
            let hb = &mut h[b * hd..(b + 1) * hd];
            // gates = bias + x·W + h·R, 64 (then 8, then 1) columns at a time in registers
            let mut col = 0;
            while col + 64 <= g4 {
                gate_columns::<64>(&mut gates, col, bias, xt, w_t, hb, r_t);
                col += 64;
            }
            while col + 8 <= g4 {
                gate_columns::<8>(&mut gates, col, bias, xt, w_t, hb, r_t);
                col += 8;
            }
            while col < g4 {
                gate_columns::<1>(&mut gates, col, bias, xt, w_t, hb, r_t);
                col += 1;
            }
            let cb = &mut c[b * hd..(b + 1) * hd];
            let (gi, rest) = gates.split_at(hd);
            let (go, rest) = rest.split_at(hd);
            let (gf, gc) = rest.split_at(hd);
            for (((((c, h), &i), &o), &f), &g) in cb
                .iter_mut()
                .zip(hb.iter_mut())
                .zip(gi)
                .zip(go)
                .zip(gf)
                .zip(gc)
            {
                let cj = sigmoid(f) * *c + sigmoid(i) * tanh(g);
                *c = cj;
                *h = sigmoid(o) * tanh(cj);
            }
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}

/// `gates[col..col + N] = bias + Σ x_k W_t[k] + Σ h_k R_t[k]` over those columns, with the
/// `N` partial sums held in registers.
#[inline(always)]
fn gate_columns<const N: usize>(
    gates: &mut [f32],
    col: usize,
    bias: &[f32],
    x: &[f32],
    w_t: &[f32],
    h: &[f32],
    r_t: &[f32],
) {
    let g4 = bias.len();
    let mut acc = [0f32; N];
    acc.copy_from_slice(&bias[col..col + N]);
    for (&v, w) in x.iter().zip(w_t.chunks_exact(g4)) {
        let w: &[f32; N] = w[col..col + N].try_into().unwrap();
        for (a, &w) in acc.iter_mut().zip(w) {
            *a += v * w;
        }
    }
    for (&v, r) in h.iter().zip(r_t.chunks_exact(g4)) {
        let r: &[f32; N] = r[col..col + N].try_into().unwrap();
        for (a, &r) in acc.iter_mut().zip(r) {
            *a += v * r;
        }
    }
    gates[col..col + N].copy_from_slice(&acc);
}
