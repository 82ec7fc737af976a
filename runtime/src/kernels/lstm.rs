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
