//! The int8 linear layer on armv7 NEON: `vmull.s8` + `vmlal.s8` multiply 16 bytes of one row
//! by 16 bytes of one column into eight 16-bit sums of two products (never saturating: at most
//! 2 · 127² < 2¹⁵), `vpadal.s16` adds them pairwise into four 32-bit accumulators. Panels of
//! 4 columns, groups of 16 `k`; a tile is 2 rows × 4 columns in eight `q` registers, reduced and
//! scaled in Rust once per tile.

use crate::kernels::generic::gelu_as;
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};

/// Runs where NEON was detected.
pub static SMULL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_armv7_neon_i32_2x4",
    nr: 4,
    ku: 16,
    k_align: 16,
    activation_bytes: 1,
    offset_activations: false,
    quantize: crate::kernels::generic::LINEAR_I8.quantize,
    // SAFETY: only chosen where NEON was detected; `Gemm` holds operands of the sizes it states.
    gemm: |g, panels| unsafe { gemm(g, panels) },
};

unsafe fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    let w = g.w;
    let steps = w.k_padded / 16;
    let mut acc = [0i32; 32];
    for p in panels {
        let panel = w.panels.as_ptr().add(p * 4 * w.k_padded);
        let mut r = 0;
        while r < g.m {
            let rows = (g.m - r).min(2);
            let a0 = g.a.as_ptr().add(r * w.k_padded);
            // a lone last row is multiplied twice; the copy is not stored
            let a1 = g.a.as_ptr().add((r + rows - 1) * w.k_padded);
            if steps > 0 {
                tile(a0, a1, panel, steps, &mut acc);
            } else {
                acc.fill(0);
            }
            for i in 0..rows {
                for c in 0..4 {
                    let col = p * 4 + c;
                    if col >= w.n {
                        break;
                    }
                    let lanes = &acc[(4 * i + c) * 4..][..4];
                    let sum: i32 = lanes.iter().sum();
                    let row = r + i;
                    let scale = w.weight_scale[col] * g.scales[row];
                    let mut v = (sum as f32).mul_add(scale, w.bias[col]);
                    if g.epilogue.gelu {
                        v = gelu_as(v);
                    }
                    let at = row * w.n + col;
                    if let Some(res) = g.epilogue.residual {
                        v += res[at];
                    }
                    *g.y.ptr().add(at) = v;
                }
            }
            r += rows;
        }
    }
}

/// Accumulates rows `a0`, `a1` (`16 · steps` bytes each) against one panel of 4 columns into
/// `acc`: `[row][column][4 partial sums]`.
unsafe fn tile(a0: *const u8, a1: *const u8, panel: *const i8, steps: usize, acc: &mut [i32; 32]) {
    std::arch::asm!(
        ".fpu neon",
        "vmov.i32 q8, #0",
        "vmov.i32 q9, #0",
        "vmov.i32 q10, #0",
        "vmov.i32 q11, #0",
        "vmov.i32 q12, #0",
        "vmov.i32 q13, #0",
        "vmov.i32 q14, #0",
        "vmov.i32 q15, #0",
        "2:",
        "vld1.8 {{d0, d1}}, [{a0}]!",
        "vld1.8 {{d2, d3}}, [{a1}]!",
        "vld1.8 {{d4, d5, d6, d7}}, [{w}]!",
        "vld1.8 {{d8, d9, d10, d11}}, [{w}]!",
        "vmull.s8 q6, d0, d4",
        "vmull.s8 q7, d0, d6",
        "vmlal.s8 q6, d1, d5",
        "vmlal.s8 q7, d1, d7",
        "vpadal.s16 q8, q6",
        "vpadal.s16 q9, q7",
        "vmull.s8 q6, d0, d8",
        "vmull.s8 q7, d0, d10",
        "vmlal.s8 q6, d1, d9",
        "vmlal.s8 q7, d1, d11",
        "vpadal.s16 q10, q6",
        "vpadal.s16 q11, q7",
        "vmull.s8 q6, d2, d4",
        "vmull.s8 q7, d2, d6",
        "vmlal.s8 q6, d3, d5",
        "vmlal.s8 q7, d3, d7",
        "vpadal.s16 q12, q6",
        "vpadal.s16 q13, q7",
        "vmull.s8 q6, d2, d8",
        "vmull.s8 q7, d2, d10",
        "vmlal.s8 q6, d3, d9",
        "vmlal.s8 q7, d3, d11",
        "vpadal.s16 q14, q6",
        "vpadal.s16 q15, q7",
        "subs {n}, {n}, #1",
        "bne 2b",
        "vst1.32 {{d16, d17, d18, d19}}, [{out}]!",
        "vst1.32 {{d20, d21, d22, d23}}, [{out}]!",
        "vst1.32 {{d24, d25, d26, d27}}, [{out}]!",
        "vst1.32 {{d28, d29, d30, d31}}, [{out}]!",
        a0 = inout(reg) a0 => _,
        a1 = inout(reg) a1 => _,
        w = inout(reg) panel => _,
        n = inout(reg) steps => _,
        out = inout(reg) acc.as_mut_ptr() => _,
        // d0–d15 (q0–q7) are the registers the compiler allocates on this target (VFPv3-D16);
        // q8–q15 (d16–d31) exist only with NEON, so no compiled code holds values there.
        out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
        out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
        out("d12") _, out("d13") _, out("d14") _, out("d15") _,
        options(nostack),
    );
}
