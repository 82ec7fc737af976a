//! `kinglet_lstm`: a whole LSTM layer (one direction) as one operator, instead of a tract
//! `Scan` that dispatches a dozen-node body per time step.
//!
//! Inputs: `x` `[T, B, I]`, `w_t` `[I, 4H]` (input weights, transposed), `r_t` `[H, 4H]`
//! (recurrent weights, transposed), `bias` `[4H]` (input + recurrent biases summed),
//! `h0`, `c0` `[B, H]`. Gates are in ONNX order `i, o, f, c`. Outputs: `y` `[T, B, H]`,
//! `h_T` and `c_T` `[B, H]`. Every run starts from `h0`, `c0`: a forecast is one window.
//!
//! Per step: `g = xW + b + hR` (one axpy of `4H` per input and hidden unit, vectorized),
//! `c = σ(f)·c + σ(i)·tanh(c̃)`, `h = σ(o)·tanh(c)`, in this CPU's kernel from
//! [`crate::kernels`].

use tract_nnef::internal::*;
use tract_nnef::ser::invocation;

/// NNEF name of the operator.
pub const NNEF_NAME: &str = "kinglet_lstm";

/// The operator; shapes come from its inputs.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct Lstm;

impl Op for Lstm {
    fn name(&self) -> StaticName {
        "KingletLstm".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

pub use crate::kernels::lstm::{LstmOperands, LstmShapes};

/// Runs the layer with this CPU's LSTM kernel: fills `y` (`[T, B, H]`), `h` and `c`
/// (`[B, H]`, holding `h0`/`c0` on entry).
#[allow(clippy::too_many_arguments)]
pub fn lstm(
    s: &LstmShapes,
    x: &[f32],
    w_t: &[f32],
    r_t: &[f32],
    bias: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    y: &mut [f32],
) {
    let kernel = crate::kernels::native().lstm;
    let kernel = if kernel.takes(s.hidden) {
        kernel
    } else {
        &crate::kernels::generic::LSTM
    };
    (kernel.run)(
        s,
        LstmOperands {
            x,
            w_t,
            r_t,
            bias,
            h,
            c,
            y,
        },
    );
}

impl EvalOp for Lstm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, w_t, r_t, bias, h0, c0) = args_6!(inputs);
        let &[steps, batch, input] = x.shape() else {
            bail!("kinglet_lstm: x must be [T, B, I]")
        };
        let hidden = r_t.shape()[0];
        let shapes = LstmShapes {
            steps,
            batch,
            input,
            hidden,
        };
        let mut h = h0.into_tensor();
        let mut c = c0.into_tensor();
        let mut y = Tensor::zero::<f32>(&[steps, batch, hidden])?;
        {
            let (xp, wp, rp, bp) = (
                x.try_as_plain_ram()?,
                w_t.try_as_plain_ram()?,
                r_t.try_as_plain_ram()?,
                bias.try_as_plain_ram()?,
            );
            let mut hp = h.try_as_plain_ram_mut()?;
            let mut cp = c.try_as_plain_ram_mut()?;
            let mut yp = y.try_as_plain_ram_mut()?;
            lstm(
                &shapes,
                xp.as_slice::<f32>()?,
                wp.as_slice::<f32>()?,
                rp.as_slice::<f32>()?,
                bp.as_slice::<f32>()?,
                hp.as_slice_mut::<f32>()?,
                cp.as_slice_mut::<f32>()?,
                yp.as_slice_mut::<f32>()?,
            );
        }
        Ok(tvec!(y.into_tvalue(), h.into_tvalue(), c.into_tvalue()))
    }
}

impl TypedOp for Lstm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 6,
            "kinglet_lstm takes x, w_t, r_t, bias, h0, c0"
        );
        ensure!(
            inputs.iter().all(|f| f.datum_type == f32::datum_type()),
            "kinglet_lstm is f32"
        );
        let (x, w_t, r_t) = (inputs[0], inputs[1], inputs[2]);
        ensure!(x.rank() == 3 && w_t.rank() == 2 && r_t.rank() == 2);
        let hidden = r_t.shape[0].clone();
        ensure!(r_t.shape[1] == hidden.clone() * 4, "r_t must be [H, 4H]");
        ensure!(w_t.shape[0] == x.shape[2] && w_t.shape[1] == r_t.shape[1]);
        ensure!(inputs[3].shape.to_tvec() == tvec!(r_t.shape[1].clone()));
        let state = tvec!(x.shape[1].clone(), hidden.clone());
        ensure!(inputs[4].shape.to_tvec() == state && inputs[5].shape.to_tvec() == state);
        Ok(tvec!(
            f32::fact([x.shape[0].clone(), x.shape[1].clone(), hidden]),
            f32::fact(state.clone()),
            f32::fact(state),
        ))
    }

    as_op!();
}

fn ser(ast: &mut IntoAst, node: &TypedNode, _op: &Lstm) -> TractResult<Option<Arc<RValue>>> {
    let inputs: TVec<_> = node.inputs.iter().map(|i| ast.mapping[i].clone()).collect();
    Ok(Some(invocation(NNEF_NAME, &inputs, &[])))
}

fn de(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let names = ["input", "w_t", "r_t", "bias", "h0", "c0"];
    let inputs: TVec<OutletId> = names
        .iter()
        .map(|n| invocation.named_arg_as(builder, n))
        .collect::<TractResult<_>>()?;
    builder.wire(Lstm, &inputs)
}

/// Registers the operator's NNEF form.
pub fn register(registry: &mut Registry) {
    registry.register_dumper(ser);
    let t = || TypeName::Scalar.tensor();
    registry.register_primitive(
        NNEF_NAME,
        &[
            t().named("input"),
            t().named("w_t"),
            t().named("r_t"),
            t().named("bias"),
            t().named("h0"),
            t().named("c0"),
        ],
        &[("y", t()), ("h", t()), ("c", t())],
        de,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward per-gate LSTM with libm activations; 4 hidden units take the portable
    /// path, 32 the AVX-512 one where the CPU has it.
    #[test]
    fn fused_layer_matches_textbook_cell() {
        for hidden in [4, 32] {
            layer_matches_textbook_cell(hidden);
        }
    }

    fn layer_matches_textbook_cell(hidden: usize) {
        let (steps, batch, input) = (5, 2, 3);
        let g4 = 4 * hidden;
        let val = |i: usize, m: usize| ((i * m % 23) as f32 - 11.0) * 0.07;
        let x: Vec<f32> = (0..steps * batch * input).map(|i| val(i, 7)).collect();
        let w_t: Vec<f32> = (0..input * g4).map(|i| val(i, 5)).collect();
        let r_t: Vec<f32> = (0..hidden * g4).map(|i| val(i, 3)).collect();
        let bias: Vec<f32> = (0..g4).map(|i| val(i, 11)).collect();
        let h0: Vec<f32> = (0..batch * hidden).map(|i| val(i, 13)).collect();
        let c0: Vec<f32> = (0..batch * hidden).map(|i| val(i, 17)).collect();
        let (mut h, mut c, mut y) = (h0.clone(), c0.clone(), vec![0f32; steps * batch * hidden]);
        let s = LstmShapes {
            steps,
            batch,
            input,
            hidden,
        };
        lstm(&s, &x, &w_t, &r_t, &bias, &mut h, &mut c, &mut y);

        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        let (mut hr, mut cr) = (h0, c0);
        for t in 0..steps {
            for b in 0..batch {
                let gate = |g: usize, j: usize, hr: &[f32]| {
                    let col = g * hidden + j;
                    let mut v = bias[col];
                    for k in 0..input {
                        v += x[(t * batch + b) * input + k] * w_t[k * g4 + col];
                    }
                    for k in 0..hidden {
                        v += hr[b * hidden + k] * r_t[k * g4 + col];
                    }
                    v
                };
                let old = hr.clone();
                for j in 0..hidden {
                    let (i, o, f, g) = (
                        sig(gate(0, j, &old)),
                        sig(gate(1, j, &old)),
                        sig(gate(2, j, &old)),
                        gate(3, j, &old).tanh(),
                    );
                    let cj = f * cr[b * hidden + j] + i * g;
                    cr[b * hidden + j] = cj;
                    hr[b * hidden + j] = o * cj.tanh();
                    let got = y[(t * batch + b) * hidden + j];
                    assert!((got - hr[b * hidden + j]).abs() < 1e-5, "t{t} b{b} j{j}");
                }
            }
        }
        for (a, b) in h.iter().zip(&hr).chain(c.iter().zip(&cr)) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
