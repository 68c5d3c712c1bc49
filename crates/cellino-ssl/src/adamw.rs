//! AdamW with torch semantics (decoupled decay) over per-parameter lr / wd, with serialisable state.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};

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
        let grad = grad.detach().to_dtype(DType::F32)?;
        let st = match self.state.get_mut(name) {
            Some(s) => s,
            None => {
                let z = var.as_tensor().zeros_like()?;
                self.state.insert(name.to_string(), ParamState { exp_avg: z.clone(), exp_avg_sq: z, step: 0 });
                self.state.get_mut(name).expect("inserted above")
            }
        };
        st.step += 1;
        let p = var.as_tensor().detach();
        let p = if lr * wd != 0.0 { (p * (1.0 - lr * wd))? } else { p };
        st.exp_avg = ((&st.exp_avg * beta1)? + (&grad * (1.0 - beta1))?)?;
        st.exp_avg_sq = ((&st.exp_avg_sq * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
        let bc1 = 1.0 - beta1.powi(st.step as i32);
        let bc2_sqrt = (1.0 - beta2.powi(st.step as i32)).sqrt();
        let step_size = lr / bc1;
        let denom = ((st.exp_avg_sq.sqrt()? / bc2_sqrt)? + eps)?;
        let new = (p - (st.exp_avg.div(&denom)? * step_size)?)?;
        var.set(&new)?;
        Ok(())
    }
}
