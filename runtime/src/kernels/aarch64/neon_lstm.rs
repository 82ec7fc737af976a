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

/// `acc[0..16] += v[L] · row[0 .. 64]`, and `row` moves on by `g4` floats (to the next `k`).
///
/// In assembly because the 64 weights of a step are four `ld1` of four registers each, with
/// post-increment (the last one by the row stride): 4 loads and 16 `fmla` per `k`. Written with
/// intrinsics, `vld1q_f32_x4` becomes eight `ldp` plus address arithmetic (25 instructions per
/// `k` instead of 20, counted on the ARM proxy).
#[target_feature(enable = "neon")]
#[inline]
unsafe fn lane<const L: i32>(
    acc: &mut [float32x4_t; 16],
    v: float32x4_t,
    row: &mut *const f32,
    stride_bytes: usize,
) {
    macro_rules! fmla4 {
        ($($a:literal $w:literal),*) => {
            concat!($("fmla {a", $a, ":v}.4s, v", $w, ".4s, {v:v}.s[{l}]\n",)*)
        };
    }
    std::arch::asm!(
        "ld1 {{v24.4s, v25.4s, v26.4s, v27.4s}}, [{p}], #64",
        "ld1 {{v28.4s, v29.4s, v30.4s, v31.4s}}, [{p}], #64",
        fmla4!(0 24, 1 25, 2 26, 3 27),
        "ld1 {{v24.4s, v25.4s, v26.4s, v27.4s}}, [{p}], #64",
        fmla4!(4 28, 5 29, 6 30, 7 31),
        "ld1 {{v28.4s, v29.4s, v30.4s, v31.4s}}, [{p}], {stride}",
        fmla4!(8 24, 9 25, 10 26, 11 27),
        fmla4!(12 28, 13 29, 14 30, 15 31),
        p = inout(reg) *row,
        stride = in(reg) stride_bytes,
        v = in(vreg) v,
        l = const L,
        a0 = inout(vreg) acc[0], a1 = inout(vreg) acc[1],
        a2 = inout(vreg) acc[2], a3 = inout(vreg) acc[3],
        a4 = inout(vreg) acc[4], a5 = inout(vreg) acc[5],
        a6 = inout(vreg) acc[6], a7 = inout(vreg) acc[7],
        a8 = inout(vreg) acc[8], a9 = inout(vreg) acc[9],
        a10 = inout(vreg) acc[10], a11 = inout(vreg) acc[11],
        a12 = inout(vreg) acc[12], a13 = inout(vreg) acc[13],
        a14 = inout(vreg) acc[14], a15 = inout(vreg) acc[15],
        out("v24") _, out("v25") _, out("v26") _, out("v27") _,
        out("v28") _, out("v29") _, out("v30") _, out("v31") _,
        options(pure, readonly, nostack, preserves_flags)
    );
}

/// `acc[0..16] += Σ_k v[k] · rows[k][col .. col + 64]`, 4 `k` per load of `v`.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn accumulate(
    acc: &mut [float32x4_t; 16],
    v: &[f32],
    rows: *const f32,
    g4: usize,
    col: usize,
) {
    let full = v.len() / 4 * 4;
    // the last load of a step moves on from `row + 48` to the next row
    let stride_bytes = (g4 - 48) * 4;
    let mut row = rows.add(col);
    let mut k = 0;
    while k < full {
        let vv = vld1q_f32(v.as_ptr().add(k));
        lane::<0>(acc, vv, &mut row, stride_bytes);
        lane::<1>(acc, vv, &mut row, stride_bytes);
        lane::<2>(acc, vv, &mut row, stride_bytes);
        lane::<3>(acc, vv, &mut row, stride_bytes);
        k += 4;
    }
    // 1–3 left: one broadcast each (cheaper here than padding a vector for `lane`)
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
