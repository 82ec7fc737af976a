//! `kinglet_gru`: a whole GRU layer (one direction, ONNX `linear_before_reset = 1`, which is
//! how PyTorch's `nn.GRU` exports) as one operator on kinglet's kernels, the way
//! [`crate::ops::lstm`] runs an LSTM layer.
//!
//! Inputs: `x` `[T, B, I]`, `w_t` `[I, 3H]` (input weights, transposed), `r_t` `[H, 3H]`
//! (recurrent weights, transposed), `w_bias` and `r_bias` `[3H]`, `h0` `[B, H]`. Gates are in
//! ONNX order `z, r, n`. Outputs: `y` `[T, B, H]` and `h_T` `[B, H]`. Every run starts from
//! `h0`: a forecast is one window.
//!
//! Per step: `gx = xW + wb`, `gh = hR + rb`, `z = σ(gx_z + gh_z)`, `r = σ(gx_r + gh_r)`,
//! `n = tanh(gx_n + r·gh_n)`, `h = n + z·(h − n)`, in this CPU's kernel from
//! [`crate::kernels`].

use tract_nnef::internal::*;
use tract_nnef::ser::invocation;

pub use crate::kernels::gru::{GruOperands, GruShapes};

/// NNEF name of the operator.
pub const NNEF_NAME: &str = "kinglet_gru";

/// The operator; shapes come from its inputs.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct Gru;

impl Op for Gru {
    fn name(&self) -> StaticName {
        "KingletGru".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

/// Runs the layer with this CPU's GRU kernel (the generic one for hidden sizes the native
/// kernel does not take).
pub fn gru(s: &GruShapes, o: GruOperands) {
    let kernel = crate::kernels::native().gru;
    let kernel = if kernel.takes(s.hidden) {
        kernel
    } else {
        &crate::kernels::generic::GRU
    };
    (kernel.run)(s, o);
}

impl EvalOp for Gru {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, w_t, r_t, w_bias, r_bias, h0) = args_6!(inputs);
        let &[steps, batch, input] = x.shape() else {
            bail!("kinglet_gru: x must be [T, B, I]")
        };
        let hidden = r_t.shape()[0];
        let shapes = GruShapes {
            steps,
            batch,
            input,
            hidden,
        };
        let mut h = h0.into_tensor();
        let mut y = Tensor::zero::<f32>(&[steps, batch, hidden])?;
        {
            let (xp, wp, rp) = (
                x.try_as_plain_ram()?,
                w_t.try_as_plain_ram()?,
                r_t.try_as_plain_ram()?,
            );
            let (wbp, rbp) = (w_bias.try_as_plain_ram()?, r_bias.try_as_plain_ram()?);
            let mut hp = h.try_as_plain_ram_mut()?;
            let mut yp = y.try_as_plain_ram_mut()?;
            gru(
                &shapes,
                GruOperands {
                    x: xp.as_slice::<f32>()?,
                    w_t: wp.as_slice::<f32>()?,
                    r_t: rp.as_slice::<f32>()?,
                    w_bias: wbp.as_slice::<f32>()?,
                    r_bias: rbp.as_slice::<f32>()?,
                    h: hp.as_slice_mut::<f32>()?,
                    y: yp.as_slice_mut::<f32>()?,
                },
            );
        }
        Ok(tvec!(y.into_tvalue(), h.into_tvalue()))
    }
}

impl TypedOp for Gru {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 6,
            "kinglet_gru takes x, w_t, r_t, w_bias, r_bias, h0"
        );
        ensure!(
            inputs.iter().all(|f| f.datum_type == f32::datum_type()),
            "kinglet_gru is f32"
        );
        let (x, w_t, r_t) = (inputs[0], inputs[1], inputs[2]);
        ensure!(x.rank() == 3 && w_t.rank() == 2 && r_t.rank() == 2);
        let hidden = r_t.shape[0].clone();
        ensure!(r_t.shape[1] == hidden.clone() * 3, "r_t must be [H, 3H]");
        ensure!(w_t.shape[0] == x.shape[2] && w_t.shape[1] == r_t.shape[1]);
        for bias in [inputs[3], inputs[4]] {
            ensure!(bias.shape.to_tvec() == tvec!(r_t.shape[1].clone()));
        }
        let state = tvec!(x.shape[1].clone(), hidden.clone());
        ensure!(inputs[5].shape.to_tvec() == state);
        Ok(tvec!(
            f32::fact([x.shape[0].clone(), x.shape[1].clone(), hidden]),
            f32::fact(state),
        ))
    }

    as_op!();
}

fn ser(ast: &mut IntoAst, node: &TypedNode, _op: &Gru) -> TractResult<Option<Arc<RValue>>> {
    let inputs: TVec<_> = node.inputs.iter().map(|i| ast.mapping[i].clone()).collect();
    Ok(Some(invocation(NNEF_NAME, &inputs, &[])))
}

const INPUTS: [&str; 6] = ["input", "w_t", "r_t", "w_bias", "r_bias", "h0"];

fn de(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let inputs: TVec<OutletId> = INPUTS
        .iter()
        .map(|n| invocation.named_arg_as(builder, n))
        .collect::<TractResult<_>>()?;
    builder.wire(Gru, &inputs)
}

/// Registers the operator's NNEF form.
pub fn register(registry: &mut Registry) {
    registry.register_dumper(ser);
    let t = || TypeName::Scalar.tensor();
    let params: Vec<_> = INPUTS.iter().map(|n| t().named(*n)).collect();
    registry.register_primitive(NNEF_NAME, &params, &[("y", t()), ("h", t())], de);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward per-gate GRU (PyTorch's equations) with libm activations; 4 and 32
    /// hidden units take the portable path, 64 the native one where the CPU has it.
    #[test]
    fn fused_gru_layer_matches_textbook_cell() {
        for hidden in [4, 32, 64] {
            let (steps, batch, input) = (5, 2, 3);
            let g3 = 3 * hidden;
            let val = |i: usize, m: usize| ((i * m % 23) as f32 - 11.0) * 0.07;
            let x: Vec<f32> = (0..steps * batch * input).map(|i| val(i, 7)).collect();
            let w_t: Vec<f32> = (0..input * g3).map(|i| val(i, 5)).collect();
            let r_t: Vec<f32> = (0..hidden * g3).map(|i| val(i, 3)).collect();
            let wb: Vec<f32> = (0..g3).map(|i| val(i, 11)).collect();
            let rb: Vec<f32> = (0..g3).map(|i| val(i, 19)).collect();
            let h0: Vec<f32> = (0..batch * hidden).map(|i| val(i, 13)).collect();
            let (mut h, mut y) = (h0.clone(), vec![0f32; steps * batch * hidden]);
            let s = GruShapes {
                steps,
                batch,
                input,
                hidden,
            };
            let o = GruOperands {
                x: &x,
                w_t: &w_t,
                r_t: &r_t,
                w_bias: &wb,
                r_bias: &rb,
                h: &mut h,
                y: &mut y,
            };
            gru(&s, o);

            let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
            let mut hr = h0;
            for t in 0..steps {
                for b in 0..batch {
                    let old = hr.clone();
                    let side = |g: usize, j: usize| {
                        let col = g * hidden + j;
                        let mut gx = wb[col];
                        for k in 0..input {
                            gx += x[(t * batch + b) * input + k] * w_t[k * g3 + col];
                        }
                        let mut gh = rb[col];
                        for k in 0..hidden {
                            gh += old[b * hidden + k] * r_t[k * g3 + col];
                        }
                        (gx, gh)
                    };
                    for j in 0..hidden {
                        let (zx, zh) = side(0, j);
                        let (rx, rh) = side(1, j);
                        let (nx, nh) = side(2, j);
                        let (z, r) = (sig(zx + zh), sig(rx + rh));
                        let n = (nx + r * nh).tanh();
                        hr[b * hidden + j] = (1.0 - z) * n + z * old[b * hidden + j];
                        let got = y[(t * batch + b) * hidden + j];
                        assert!(
                            (got - hr[b * hidden + j]).abs() < 1e-5,
                            "H={hidden} t{t} b{b} j{j}: {got} vs {}",
                            hr[b * hidden + j]
                        );
                    }
                }
            }
            for (a, b) in h.iter().zip(&hr) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }
}
