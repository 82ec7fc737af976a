//! The recurrent-cell family: a whole LSTM layer (one direction) over a sequence.

/// One LSTM layer over a sequence (see [`crate::ops::lstm`] for the layout).
pub struct LstmShapes {
    /// Time steps.
    pub steps: usize,
    /// Batch.
    pub batch: usize,
    /// Input features.
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
}

/// The tensors of one layer run: `x` `[T, B, I]`, `w_t` `[I, 4H]`, `r_t` `[H, 4H]`, `bias`
/// `[4H]`; `h`, `c` `[B, H]` hold `h0`/`c0` on entry and the last state on return; `y`
/// `[T, B, H]`.
pub struct LstmOperands<'a> {
    /// Input sequence.
    pub x: &'a [f32],
    /// Input weights, transposed.
    pub w_t: &'a [f32],
    /// Recurrent weights, transposed.
    pub r_t: &'a [f32],
    /// Input plus recurrent biases.
    pub bias: &'a [f32],
    /// Hidden state.
    pub h: &'a mut [f32],
    /// Cell state.
    pub c: &'a mut [f32],
    /// Every step's hidden state.
    pub y: &'a mut [f32],
}

/// An LSTM layer kernel.
#[derive(Debug)]
pub struct LstmKernel {
    /// Name listed by `inspect --cpu`.
    pub name: &'static str,
    /// Hidden sizes it takes: multiples of this.
    pub hidden_multiple: usize,
    /// Runs the layer.
    pub run: fn(&LstmShapes, LstmOperands),
}

impl LstmKernel {
    /// Whether the kernel takes `hidden` units.
    pub fn takes(&self, hidden: usize) -> bool {
        hidden.is_multiple_of(self.hidden_multiple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{generic, lstm_candidates};

    #[test]
    fn every_native_lstm_kernel_matches_the_generic_twin() {
        for kernel in lstm_candidates() {
            for (input, hidden) in [(3, 16), (7, 64), (64, 64), (5, 32)] {
                let (steps, batch) = (9, 2);
                let g4 = 4 * hidden;
                let val = |i: usize, m: usize| ((i * m % 23) as f32 - 11.0) * 0.013;
                let x: Vec<f32> = (0..steps * batch * input).map(|i| val(i, 7)).collect();
                let w_t: Vec<f32> = (0..input * g4).map(|i| val(i, 5)).collect();
                let r_t: Vec<f32> = (0..hidden * g4).map(|i| val(i, 3)).collect();
                let bias: Vec<f32> = (0..g4).map(|i| val(i, 11)).collect();
                let run = |k: &LstmKernel| {
                    let mut h: Vec<f32> = (0..batch * hidden).map(|i| val(i, 13)).collect();
                    let mut c: Vec<f32> = (0..batch * hidden).map(|i| val(i, 17)).collect();
                    let mut y = vec![f32::NAN; steps * batch * hidden];
                    let s = LstmShapes {
                        steps,
                        batch,
                        input,
                        hidden,
                    };
                    let (x, w_t, r_t, bias) = (&x[..], &w_t[..], &r_t[..], &bias[..]);
                    (k.run)(
                        &s,
                        LstmOperands {
                            x,
                            w_t,
                            r_t,
                            bias,
                            h: &mut h,
                            c: &mut c,
                            y: &mut y,
                        },
                    );
                    (h, c, y)
                };
                let (got, want) = (run(kernel), run(&generic::LSTM));
                for (g, w) in [(&got.0, &want.0), (&got.1, &want.1), (&got.2, &want.2)] {
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
