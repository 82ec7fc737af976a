//! The GRU family: a whole GRU layer (one direction, ONNX `linear_before_reset = 1`, as
//! PyTorch exports it) over a sequence.

/// One GRU layer over a sequence (see [`crate::ops::gru`] for the layout).
pub struct GruShapes {
    /// Time steps.
    pub steps: usize,
    /// Batch.
    pub batch: usize,
    /// Input features.
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
}

/// The tensors of one layer run: `x` `[T, B, I]`, `w_t` `[I, 3H]`, `r_t` `[H, 3H]`, biases
/// `[3H]` each (gates `z, r, n`); `h` `[B, H]` holds `h0` on entry and the last state on
/// return; `y` `[T, B, H]`.
pub struct GruOperands<'a> {
    /// Input sequence.
    pub x: &'a [f32],
    /// Input weights, transposed.
    pub w_t: &'a [f32],
    /// Recurrent weights, transposed.
    pub r_t: &'a [f32],
    /// Input-side bias.
    pub w_bias: &'a [f32],
    /// Recurrent-side bias (inside the reset gate's product for `n`).
    pub r_bias: &'a [f32],
    /// Hidden state.
    pub h: &'a mut [f32],
    /// Every step's hidden state.
    pub y: &'a mut [f32],
}

/// A GRU layer kernel.
#[derive(Debug)]
pub struct GruKernel {
    /// Name listed by `inspect --cpu`.
    pub name: &'static str,
    /// Hidden sizes it takes: multiples of this.
    pub hidden_multiple: usize,
    /// Runs the layer.
    pub run: fn(&GruShapes, GruOperands),
}

impl GruKernel {
    /// Whether the kernel takes `hidden` units.
    pub fn takes(&self, hidden: usize) -> bool {
        hidden.is_multiple_of(self.hidden_multiple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{generic, gru_candidates};

    #[test]
    fn every_native_gru_kernel_matches_the_generic_twin() {
        for kernel in gru_candidates() {
            for (input, hidden) in [(3, 64), (7, 64), (64, 64), (5, 128), (6, 16), (4, 32)] {
                if !kernel.takes(hidden) {
                    continue;
                }
                let (steps, batch) = (9, 2);
                let g3 = 3 * hidden;
                let val = |i: usize, m: usize| ((i * m % 23) as f32 - 11.0) * 0.013;
                let x: Vec<f32> = (0..steps * batch * input).map(|i| val(i, 7)).collect();
                let w_t: Vec<f32> = (0..input * g3).map(|i| val(i, 5)).collect();
                let r_t: Vec<f32> = (0..hidden * g3).map(|i| val(i, 3)).collect();
                let w_bias: Vec<f32> = (0..g3).map(|i| val(i, 11)).collect();
                let r_bias: Vec<f32> = (0..g3).map(|i| val(i, 19)).collect();
                let run = |k: &GruKernel| {
                    let mut h: Vec<f32> = (0..batch * hidden).map(|i| val(i, 13)).collect();
                    let mut y = vec![f32::NAN; steps * batch * hidden];
                    let s = GruShapes {
                        steps,
                        batch,
                        input,
                        hidden,
                    };
                    (k.run)(
                        &s,
                        GruOperands {
                            x: &x,
                            w_t: &w_t,
                            r_t: &r_t,
                            w_bias: &w_bias,
                            r_bias: &r_bias,
                            h: &mut h,
                            y: &mut y,
                        },
                    );
                    (h, y)
                };
                let (got, want) = (run(kernel), run(&generic::GRU));
                for (g, w) in [(&got.0, &want.0), (&got.1, &want.1)] {
                    for (a, b) in g.iter().zip(w) {
                        assert!(
                            (a - b).abs() < 1e-5,
                            "{} {input}→{hidden}: {a} vs {b}",
                            kernel.name
                        );
                    }
                }
            }
        }
    }
}
