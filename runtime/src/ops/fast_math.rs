//! Vectorizable `exp`, `sigmoid` and `tanh` for slices, for the recurrent cells in
//! [`super::lstm`]: plain arithmetic and bit manipulation (no libm call), so the loops compile
//! to SIMD on every target. Relative error of `exp` below 4e-7 on [-80, 80].

/// `e^x`, for `x` clamped to [-80, 80]: results stay normal floats (a subnormal costs a
/// microcode assist on many cores) and finite; sigmoid and tanh are saturated long before.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-80.0, 80.0);
    // n = round(x · log2 e), by adding and removing 1.5·2^23; the sum's low mantissa bits hold
    // n as an integer, read without a float→int conversion (which would not vectorize on
    // x86 before AVX-512: Rust's `as` saturates)
    let shifter = 12_582_912.0f32;
    let shifted = x * LOG2E + shifter;
    let n = shifted - shifter;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(shifter.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    // e^r on |r| ≤ ln2/2: degree-6 Taylor/minimax
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2^n by building the exponent field; n ∈ [-126, 128]: split to stay representable
    let n = n_int;
    let half = n >> 1;
    let a = f32::from_bits(((half + 127) as u32) << 23);
    let b = f32::from_bits(((n - half + 127) as u32) << 23);
    p * a * b
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2 / (e^{2x} + 1)`, exact at the saturated ends.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// Exact GELU, `x/2 · (1 + erf(x/√2))`, in f64 with erf by its Maclaurin series (±1 beyond
/// |z| > 4.5, where erf is 1 to f32 precision): the slow reference, for unfused evaluation.
pub fn gelu_exact(v: f32) -> f32 {
    let z = v as f64 / std::f64::consts::SQRT_2;
    let erf = if z.abs() > 4.5 {
        z.signum()
    } else {
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-16 {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    };
    (0.5 * v as f64 * (1.0 + erf)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_tanh_match_libm() {
        for i in -17_700..=17_700 {
            let x = i as f32 * 0.0045;
            let (e, want) = (exp(x), x.exp());
            assert!(
                (e - want).abs() <= 4e-7 * want,
                "exp({x}) = {e}, libm {want}"
            );
            assert!(
                (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6,
                "sigmoid({x})"
            );
            assert!((tanh(x) - x.tanh()).abs() < 2e-6, "tanh({x})");
        }
        assert_eq!(exp(-1000.0), exp(-80.0));
        assert!(exp(1000.0).is_finite());
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-34);
    }
}
