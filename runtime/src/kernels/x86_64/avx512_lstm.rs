//! LSTM layer on AVX-512 F.

use super::avx512_math::{sigmoid16, tanh16};
use crate::kernels::lstm::{LstmKernel, LstmOperands, LstmShapes};
use std::arch::x86_64::*;

/// Handed out only where AVX-512 F was detected.
pub static KERNEL: LstmKernel = LstmKernel {
    name: "kinglet_avx512",
    hidden_multiple: 16,
    // SAFETY: only chosen where AVX-512 F was detected; every slice is indexed within the shapes.
    run: |s, o| unsafe { run(s, o) },
};

/// x86-64 AVX-512. The input projection `bias + x_t · W` of every step is computed first, four
/// steps per pass over `W`, so each step reads only `R` (at hidden 64, `W` and `R` of a second
/// layer are 64 KiB each, more than L1 holds: reading both every step made the layer bound by L2
/// bandwidth). Then per step up to 256 gate columns (16 registers) accumulate at once, each
/// hidden value broadcast once, 16 independent FMA chains hiding latency. The sums are added in
/// the generic twin's order (bias, inputs, hidden), so the results are the same bits.
#[target_feature(enable = "avx512f")]
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
    let rows = s.steps * s.batch;
    let mut projected = vec![0f32; rows * g4];
    let mut r = 0;
    while r < rows {
        match rows - r {
            1 => project::<1>(x, w_t, bias, s.input, g4, r, &mut projected),
            2 => project::<2>(x, w_t, bias, s.input, g4, r, &mut projected),
            3 => project::<3>(x, w_t, bias, s.input, g4, r, &mut projected),
            _ => project::<4>(x, w_t, bias, s.input, g4, r, &mut projected),
        }
        r += 4;
    }
    let mut gates = vec![0f32; g4];
    for t in 0..s.steps {
        for b in 0..s.batch {
            let row = t * s.batch + b;
            let hb = &mut h[b * hd..(b + 1) * hd];
            let mut col = 0;
            while col < g4 {
                let lanes = ((g4 - col) / 16).min(16);
                let start = projected.as_ptr().add(row * g4 + col);
                let mut acc = [_mm512_setzero_ps(); 16];
                for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                    *a = _mm512_loadu_ps(start.add(16 * l));
                }
                for (k, &v) in hb.iter().enumerate() {
                    let v = _mm512_set1_ps(v);
                    let row = r_t.as_ptr().add(k * g4 + col);
                    if lanes == 16 {
                        for (l, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(v, _mm512_loadu_ps(row.add(16 * l)), *a);
                        }
                    } else {
                        for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                            *a = _mm512_fmadd_ps(v, _mm512_loadu_ps(row.add(16 * l)), *a);
                        }
                    }
                }
                for (l, a) in acc.iter().enumerate().take(lanes) {
                    _mm512_storeu_ps(gates.as_mut_ptr().add(col + 16 * l), *a);
                }
                col += 16 * lanes;
            }
            let cb = &mut c[b * hd..(b + 1) * hd];
            let g = gates.as_ptr();
            for j in (0..hd).step_by(16) {
                let i = sigmoid16(_mm512_loadu_ps(g.add(j)));
                let o = sigmoid16(_mm512_loadu_ps(g.add(hd + j)));
                let f = sigmoid16(_mm512_loadu_ps(g.add(2 * hd + j)));
                let cc = tanh16(_mm512_loadu_ps(g.add(3 * hd + j)));
                let c_old = _mm512_loadu_ps(cb.as_ptr().add(j));
                let cj = _mm512_fmadd_ps(f, c_old, _mm512_mul_ps(i, cc));
                _mm512_storeu_ps(cb.as_mut_ptr().add(j), cj);
                _mm512_storeu_ps(hb.as_mut_ptr().add(j), _mm512_mul_ps(o, tanh16(cj)));
            }
            y[row * hd..][..hd].copy_from_slice(hb);
        }
    }
}

/// `out[r0 + i] = bias + x[r0 + i] · W` for `R` rows of `x` (`input` wide), 64 gate columns at
/// a time (`g4` is a multiple of 64: the hidden size is a multiple of 16).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn project<const R: usize>(
    x: &[f32],
    w_t: &[f32],
    bias: &[f32],
    input: usize,
    g4: usize,
    r0: usize,
    out: &mut [f32],
) {
    debug_assert!(x.len() >= (r0 + R) * input && out.len() >= (r0 + R) * g4);
    for col in (0..g4).step_by(64) {
        let b = bias.as_ptr().add(col);
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for acc in acc.iter_mut() {
            for (l, a) in acc.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(b.add(16 * l));
            }
        }
        for k in 0..input {
            let w = w_t.as_ptr().add(k * g4 + col);
            let w = [
                _mm512_loadu_ps(w),
                _mm512_loadu_ps(w.add(16)),
                _mm512_loadu_ps(w.add(32)),
                _mm512_loadu_ps(w.add(48)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let v = _mm512_set1_ps(*x.get_unchecked((r0 + i) * input + k));
                for (a, w) in acc.iter_mut().zip(w) {
                    *a = _mm512_fmadd_ps(v, w, *a);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let dst = out.as_mut_ptr().add((r0 + i) * g4 + col);
            for (l, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(16 * l), *a);
            }
        }
    }
}
