//! GRU layer on AVX-512 F.

use super::avx512_math::{sigmoid16, tanh16};
use crate::kernels::gru::{GruKernel, GruOperands, GruShapes};
use std::arch::x86_64::*;

/// Handed out only where AVX-512 F was detected.
pub static KERNEL: GruKernel = GruKernel {
    name: "kinglet_avx512",
    hidden_multiple: 16,
    // SAFETY: only chosen where AVX-512 F was detected; every slice is indexed within the shapes.
    run: |s, o| unsafe { run(s, o) },
};

/// `out = bias + Σ_k v[k] · rows[k]`: up to 256 columns (16 registers) at a time, each value
/// of `v` broadcast once per block.
#[target_feature(enable = "avx512f")]
unsafe fn project(out: &mut [f32], bias: &[f32], v: &[f32], rows: &[f32]) {
    let g3 = out.len();
    let mut col = 0;
    while col < g3 {
        let lanes = ((g3 - col) / 16).min(16);
        let mut acc = [_mm512_setzero_ps(); 16];
        for (l, a) in acc.iter_mut().enumerate().take(lanes) {
            *a = _mm512_loadu_ps(bias.as_ptr().add(col + 16 * l));
        }
        for (k, &vk) in v.iter().enumerate() {
            let vk = _mm512_set1_ps(vk);
            let row = rows.as_ptr().add(k * g3 + col);
            for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                *a = _mm512_fmadd_ps(vk, _mm512_loadu_ps(row.add(16 * l)), *a);
            }
        }
        for (l, a) in acc.iter().enumerate().take(lanes) {
            _mm512_storeu_ps(out.as_mut_ptr().add(col + 16 * l), *a);
        }
        col += 16 * lanes;
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run(s: &GruShapes, o: GruOperands) {
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
            let (px, ph) = (gx.as_ptr(), gh.as_ptr());
            for j in (0..hd).step_by(16) {
                let z = sigmoid16(_mm512_add_ps(
                    _mm512_loadu_ps(px.add(j)),
                    _mm512_loadu_ps(ph.add(j)),
                ));
                let r = sigmoid16(_mm512_add_ps(
                    _mm512_loadu_ps(px.add(hd + j)),
                    _mm512_loadu_ps(ph.add(hd + j)),
                ));
                let n = tanh16(_mm512_fmadd_ps(
                    r,
                    _mm512_loadu_ps(ph.add(2 * hd + j)),
                    _mm512_loadu_ps(px.add(2 * hd + j)),
                ));
                let h_old = _mm512_loadu_ps(hb.as_ptr().add(j));
                let h_new = _mm512_fmadd_ps(z, _mm512_sub_ps(h_old, n), n);
                _mm512_storeu_ps(hb.as_mut_ptr().add(j), h_new);
            }
            y[(t * s.batch + b) * hd..][..hd].copy_from_slice(hb);
        }
    }
}
