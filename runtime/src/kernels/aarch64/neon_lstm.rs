//! LSTM layer on NEON: 64 gate columns (16 registers) accumulated at once with `fmla` by lane,
//! four inputs per load, then the cell update four units at a time.

use super::neon_math::{sigmoid4, tanh4};
use crate::kernels::lstm::{LstmKernel, LstmOperands, LstmShapes};
use std::arch::aarch64::*;

/// NEON is part of every aarch64 core.
pub static KERNEL: LstmKernel = LstmKernel {
    name: "kinglet_neon",
    hidden_multiple: 16,
    // SAFETY: NEON is baseline; every slice is indexed within the shapes.
    run: |s, o| unsafe { run(s, o) },
};

/// `acc[0..16] += Σ_k v[k] · rows[k][col .. col + 64]`, 4 `k` per load of `v`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn accumulate(
    acc: &mut [float32x4_t; 16],
    v: &[f32],
    rows: *const f32,
    g4: usize,
    col: usize,
) {
    macro_rules! lane {
        ($lane:literal, $k:expr, $vv:expr) => {{
            let row = rows.add(($k + $lane) * g4 + col);
            for q in 0..4 {
                let w = vld1q_f32_x4(row.add(16 * q));
                acc[4 * q] = vfmaq_laneq_f32::<$lane>(acc[4 * q], w.0, $vv);
                acc[4 * q + 1] = vfmaq_laneq_f32::<$lane>(acc[4 * q + 1], w.1, $vv);
                acc[4 * q + 2] = vfmaq_laneq_f32::<$lane>(acc[4 * q + 2], w.2, $vv);
                acc[4 * q + 3] = vfmaq_laneq_f32::<$lane>(acc[4 * q + 3], w.3, $vv);
            }
        }};
    }
    let full = v.len() / 4 * 4;
    let mut k = 0;
    while k < full {
        let vv = vld1q_f32(v.as_ptr().add(k));
        lane!(0, k, vv);
        lane!(1, k, vv);
        lane!(2, k, vv);
        lane!(3, k, vv);
        k += 4;
    }
    while k < v.len() {
        let x = v[k];
        let row = rows.add(k * g4 + col);
        for (j, a) in acc.iter_mut().enumerate() {
            *a = vfmaq_n_f32(*a, vld1q_f32(row.add(4 * j)), x);
        }
        k += 1;
    }
}

#[target_feature(enable = "neon")]
unsafe fn run(s: &LstmShapes, o: LstmOperands) {
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
            // hidden is a multiple of 16, so 4H is a multiple of 64
            for col in (0..g4).step_by(64) {
                let mut acc: [float32x4_t; 16] =
                    std::array::from_fn(|j| vld1q_f32(bias.as_ptr().add(col + 4 * j)));
                accumulate(&mut acc, xt, w_t.as_ptr(), g4, col);
                accumulate(&mut acc, hb, r_t.as_ptr(), g4, col);
                for (j, a) in acc.iter().enumerate() {
                    vst1q_f32(gates.as_mut_ptr().add(col + 4 * j), *a);
                }
            }
            let cb = &mut c[b * hd..(b + 1) * hd];
            let g = gates.as_ptr();
            for j in (0..hd).step_by(4) {
                let i = sigmoid4(vld1q_f32(g.add(j)));
                let o = sigmoid4(vld1q_f32(g.add(hd + j)));
                let f = sigmoid4(vld1q_f32(g.add(2 * hd + j)));
                let cc = tanh4(vld1q_f32(g.add(3 * hd + j)));
                let c_old = vld1q_f32(cb.as_ptr().add(j));
                let cj = vfmaq_f32(vmulq_f32(i, cc), f, c_old);
                vst1q_f32(cb.as_mut_ptr().add(j), cj);
                vst1q_f32(hb.as_mut_ptr().add(j), vmulq_f32(o, tanh4(cj)));
            }
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}
