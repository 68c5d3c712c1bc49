//! AdamW with torch semantics (decoupled decay) over per-parameter lr / wd, with serialisable state.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};
use cellino_kernels::{AdamWStep, adamw_step_composite, adamw_step_in_place};

use crate::error::{Result, SslError};

/// β, ε of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Moments and step count of one parameter.
#[derive(Debug, Clone)]
pub struct ParamState {
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    pub step: u64,
}

/// `torch.optim.AdamW` (non-amsgrad, non-foreach maths):
/// `p ← p(1 − lr·wd)`; `m ← β1 m + (1−β1) g`; `v ← β2 v + (1−β2) g²`;
/// `p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + ε)`. Parameters without a gradient are skipped
/// (no decay, no state change), like torch.
#[derive(Debug, Clone, Default)]
pub struct AdamW {
    pub config: AdamWConfig,
    pub state: BTreeMap<String, ParamState>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        Self { config, state: BTreeMap::new() }
    }

    /// One update of `var` (named `name`) with gradient `grad` at this lr and weight decay.
    pub fn step_param(&mut self, name: &str, var: &Var, grad: &Tensor, lr: f64, wd: f64) -> Result<()> {
        let AdamWConfig { beta1, beta2, eps } = self.config;
        if grad.dims() != var.dims() {
            return Err(SslError::Invalid(format!(
                "AdamW: gradient {:?} for `{name}` of shape {:?}",
                grad.dims(),
                var.dims()
            )));
        }
        // Detached: a gradient still references its forward graph, and keeping it in the moments would
        // keep every step's activations alive.
        // Contiguous: matmul backward hands some weight gradients over as transposed views, and the
        // in-place step needs plain buffers (one copy is far cheaper than the composite).
        let grad = grad.detach().to_dtype(DType::F32)?.contiguous()?;
        let st = match self.state.get_mut(name) {
            Some(s) => s,
            None => {
                // Two buffers: the fused step rewrites each moment in place.
                let z = || var.as_tensor().zeros_like();
                self.state.insert(name.to_string(), ParamState { exp_avg: z()?, exp_avg_sq: z()?, step: 0 });
                self.state.get_mut(name).expect("inserted above")
            }
        };
        st.step += 1;
        let step = AdamWStep { lr, weight_decay: wd, beta1, beta2, eps, step: st.step };
        // The fused in-place step (same bits as the composite) on contiguous CPU f32/f64; the
        // composite elsewhere.
        if adamw_step_in_place(var.as_tensor(), &st.exp_avg, &st.exp_avg_sq, &grad, &step)? {
            return Ok(());
        }
        let (new, m, v) = adamw_step_composite(var.as_tensor(), &st.exp_avg, &st.exp_avg_sq, &grad, &step)?;
        (st.exp_avg, st.exp_avg_sq) = (m, v);
        var.set(&new)?;
        Ok(())
    }
}
