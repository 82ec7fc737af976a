//! The int8 matrix product behind [`super::linear_i8`]: `y = dequant(quant(x) · Wᵀ) + b` in one
//! pass, with x86-64 AVX-512 VNNI (`vpdpbusd`) doing 64 multiply-adds per instruction.
//!
//! Activations are quantized per row, symmetric (`q = round(x / s)`, `s = max|row| / 127`, as
//! [`super::quantize_rows`]), and stored offset by 128 as `u8`, the operand `vpdpbusd` wants
//! unsigned; the offset is taken back out of every accumulator with the weight column sums:
//! `Σ (q + 128) · w = Σ q · w + 128 · Σ w`. The integer result is therefore exactly the i8×i8
//! product of the unfused graph.
//!
//! Weights are packed once, at load, in panels of [`NR`] output columns: for each group of four
//! `k`, 64 columns × 4 bytes, so one 64-byte load feeds 16 columns of one `vpdpbusd`.

// The kernel exists only on x86-64; elsewhere packing is never reached.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use crate::workers::{share_out, SharedOut};

/// Output columns per packed panel (four 16-lane registers).
pub const NR: usize = 64;
/// Rows per micro-kernel call.
pub const MR: usize = 6;

/// What happens to each output after scaling and bias.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Exact GELU.
    pub gelu: bool,
    /// Added last; same shape as the output.
    pub residual: Option<&'a [f32]>,
}

/// Weights packed for [`PackedWeights::matmul`], with everything the epilogue needs.
#[derive(Debug, Clone)]
pub struct PackedWeights {
    /// Contracted length, as in the graph.
    pub k: usize,
    /// `k` rounded up to a multiple of 4.
    pub k_padded: usize,
    /// Output columns, as in the graph.
    pub n: usize,
    /// Panels of `NR` columns × `k_padded` bytes.
    panels: Vec<i8>,
    /// `128 · Σ_k w[n][k]` per column, padded to whole panels.
    offset_correction: Vec<i32>,
    /// Per-column weight scale, padded with zeros.
    weight_scale: Vec<f32>,
    /// Per-column bias, padded with zeros.
    bias: Vec<f32>,
}

impl PackedWeights {
    /// Packs `w` (`[n, k]`, row-major) with its per-row scales and bias.
    pub fn pack(w: &[i8], n: usize, k: usize, weight_scale: &[f32], bias: &[f32]) -> Self {
        assert_eq!(w.len(), n * k);
        assert_eq!(weight_scale.len(), n);
        assert_eq!(bias.len(), n);
        let k_padded = k.div_ceil(4) * 4;
        let n_padded = n.div_ceil(NR) * NR;
        let mut panels = vec![0i8; n_padded * k_padded];
        for col in 0..n {
            let (panel, c) = (col / NR, col % NR);
            let base = panel * NR * k_padded;
            let (reg, lane) = (c / 16, c % 16);
            for (kk, &v) in w[col * k..(col + 1) * k].iter().enumerate() {
                let group = kk / 4;
                panels[base + group * NR * 4 + reg * 64 + lane * 4 + kk % 4] = v;
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
        PackedWeights {
            k,
            k_padded,
            n,
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

    /// `y[m][n] = Σ_k x[m][k] · w[n][k] + bias[n]` computed in int8, for `x` `[m, k]` and `y`
    /// `[m, n]`. `scratch` is resized to hold the quantized activations.
    ///
    /// With a `pool`, the output panels are shared out among its threads.
    ///
    /// Only call when [`available`] returned true.
    pub fn matmul(
        &self,
        x: &[f32],
        y: &mut [f32],
        m: usize,
        scratch: &mut Vec<u8>,
        pool: Option<&crate::workers::Workers>,
        epilogue: Epilogue,
    ) {
        assert!(available());
        assert_eq!(x.len(), m * self.k);
        assert_eq!(y.len(), m * self.n);
        if let Some(r) = epilogue.residual {
            assert_eq!(r.len(), y.len());
        }
        scratch.clear();
        scratch.resize(m * self.k_padded, 128);
        let mut scales = vec![0f32; m];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` checked the CPU features; slices sized above; each thread
        // writes its own columns of `y`, which outlives the scope.
        unsafe {
            avx512::quantize_rows(x, self.k, self.k_padded, scratch, &mut scales);
            let out = SharedOut(y.as_mut_ptr());
            let (a, scales) = (&scratch[..], &scales[..]);
            share_out(pool, self.n.div_ceil(NR), m * self.k * self.n, &|panels| {
                avx512::gemm(self, a, scales, out.ptr(), m, panels, epilogue)
            });
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (x, y, &mut scales, pool, epilogue);
    }
}

/// Whether this CPU runs the fused int8 kernel (x86-64 with AVX-512 F/BW/VNNI). Elsewhere the
/// operator lowers to tract's own integer matmul kernels (arm64 SDOT/SMLAL, armv7 NEON, AVX2).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Epilogue, PackedWeights, MR, NR};
    use crate::ops::fast_math::avx512::gelu16;
    use std::arch::x86_64::*;

    /// Quantizes each row of `x` (`k` wide) to `u8` (`q + 128`) rows `k_padded` wide in `out`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn quantize_rows(
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
                let v = (v * inv).clamp(-127.0, 127.0);
                let q = (v + 0.5f32.copysign(v)) as i32;
                *dst.add(j) = (q + 128) as u8;
            }
        }
    }

    /// Panels `panels` × all row blocks; `y` is `m × w.n`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
    pub unsafe fn gemm(
        w: &PackedWeights,
        a: &[u8],
        scales: &[f32],
        y: *mut f32,
        m: usize,
        panels: std::ops::Range<usize>,
        epilogue: Epilogue,
    ) {
        let residual = epilogue.residual.map_or(std::ptr::null(), |r| r.as_ptr());
        for p in panels {
            let cols = (w.n - p * NR).min(NR);
            let panel = w.panels.as_ptr().add(p * NR * w.k_padded);
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(MR);
                let args = Tile {
                    a: a.as_ptr().add(r * w.k_padded),
                    lda: w.k_padded,
                    panel,
                    groups: w.k_padded / 4,
                    y: y.add(r * w.n + p * NR),
                    ldy: w.n,
                    cols,
                    correction: w.offset_correction.as_ptr().add(p * NR),
                    weight_scale: w.weight_scale.as_ptr().add(p * NR),
                    bias: w.bias.as_ptr().add(p * NR),
                    row_scale: scales.as_ptr().add(r),
                    gelu: epilogue.gelu,
                    residual: if residual.is_null() {
                        residual
                    } else {
                        residual.add(r * w.n + p * NR)
                    },
                };
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
    }

    struct Tile {
        a: *const u8,
        lda: usize,
        panel: *const i8,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::quantize_rows::quantize_rows;

    /// The unfused reference: quantize rows, i8×i8→i32, rescale, add bias.
    fn reference(
        x: &[f32],
        w: &[i8],
        ws: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<f32> {
        let mut q = vec![0i8; m * k];
        let mut s = vec![0f32; m];
        quantize_rows(x, k, &mut q, &mut s);
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let acc: i32 = (0..k)
                    .map(|i| q[r * k + i] as i32 * w[c * k + i] as i32)
                    .sum();
                y[r * n + c] = acc as f32 * s[r] * ws[c] + b[c];
            }
        }
        y
    }

    #[test]
    fn fused_product_equals_unfused_int8_graph_for_ragged_shapes() {
        if !available() {
            eprintln!("no AVX-512 VNNI on this CPU: the fused kernel is not used here");
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 70, 13),
            (13, 64, 384),
            (6, 130, 35),
            (128, 96, 64),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.031)
                .collect();
            let w: Vec<i8> = (0..n * k)
                .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
                .collect();
            let ws: Vec<f32> = (0..n).map(|i| 0.001 + i as f32 * 1e-4).collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let packed = PackedWeights::pack(&w, n, k, &ws, &b);
            let mut y = vec![f32::NAN; m * n];
            packed.matmul(&x, &mut y, m, &mut Vec::new(), None, Epilogue::default());
            let pool = crate::workers::Workers::start(2).unwrap();
            let mut y3 = vec![f32::NAN; m * n];
            packed.matmul(
                &x,
                &mut y3,
                m,
                &mut Vec::new(),
                Some(&pool),
                Epilogue::default(),
            );
            assert_eq!(y, y3, "3 threads give the same bits as 1");
            let want = reference(&x, &w, &ws, &b, m, n, k);
            for (i, (got, want)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{m}×{n}×{k} element {i}: {got} vs {want}"
                );
            }
        }
    }
}
