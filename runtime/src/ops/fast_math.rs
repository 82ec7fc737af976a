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

/// The same functions on sixteen lanes, for x86-64 AVX-512 kernels.
///
/// # Safety
/// Every function here needs a CPU with AVX-512 F (check `is_x86_feature_detected!`).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::missing_safety_doc)]
pub mod avx512 {
    use std::arch::x86_64::*;

    /// [`super::exp`], sixteen lanes (2^n applied with `vscalefps`).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-80.0)),
            _mm512_set1_ps(80.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, n)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn sigmoid16(x: __m512) -> __m512 {
        let one = _mm512_set1_ps(1.0);
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_div_ps(one, _mm512_add_ps(one, e))
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn tanh16(x: __m512) -> __m512 {
        let one = _mm512_set1_ps(1.0);
        let e = exp16(_mm512_add_ps(x, x));
        _mm512_sub_ps(
            one,
            _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, one)),
        )
    }

    /// Exact (erf) GELU, `x/2 · (1 + erf(x/√2))`, with erf from Abramowitz–Stegun 7.1.26
    /// (absolute error below 1.5e-7).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gelu16(x: __m512) -> __m512 {
        let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
        let a = _mm512_abs_ps(z);
        let one = _mm512_set1_ps(1.0);
        let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), a, one));
        let mut p = _mm512_set1_ps(1.061_405_4);
        for c in [-1.453_152_1, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
        }
        p = _mm512_mul_ps(p, t);
        let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
        let erf_abs = _mm512_fnmadd_ps(p, e, one);
        // erf is odd: give |erf| the sign of z
        let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
        let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
        _mm512_mul_ps(
            _mm512_mul_ps(_mm512_set1_ps(0.5), x),
            _mm512_add_ps(one, erf),
        )
    }
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sixteen_lane_gelu_matches_erf_definition() {
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        for i in -2000..2000 {
            let xs: [f32; 16] = std::array::from_fn(|l| (i * 16 + l as i32) as f32 * 3e-4);
            let mut out = [0f32; 16];
            // SAFETY: feature checked above; 16 floats each side.
            unsafe {
                use std::arch::x86_64::*;
                let v = avx512::gelu16(_mm512_loadu_ps(xs.as_ptr()));
                _mm512_storeu_ps(out.as_mut_ptr(), v);
            }
            for (x, got) in xs.iter().zip(out) {
                let want = gelu_exact(*x);
                assert!((got - want).abs() < 2e-6 * (1.0 + x.abs()), "gelu({x})");
            }
        }
    }
}
