//! The int8 linear layer on aarch64 NEON, two kernels sharing quantization and epilogue:
//!
//! * [`SDOT`] (cores with `asimddp`): `sdot v.4s, w.16b, a.4b[lane]` adds four `k` of one row
//!   times four columns: 16 multiply-adds per instruction. Panels of 16 columns, groups of 4
//!   `k`; a tile is up to 4 rows × 16 columns in 16 accumulators, `k` 16 at a time.
//! * [`SMULL`] (every core: Cortex-A53, A72): `smull` + `smlal2` multiply 16 bytes of one row by
//!   16 bytes of one column into eight 16-bit sums of two products (at most 2 · 127² < 2¹⁵, so
//!   never saturating), `sadalp` adds them pairwise into four 32-bit accumulators: 3
//!   instructions per 16 multiply-adds. Panels of 4 columns, groups of 16 `k`; a tile is up to
//!   4 rows × 4 columns, reduced across lanes once at the end.
//!
//! Activations are quantized to `i8` exactly as the generic twin does (add ±0.5, truncate), so
//! the integer products are the same on every architecture. Each full block of four rows is
//! stored interleaved, 16 bytes of each row in turn (`[k / 16][4 rows][16]`), so one
//! four-register load feeds a whole tile; the last rows (fewer than four) stay row-major.

use super::neon_math::gelu4;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use std::arch::aarch64::*;

/// Rows per tile.
const MR: usize = 4;

/// Handed out only where the dot-product extension was detected.
pub static SDOT: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_arm64_sdot_i32_4x16",
    nr: 16,
    ku: 4,
    k_align: 16,
    activation_bytes: 1,
    offset_activations: false,
    // SAFETY: NEON is baseline on aarch64.
    quantize: |x, k, k_padded, a, scales| unsafe { quantize_rows(x, k, k_padded, a, scales) },
    // SAFETY: only chosen where `dotprod` was detected; `Gemm` holds operands of the sizes it
    // states.
    gemm: |g, panels| unsafe { gemm_sdot(g, panels) },
};

/// Runs on every aarch64 core.
pub static SMULL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_arm64_smull_i32_4x4",
    nr: 4,
    ku: 16,
    k_align: 16,
    activation_bytes: 1,
    offset_activations: false,
    // SAFETY: NEON is baseline on aarch64.
    quantize: |x, k, k_padded, a, scales| unsafe { quantize_rows(x, k, k_padded, a, scales) },
    // SAFETY: NEON is baseline; `Gemm` holds operands of the sizes it states.
    gemm: |g, panels| unsafe { gemm_smull(g, panels) },
};

/// Quantizes each row of `x` (`k` wide) to `i8` rows `k_padded` wide in `out`.
#[target_feature(enable = "neon")]
unsafe fn quantize_rows(x: &[f32], k: usize, k_padded: usize, out: &mut [u8], scales: &mut [f32]) {
    let full = k / 16 * 16;
    for (r, (row, scale)) in x.chunks_exact(k).zip(scales.iter_mut()).enumerate() {
        let src = row.as_ptr();
        // |x| maxima that skip NaN (FMAXNM), as the generic twin does
        let mut m = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i < full {
            let v = vld1q_f32_x4(src.add(i));
            m[0] = vmaxnmq_f32(m[0], vabsq_f32(v.0));
            m[1] = vmaxnmq_f32(m[1], vabsq_f32(v.1));
            m[2] = vmaxnmq_f32(m[2], vabsq_f32(v.2));
            m[3] = vmaxnmq_f32(m[3], vabsq_f32(v.3));
            i += 16;
        }
        let mut max_abs = vmaxnmvq_f32(vmaxnmq_f32(
            vmaxnmq_f32(m[0], m[1]),
            vmaxnmq_f32(m[2], m[3]),
        ));
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
        let inv = 1.0 / *scale;
        // byte `j` of row `r`: interleaved in full blocks of four rows, row-major after them
        let rows = x.len() / k;
        let dst = out.as_mut_ptr() as *mut i8;
        let at = |j: usize| -> usize {
            if r < rows / MR * MR {
                (r / MR) * MR * k_padded + (j / 16) * 16 * MR + (r % MR) * 16 + j % 16
            } else {
                r * k_padded + j
            }
        };
        let q = |v: float32x4_t| -> int32x4_t {
            // FMIN/FMAX keep NaN, and the truncating conversion turns it into 0
            let v = vminq_f32(
                vmaxq_f32(vmulq_n_f32(v, inv), vdupq_n_f32(-127.0)),
                vdupq_n_f32(127.0),
            );
            let half = vbslq_f32(vdupq_n_u32(0x8000_0000), v, vdupq_n_f32(0.5));
            vcvtq_s32_f32(vaddq_f32(v, half))
        };
        let mut i = 0;
        while i < full {
            let v = vld1q_f32_x4(src.add(i));
            let lo = vmovn_high_s32(vmovn_s32(q(v.0)), q(v.1));
            let hi = vmovn_high_s32(vmovn_s32(q(v.2)), q(v.3));
            vst1q_s8(dst.add(at(i)), vmovn_high_s16(vmovn_s16(lo), hi));
            i += 16;
        }
        for (j, &v) in row.iter().enumerate().skip(full) {
            let v = if v.is_nan() {
                0.0
            } else {
                (v * inv).clamp(-127.0, 127.0)
            };
            *dst.add(at(j)) = (v + 0.5f32.copysign(v)) as i8;
        }
    }
}

/// The next 16 bytes of `R` rows: one load for a full interleaved block of four, one per row
/// for the row-major rows after the last full block.
struct Rows<const R: usize> {
    ptrs: [*const i8; R],
}

impl<const R: usize> Rows<R> {
    #[inline(always)]
    unsafe fn new(g: &Gemm, r0: usize) -> Self {
        let base = g.a.as_ptr() as *const i8;
        let k_padded = g.w.k_padded;
        Rows {
            ptrs: std::array::from_fn(|i| base.add((r0 + i) * k_padded)),
        }
    }

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn next(&mut self) -> [int8x16_t; R] {
        if R == MR {
            let v = vld1q_s8_x4(self.ptrs[0]);
            self.ptrs[0] = self.ptrs[0].add(16 * MR);
            let v = [v.0, v.1, v.2, v.3];
            std::array::from_fn(|i| v[i])
        } else {
            std::array::from_fn(|i| {
                let v = vld1q_s8(self.ptrs[i]);
                self.ptrs[i] = self.ptrs[i].add(16);
                v
            })
        }
    }
}

/// Scales, biases, applies the epilogue to and stores four columns `col..` of row `row`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn finish4(g: &Gemm, row: usize, col: usize, acc: int32x4_t) {
    let w = g.w;
    let scale = vmulq_n_f32(vld1q_f32(w.weight_scale.as_ptr().add(col)), g.scales[row]);
    let mut v = vfmaq_f32(
        vld1q_f32(w.bias.as_ptr().add(col)),
        vcvtq_f32_s32(acc),
        scale,
    );
    if g.epilogue.gelu {
        v = gelu4(v);
    }
    let at = row * w.n + col;
    let out = g.y.ptr().add(at);
    let live = (w.n - col).min(4);
    if live == 4 {
        if let Some(res) = g.epilogue.residual {
            v = vaddq_f32(v, vld1q_f32(res.as_ptr().add(at)));
        }
        vst1q_f32(out, v);
    } else {
        let mut lanes = [0f32; 4];
        vst1q_f32(lanes.as_mut_ptr(), v);
        for (j, lane) in lanes.iter().enumerate().take(live) {
            let r = g.epilogue.residual.map_or(0.0, |res| res[at + j]);
            *out.add(j) = lane + r;
        }
    }
}

/// Calls `tile::<R>` for every block of up to [`MR`] rows.
macro_rules! row_blocks {
    ($g:expr, $tile:ident, $($args:expr),*) => {{
        let mut r = 0;
        while r < $g.m {
            let rows = ($g.m - r).min(MR);
            match rows {
                4 => $tile::<4>($g, r, $($args),*),
                3 => $tile::<3>($g, r, $($args),*),
                2 => $tile::<2>($g, r, $($args),*),
                _ => $tile::<1>($g, r, $($args),*),
            }
            r += rows;
        }
    }};
}

#[target_feature(enable = "neon")]
unsafe fn gemm_smull(g: &Gemm, panels: std::ops::Range<usize>) {
    for p in panels {
        row_blocks!(g, tile_smull, p);
    }
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile_smull<const R: usize>(g: &Gemm, r0: usize, p: usize) {
    let w = g.w;
    let mut acc = [[vdupq_n_s32(0); 4]; R];
    let mut a = Rows::<R>::new(g, r0);
    let mut wp = w.panels.as_ptr().add(p * 4 * w.k_padded);
    for _ in 0..w.k_padded / 16 {
        let b = vld1q_s8_x4(wp);
        let b = [b.0, b.1, b.2, b.3];
        let av = a.next();
        for (i, &av) in av.iter().enumerate() {
            for c in 0..4 {
                let prod = vmlal_high_s8(vmull_s8(vget_low_s8(av), vget_low_s8(b[c])), av, b[c]);
                acc[i][c] = vpadalq_s16(acc[i][c], prod);
            }
        }
        wp = wp.add(64);
    }
    for (i, acc) in acc.iter().enumerate() {
        let sums = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
        finish4(g, r0 + i, p * 4, sums);
    }
}

/// `acc + Σ_{j<4} w[4c + j] · a[4L + j]` for each of the four 32-bit lanes `c`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot<const L: i32>(mut acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    std::arch::asm!(
        "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
        acc = inout(vreg) acc,
        w = in(vreg) w,
        a = in(vreg) a,
        lane = const L,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_sdot(g: &Gemm, panels: std::ops::Range<usize>) {
    for p in panels {
        row_blocks!(g, tile_sdot, p);
    }
}

#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn tile_sdot<const R: usize>(g: &Gemm, r0: usize, p: usize) {
    let w = g.w;
    let mut acc = [[vdupq_n_s32(0); 4]; R];
    let mut a = Rows::<R>::new(g, r0);
    let mut wp = w.panels.as_ptr().add(p * 16 * w.k_padded);
    macro_rules! group {
        ($lane:literal, $av:expr) => {{
            let b = vld1q_s8_x4(wp);
            wp = wp.add(64);
            for i in 0..R {
                acc[i][0] = sdot::<$lane>(acc[i][0], b.0, $av[i]);
                acc[i][1] = sdot::<$lane>(acc[i][1], b.1, $av[i]);
                acc[i][2] = sdot::<$lane>(acc[i][2], b.2, $av[i]);
                acc[i][3] = sdot::<$lane>(acc[i][3], b.3, $av[i]);
            }
        }};
    }
    for _ in 0..w.k_padded / 16 {
        let av = a.next();
        group!(0, av);
        group!(1, av);
        group!(2, av);
        group!(3, av);
    }
    for (i, acc) in acc.iter().enumerate() {
        for (c, &v) in acc.iter().enumerate() {
            let col = p * 16 + c * 4;
            if col < w.n {
                finish4(g, r0 + i, col, v);
            }
        }
    }
}
