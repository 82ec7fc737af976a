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

/// x86-64 AVX-512: up to 256 gate columns (16 registers) accumulated at once, so each input
/// and hidden value is broadcast once per step and 16 independent FMA chains hide latency.
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
    let mut gates = vec![0f32; g4];
    for t in 0..s.steps {
        for b in 0..s.batch {
            let xt = &x[(t * s.batch + b) * s.input..][..s.input];
            let hb = &mut h[b * hd..(b + 1) * hd];
            let mut col = 0;
            while col < g4 {
                let lanes = ((g4 - col) / 16).min(16);
                let mut acc = [_mm512_setzero_ps(); 16];
                for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                    *a = _mm512_loadu_ps(bias.as_ptr().add(col + 16 * l));
                }
                for (rows, v) in [(w_t, xt), (r_t, &*hb)] {
                    for (k, &v) in v.iter().enumerate() {
                        let v = _mm512_set1_ps(v);
                        let row = rows.as_ptr().add(k * g4 + col);
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
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}
