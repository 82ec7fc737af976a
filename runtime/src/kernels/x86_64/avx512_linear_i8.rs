//! The int8 linear layer on AVX-512 VNNI: `vpdpbusd` does 64 multiply-adds per instruction.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so activations are stored as `q + 128`
//! (`u8`) and the offset is taken back out of every accumulator with the weight column sums:
//! `Σ (q + 128) · w = Σ q · w + 128 · Σ w`. The integer result is exactly the i8×i8 product.
//! Panels of 64 columns, groups of 4 `k`: one 64-byte load feeds 16 columns of one `vpdpbusd`.

use super::avx512_math::gelu16;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use std::arch::x86_64::*;

/// Rows per micro-kernel call.
const MR: usize = 6;
/// Columns per panel (four 16-lane registers).
pub(super) const NR: usize = 64;

/// Handed out only where AVX-512 F/BW/VNNI and FMA were detected.
pub static KERNEL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_avx512vnni_i32_6x64",
    nr: NR,
    ku: 4,
    k_align: 4,
    activation_bytes: 1,
    offset_activations: true,
    quantize: |x, k, k_padded, a, scales| {
        // SAFETY: this kernel is only chosen where AVX-512 F/BW was detected.
        unsafe { quantize_rows(x, k, k_padded, a, scales) }
    },
    gemm: |g, panels| {
        // SAFETY: only chosen where AVX-512 F/BW/VNNI and FMA were detected; `Gemm` holds
        // operands of the sizes it states.
        unsafe { gemm(g, panels) }
    },
};

/// Quantizes each row of `x` (`k` wide) to `u8` (`q + 128`) rows `k_padded` wide in `out`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn quantize_rows(
    x: &[f32],
    k: usize,
    k_padded: usize,
    out: &mut [u8],
    scales: &mut [f32],
) {
    let full = k / 16 * 16;
    for (r, (row, scale)) in x.chunks_exact(k).zip(scales.iter_mut()).enumerate() {
        let mut maxv = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            let v = _mm512_loadu_ps(row.as_ptr().add(i));
            maxv = _mm512_max_ps(_mm512_abs_ps(v), maxv);
            i += 16;
        }
        let mut max_abs = _mm512_reduce_max_ps(maxv);
        for &v in &row[full..] {
            if v.abs() > max_abs {
                max_abs = v.abs();
            }
        }
        *scale = if max_abs > 0.0 && max_abs.is_finite() {
            max_abs / 127.0
        } else {
            1.0
        };
        let inv = _mm512_set1_ps(1.0 / *scale);
        let (lo, hi) = (_mm512_set1_ps(-127.0), _mm512_set1_ps(127.0));
        let half = _mm512_set1_ps(0.5);
        let sign = _mm512_set1_epi32(i32::MIN);
        let offset = _mm512_set1_epi32(128);
        let dst = out.as_mut_ptr().add(r * k_padded);
        let mut i = 0;
        while i < full {
            let v = _mm512_mul_ps(_mm512_loadu_ps(row.as_ptr().add(i)), inv);
            // NaN-safe clamp: max/min return the second operand when the first is NaN.
            let v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            // round half away from zero: add ±0.5, truncate
            let signed_half = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(v), sign),
                _mm512_castps_si512(half),
            ));
            let q = _mm512_cvttps_epi32(_mm512_add_ps(v, signed_half));
            let u = _mm512_add_epi32(q, offset);
            _mm_storeu_si128(dst.add(i) as *mut __m128i, _mm512_cvtepi32_epi8(u));
            i += 16;
        }
        let inv = 1.0 / *scale;
        for (j, &v) in row.iter().enumerate().skip(full) {
            let v = if v.is_nan() {
                0.0
            } else {
                (v * inv).clamp(-127.0, 127.0)
            };
            let q = (v + 0.5f32.copysign(v)) as i32;
            *dst.add(j) = (q + 128) as u8;
        }
    }
}

/// Panels `panels` × all row blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
unsafe fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    for p in panels {
        rows_from(g, p, 0);
    }
}

/// Rows `r..m` of panel `p`, in tiles of up to [`MR`] rows (the AMX kernel's leftover rows too:
/// both kernels pack weights the same way).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
pub(super) unsafe fn rows_from(g: &Gemm, p: usize, mut r: usize) {
    while r < g.m {
        let rows = (g.m - r).min(MR);
        let args = Tile::new(g, p, r);
        match rows {
            6 => tile::<6>(&args),
            5 => tile::<5>(&args),
            4 => tile::<4>(&args),
            3 => tile::<3>(&args),
            2 => tile::<2>(&args),
            _ => tile::<1>(&args),
        }
        r += rows;
    }
}

/// Operands of rows `r..` of one panel, as the micro-kernels and the epilogue read them.
pub(super) struct Tile {
    pub a: *const u8,
    pub lda: usize,
    pub panel: *const i8,
    groups: usize,
    y: *mut f32,
    ldy: usize,
    cols: usize,
    correction: *const i32,
    weight_scale: *const f32,
    bias: *const f32,
    row_scale: *const f32,
    gelu: bool,
    /// Same layout as `y`, or null.
    residual: *const f32,
}

impl Tile {
    /// Rows from `r` of panel `p` of `g`.
    ///
    /// # Safety
    /// `r < g.m` and `p` is a panel of `g.w`.
    pub(super) unsafe fn new(g: &Gemm, p: usize, r: usize) -> Tile {
        let w = g.w;
        let residual = g
            .epilogue
            .residual
            .map_or(std::ptr::null(), |res| res.as_ptr());
        Tile {
            a: g.a.as_ptr().add(r * w.k_padded),
            lda: w.k_padded,
            panel: w.panels.as_ptr().add(p * NR * w.k_padded),
            groups: w.k_padded / 4,
            y: g.y.ptr().add(r * w.n + p * NR),
            ldy: w.n,
            cols: (w.n - p * NR).min(NR),
            correction: w.offset_correction.as_ptr().add(p * NR),
            weight_scale: w.weight_scale.as_ptr().add(p * NR),
            bias: w.bias.as_ptr().add(p * NR),
            row_scale: g.scales.as_ptr().add(r),
            gelu: g.epilogue.gelu,
            residual: if residual.is_null() {
                residual
            } else {
                residual.add(r * w.n + p * NR)
            },
        }
    }
}

/// `R` rows × 64 columns, accumulated over the whole `k` in 4R registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
#[inline]
unsafe fn tile<const R: usize>(t: &Tile) {
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let mut wp = t.panel;
    for g in 0..t.groups {
        let w0 = _mm512_loadu_si512(wp as *const _);
        let w1 = _mm512_loadu_si512(wp.add(64) as *const _);
        let w2 = _mm512_loadu_si512(wp.add(128) as *const _);
        let w3 = _mm512_loadu_si512(wp.add(192) as *const _);
        for (r, acc) in acc.iter_mut().enumerate() {
            let quad = (t.a.add(r * t.lda + g * 4) as *const i32).read_unaligned();
            let b = _mm512_set1_epi32(quad);
            acc[0] = _mm512_dpbusd_epi32(acc[0], b, w0);
            acc[1] = _mm512_dpbusd_epi32(acc[1], b, w1);
            acc[2] = _mm512_dpbusd_epi32(acc[2], b, w2);
            acc[3] = _mm512_dpbusd_epi32(acc[3], b, w3);
        }
        wp = wp.add(NR * 4);
    }
    for (r, acc) in acc.iter().enumerate() {
        finish(t, r, acc);
    }
}

/// Row `r` of the tile from its four accumulators (64 columns, offset included): takes the
/// offset out, scales, adds the bias, applies GELU and the residual, stores the live columns.
#[target_feature(enable = "avx512f,avx512bw,fma")]
#[inline]
pub(super) unsafe fn finish(t: &Tile, r: usize, acc: &[__m512i; 4]) {
    let row_scale = _mm512_set1_ps(*t.row_scale.add(r));
    let out = t.y.add(r * t.ldy);
    for (j, &v) in acc.iter().enumerate() {
        let first = j * 16;
        if first >= t.cols {
            break;
        }
        let corrected =
            _mm512_sub_epi32(v, _mm512_loadu_si512(t.correction.add(first) as *const _));
        let scale = _mm512_mul_ps(_mm512_loadu_ps(t.weight_scale.add(first)), row_scale);
        let mut value = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(corrected),
            scale,
            _mm512_loadu_ps(t.bias.add(first)),
        );
        let live = (t.cols - first).min(16);
        let mask: __mmask16 = if live == 16 {
            0xffff
        } else {
            (1u16 << live) - 1
        };
        if t.gelu {
            value = gelu16(value);
        }
        if !t.residual.is_null() {
            let residual = t.residual.add(r * t.ldy + first);
            value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, residual));
        }
        _mm512_mask_storeu_ps(out.add(first), mask, value);
    }
}
