//! Adam whose state (both moments and the step count) vaelab owns, so it can be checkpointed.
//!
//! tch's built-in optimizer hides its state; resuming with fresh moments would change the
//! trajectory. The update follows PyTorch's single-tensor Adam exactly.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor, nn};

use crate::experiment::config::TrainConfig;

#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("{}: cannot write optimizer state: {source}", path.display())]
    Save {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: cannot read optimizer state: {source}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: optimizer state does not match the model: {detail}", path.display())]
    Mismatch { path: PathBuf, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl From<&TrainConfig> for AdamConfig {
    fn from(train: &TrainConfig) -> Self {
        Self {
            lr: train.lr,
            beta1: train.adam_beta1,
            beta2: train.adam_beta2,
            eps: train.adam_eps,
        }
    }
}

struct ParamState {
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

pub struct Adam {
    config: AdamConfig,
    /// Sorted by parameter name so iteration order, and thus results, never vary.
    params: BTreeMap<String, ParamState>,
    step: i64,
}

const STEP_KEY: &str = "step";

impl Adam {
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let params = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, param)| {
                let exp_avg = param.zeros_like();
                let exp_avg_sq = param.zeros_like();
                (
                    name,
                    ParamState {
                        param,
                        exp_avg,
                        exp_avg_sq,
                    },
                )
            })
            .collect();
        Self {
            config,
            params,
            step: 0,
        }
    }

    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// With `step`, the classic accumulate-into-`.grad` path: kept as the reference that
    /// `minimize` is tested against.
    #[cfg(test)]
    pub fn zero_grad(&mut self) {
        for state in self.params.values_mut() {
            let mut grad = state.param.grad();
            if grad.defined() {
                let _ = grad.detach_();
                let _ = grad.zero_();
            }
        }
    }

    /// Backpropagates `loss` and takes one step. The gradients come back as fresh tensors
    /// instead of being accumulated into zeroed `.grad` buffers (PyTorch's
    /// `zero_grad(set_to_none=True)`): the same values, without a zeroing pass and an
    /// accumulation pass over every parameter.
    pub fn minimize(&mut self, loss: &Tensor) {
        let params: Vec<Tensor> = self
            .params
            .values()
            .map(|s| s.param.shallow_clone())
            .collect();
        let grads = Tensor::run_backward(&[loss], &params, false, false);
        self.update(&grads);
    }

    /// One step from the gradients accumulated in the parameters' `.grad`.
    #[cfg(test)]
    pub fn step(&mut self) {
        let grads: Vec<Tensor> = self.params.values().map(|s| s.param.grad()).collect();
        self.update(&grads);
    }

    /// One step with `grads`, in the order of `self.params`.
    fn update(&mut self, grads: &[Tensor]) {
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let bias_correction1 = 1.0 - beta1.powi(self.step as i32);
        let bias_correction2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        let step_size = lr / bias_correction1;
        tch::no_grad(|| {
            for (state, grad) in self.params.values_mut().zip(grads) {
                if !grad.defined() {
                    continue;
                }
                let _ = state.exp_avg.lerp_(grad, 1.0 - beta1);
                let _ = state.exp_avg_sq.g_mul_scalar_(beta2);
                let _ = state.exp_avg_sq.g_add_(&(grad.square() * (1.0 - beta2)));
                let denom = state.exp_avg_sq.sqrt() / bias_correction2_sqrt + eps;
                let _ = state.param.g_add_(&(&state.exp_avg / denom * (-step_size)));
            }
        });
    }

    pub fn save(&self, path: &Path) -> Result<(), OptimError> {
        let step = Tensor::from_slice(&[self.step]);
        let mut named: Vec<(String, &Tensor)> = vec![(STEP_KEY.to_string(), &step)];
        for (name, state) in &self.params {
            named.push((format!("exp_avg.{name}"), &state.exp_avg));
            named.push((format!("exp_avg_sq.{name}"), &state.exp_avg_sq));
        }
        Tensor::write_safetensors(&named, path).map_err(|source| OptimError::Save {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn load(&mut self, path: &Path) -> Result<(), OptimError> {
        let shown = || path.to_path_buf();
        let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|source| OptimError::Load {
                path: shown(),
                source,
            })?
            .into_iter()
            .collect();
        let mismatch = |detail: String| OptimError::Mismatch {
            path: shown(),
            detail,
        };
        let step = tensors
            .get(STEP_KEY)
            .ok_or_else(|| mismatch("no step count".into()))?;
        let expected = 1 + 2 * self.params.len();
        if tensors.len() != expected {
            return Err(mismatch(format!(
                "{} tensors, expected {expected}",
                tensors.len()
            )));
        }
        let step = step.int64_value(&[0]);
        tch::no_grad(|| -> Result<(), OptimError> {
            for (name, state) in self.params.iter_mut() {
                for (prefix, target) in [
                    ("exp_avg", &mut state.exp_avg),
                    ("exp_avg_sq", &mut state.exp_avg_sq),
                ] {
                    let key = format!("{prefix}.{name}");
                    let saved = tensors
                        .get(&key)
                        .ok_or_else(|| mismatch(format!("missing {key}")))?;
                    if saved.size() != target.size() {
                        return Err(mismatch(format!(
                            "{key} has shape {:?}, expected {:?}",
                            saved.size(),
                            target.size()
                        )));
                    }
                    target.copy_(&saved.to_kind(Kind::Float));
                }
            }
            Ok(())
        })?;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn one_param_store(value: f32) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var_copy("w", &Tensor::from_slice(&[value]));
        vs
    }

    const CONFIG: AdamConfig = AdamConfig {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    #[test]
    fn minimize_takes_the_same_steps_as_backward_and_step() {
        let (vs_a, vs_b) = (one_param_store(3.0), one_param_store(3.0));
        let (mut a, mut b) = (Adam::new(&vs_a, CONFIG), Adam::new(&vs_b, CONFIG));
        minimise_square(&mut a, &vs_a, 5);
        let w = vs_b.variables()["w"].shallow_clone();
        for _ in 0..5 {
            b.minimize(&(&w * &w).sum(Kind::Float));
        }
        assert_eq!(
            vs_a.variables()["w"].double_value(&[0]).to_bits(),
            w.double_value(&[0]).to_bits()
        );
        assert_eq!(b.step_count(), 5);
    }

    fn minimise_square(opt: &mut Adam, vs: &nn::VarStore, steps: usize) {
        let w = vs.variables()["w"].shallow_clone();
        for _ in 0..steps {
            opt.zero_grad();
            (&w * &w).sum(Kind::Float).backward();
            opt.step();
        }
    }

    #[test]
    fn first_step_moves_by_lr_against_the_gradient_sign() {
        // With bias correction, Adam's first step is lr * g / |g| = lr * sign(g).
        let vs = one_param_store(3.0);
        let mut opt = Adam::new(&vs, CONFIG);
        minimise_square(&mut opt, &vs, 1);
        let w = vs.variables()["w"].double_value(&[0]);
        assert!((w - 2.9).abs() < 1e-6, "w = {w}");
        assert_eq!(opt.step_count(), 1);
    }

    #[test]
    fn saved_state_resumes_the_same_trajectory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam.safetensors");

        let straight = one_param_store(3.0);
        let mut opt = Adam::new(&straight, CONFIG);
        minimise_square(&mut opt, &straight, 10);

        let first = one_param_store(3.0);
        let mut opt_a = Adam::new(&first, CONFIG);
        minimise_square(&mut opt_a, &first, 4);
        opt_a.save(&path).unwrap();

        let resumed = one_param_store(first.variables()["w"].double_value(&[0]) as f32);
        let mut opt_b = Adam::new(&resumed, CONFIG);
        opt_b.load(&path).unwrap();
        assert_eq!(opt_b.step_count(), 4);
        minimise_square(&mut opt_b, &resumed, 6);

        assert!(straight.variables()["w"].equal(&resumed.variables()["w"]));
    }

    #[test]
    fn state_of_another_model_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam.safetensors");
        let vs = one_param_store(1.0);
        Adam::new(&vs, CONFIG).save(&path).unwrap();
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var_copy("v", &Tensor::from_slice(&[1.0f32]));
        let err = Adam::new(&other, CONFIG)
            .load(&path)
            .expect_err("must fail");
        assert!(err.to_string().contains("missing exp_avg.v"), "{err}");
    }
}
