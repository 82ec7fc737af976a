//! 32-bit ARM (armv7, 32-bit Raspberry Pi OS) kernels: NEON where the kernel reports it
//! (`HWCAP_NEON`), checked at run time. Rust's NEON intrinsics and `target_feature` are not
//! stable on this architecture, so the micro-kernel is one `asm!` block.

mod neon_linear_i8;

use super::linear_i8::LinearI8Kernel;

/// `HWCAP_NEON` of `<asm/hwcap.h>` on 32-bit ARM Linux.
const HWCAP_NEON: libc::c_ulong = 1 << 12;

fn has_neon() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_HWCAP) & HWCAP_NEON != 0 }
}

/// Int8 linear kernels this CPU runs, best first.
pub fn linear_i8_kernels() -> Vec<&'static LinearI8Kernel> {
    let mut found = Vec::new();
    if has_neon() {
        found.push(&neon_linear_i8::SMULL);
    }
    found
}
