//! The normalization family: LayerNorm over the last axis,
//! `y = (x − mean) / √(var + eps) · gamma + beta` row by row.

/// Normalizes every row of `x` (rows of `gamma.len()`) into `y`: `(x, gamma, beta, eps, y)`.
pub type LayerNormFn = fn(&[f32], &[f32], &[f32], f32, &mut [f32]);

/// A LayerNorm kernel.
#[derive(Debug)]
pub struct LayerNormKernel {
    /// Name listed by `inspect --cpu`.
    pub name: &'static str,
    /// Normalizes every row of `x` (rows of `gamma.len()`) into `y`.
    pub run: LayerNormFn,
}

#[cfg(test)]
mod tests {
    use crate::kernels::{generic, layer_norm_candidates};

    #[test]
    fn generic_layer_norm_matches_the_two_pass_definition() {
        for h in [1, 3, 16, 37, 384] {
            let x: Vec<f32> = (0..3 * h)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.7 + 5.0)
                .collect();
            let gamma: Vec<f32> = (0..h).map(|i| 0.5 + i as f32 * 0.01).collect();
            let beta: Vec<f32> = (0..h).map(|i| i as f32 * -0.02).collect();
            let mut y = vec![f32::NAN; x.len()];
            (generic::LAYER_NORM.run)(&x, &gamma, &beta, 1e-12, &mut y);
            for (row, out) in x.chunks(h).zip(y.chunks(h)) {
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / h as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / h as f64;
                for (j, (&v, &o)) in row.iter().zip(out).enumerate() {
                    let want =
                        (v as f64 - mean) / (var + 1e-12).sqrt() * gamma[j] as f64 + beta[j] as f64;
                    assert!(
                        (o as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{h}: {o} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_native_layer_norm_matches_the_generic_twin() {
        for kernel in layer_norm_candidates() {
            for h in [1, 3, 4, 16, 37, 384] {
                let x: Vec<f32> = (0..5 * h)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.37)
                    .collect();
                let gamma: Vec<f32> = (0..h).map(|i| 0.5 + i as f32 * 0.01).collect();
                let beta: Vec<f32> = (0..h).map(|i| i as f32 * -0.02).collect();
                let (mut got, mut want) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                (kernel.run)(&x, &gamma, &beta, 1e-12, &mut got);
                (generic::LAYER_NORM.run)(&x, &gamma, &beta, 1e-12, &mut want);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                        "{} {h}: {g} vs {w}",
                        kernel.name
                    );
                }
            }
        }
    }
}
