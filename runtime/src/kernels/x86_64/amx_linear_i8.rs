//! The int8 linear layer on AMX (Intel Xeon Sapphire Rapids and later): `tdpbusd` multiplies a
//! 16 × 64 tile of activations (`u8`, `q + 128`) by a 64 × 16 tile of weights into 16 × 16
//! 32-bit sums, 16,384 multiply-adds per instruction.
//!
//! The weights are packed exactly as for the AVX-512 VNNI kernel (panels of 64 columns, groups
//! of 4 `k`, [`super::avx512_linear_i8`]), so a weight tile is 16 groups of 16 columns read
//! with a 256-byte stride, and rows that do not fill a 16-row block go through the VNNI kernel
//! on the same packing. `k` is padded to 64, a tile's width. The epilogue (offset, scales,
//! bias, GELU, residual) is the VNNI kernel's, applied to the stored sums.
//!
//! Tiles: `tmm0..tmm3` accumulate the panel's four 16-column blocks, `tmm4` holds the
//! activations, `tmm5`/`tmm6` the weights in turn. Rust has no stable AMX intrinsics; the
//! tile instructions are `asm!`, and Linux hands out the tile state only to a process that asked
//! for it (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, done once in [`available`]).

use super::avx512_linear_i8::{self as vnni, Tile, NR};
use crate::kernels::linear_i8::{Gemm, LinearI8Kernel};
use std::arch::asm;
use std::arch::x86_64::*;

/// Rows per tile.
const MR: usize = 16;
/// `k` per tile step: 64 bytes per tile row.
const KT: usize = 64;

/// Handed out only where [`available`] said so.
pub static KERNEL: LinearI8Kernel = LinearI8Kernel {
    name: "kinglet_amx_i32_16x64",
    nr: NR,
    ku: 4,
    k_align: KT,
    activation_bytes: 1,
    offset_activations: true,
    quantize: |x, k, k_padded, a, scales| {
        // SAFETY: chosen only with AVX-512 F/BW (see `available`).
        unsafe { vnni::quantize_rows(x, k, k_padded, a, scales) }
    },
    gemm: |g, panels| {
        // SAFETY: chosen only where AMX-INT8, its tile state and AVX-512 VNNI are available;
        // `Gemm` holds operands of the sizes it states.
        unsafe { gemm(g, panels) }
    },
};

/// `ARCH_REQ_XCOMP_PERM` and `XFEATURE_XTILEDATA` of `<asm/prctl.h>`, `<asm/fpu/xstate.h>`.
const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
const XFEATURE_XTILEDATA: libc::c_long = 18;

/// AMX-TILE and AMX-INT8 in CPUID, and the kernel granted this process the tile state.
pub fn available() -> bool {
    let cpuid = __cpuid_count(7, 0);
    let (tile, int8) = (cpuid.edx >> 24 & 1 == 1, cpuid.edx >> 25 & 1 == 1);
    // SAFETY: a plain syscall with integer arguments; it fails cleanly on kernels without AMX.
    tile && int8
        && unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
}

/// Tile configuration (palette 1): eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct Config([u8; 64]);

impl Config {
    const fn new() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut t = 0;
        while t < 7 {
            c[16 + 2 * t] = KT as u8; // bytes per row
            c[48 + t] = MR as u8; // rows
            t += 1;
        }
        Config(c)
    }
}

static CONFIG: Config = Config::new();

/// 16 × 16 sums of each of the four column blocks, as `tilestored` leaves them.
#[repr(C, align(64))]
struct Sums([[[i32; 16]; MR]; 4]);

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
unsafe fn gemm(g: &Gemm, panels: std::ops::Range<usize>) {
    let full = g.m / MR * MR;
    let mut sums = Sums([[[0; 16]; MR]; 4]);
    if full > 0 {
        asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
    }
    for p in panels {
        let mut r = 0;
        while r < full {
            let t = Tile::new(g, p, r);
            block(&t, g.w.k_padded / KT, &mut sums);
            for row in 0..MR {
                let acc: [__m512i; 4] =
                    std::array::from_fn(
                        |j| _mm512_loadu_si512(sums.0[j][row].as_ptr() as *const _),
                    );
                vnni::finish(&t, row, &acc);
            }
            r += MR;
        }
        vnni::rows_from(g, p, full);
    }
}

/// One 16-row block × one panel over `steps` × 64 `k`, into `sums`.
#[inline]
unsafe fn block(t: &Tile, steps: usize, sums: &mut Sums) {
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        "test {steps}, {steps}",
        "jz 3f",
        "2:",
        "tileloadd tmm4, [{a} + {lda}*1]",
        "tileloadd tmm5, [{w} + {ldw}*1]",
        "tileloadd tmm6, [{w} + {ldw}*1 + 64]",
        "tdpbusd tmm0, tmm4, tmm5",
        "tileloadd tmm5, [{w} + {ldw}*1 + 128]",
        "tdpbusd tmm1, tmm4, tmm6",
        "tileloadd tmm6, [{w} + {ldw}*1 + 192]",
        "tdpbusd tmm2, tmm4, tmm5",
        "tdpbusd tmm3, tmm4, tmm6",
        "add {a}, 64",
        "add {w}, {step}",
        "dec {steps}",
        "jnz 2b",
        "3:",
        "tilestored [{s} + {lds}*1], tmm0",
        "tilestored [{s} + {lds}*1 + 1024], tmm1",
        "tilestored [{s} + {lds}*1 + 2048], tmm2",
        "tilestored [{s} + {lds}*1 + 3072], tmm3",
        a = inout(reg) t.a => _,
        lda = in(reg) t.lda,
        w = inout(reg) t.panel => _,
        // a weight tile's rows are groups of 4 `k`, 64 columns × 4 bytes apart
        ldw = in(reg) NR * 4,
        step = in(reg) NR * KT,
        steps = inout(reg) steps => _,
        s = in(reg) sums.0.as_mut_ptr(),
        lds = in(reg) 64usize,
        options(nostack),
    );
}
