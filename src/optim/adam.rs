//! Adam whose state (both moments and the step count) vaelab owns, so it can be checkpointed.
//!
//! tch's built-in optimizer hides its state; resuming with fresh moments would change the
//! trajectory. The update follows PyTorch's single-tensor Adam exactly, over flat buffers.
//!
//! Over 500 lines with its tests (about 200), which check it step by step against the
//! reference update.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn};

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
    /// Gradients are scaled to this global 2-norm at most, as `clip_grad_norm_` does.
    pub grad_clip_norm: Option<f64>,
}

impl From<&TrainConfig> for AdamConfig {
    fn from(train: &TrainConfig) -> Self {
        Self {
            lr: train.lr,
            beta1: train.adam_beta1,
            beta2: train.adam_beta2,
            eps: train.adam_eps,
            grad_clip_norm: train.grad_clip_norm,
        }
    }
}

/// Scales `grad` in place by min(1, max_norm / (‖grad‖₂ + 1e-6)), PyTorch's
/// `clip_grad_norm_`, without reading the norm back to the host.
fn clip_to_norm(grad: &mut Tensor, max_norm: f64) {
    let norm = grad.norm();
    let scale = (max_norm / (norm + 1e-6)).clamp_max(1.0);
    let _ = grad.g_mul_(&scale);
}

/// Elements per piece of an update on the CPU. Updating a 14-million-parameter buffer in
/// one go makes every temporary a fresh 57 MB allocation that the kernel faults in page
/// by page (about three times the cost of the arithmetic); pieces this size keep the
/// temporaries in the cache. A multiple of every SIMD width, so each element takes the
/// same kernel path, and so the same bits, as in one piece.
const CPU_UPDATE_PIECE: i64 = 1 << 18;

/// Every parameter starts at a multiple of this many elements in the flat buffers (256
/// bytes in fp32). Packed end to end, most weights would start wherever the previous
/// tensor ended (4-byte aligned after a 3-element bias); cuDNN's and oneDNN's vectorised
/// kernels need 16 bytes or more and PyTorch picks kernels by the pointer's alignment.
/// The padding between slots is zeros in the weights, gradients and both moments, and
/// Adam keeps it zero (a zero gradient moves nothing).
const SLOT_ALIGNMENT: i64 = 64;

/// One parameter's place in the flat buffers.
struct Slot {
    name: String,
    param: Tensor,
    offset: i64,
    numel: i64,
}

/// Adam over flat buffers: every parameter is a view into one contiguous tensor, and both
/// moments are one tensor each, so a step is a handful of kernels over all parameters
/// instead of about eleven per parameter tensor. Element by element it computes exactly
/// what PyTorch's single-tensor Adam computes.
pub struct Adam {
    config: AdamConfig,
    /// Sorted by parameter name so the layout, and thus results, never vary.
    slots: Vec<Slot>,
    /// Every parameter's values; each parameter is a view into it, at an aligned offset.
    flat: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// The step's gradients, laid out as `flat` (kept, so no step allocates it anew).
    flat_grad: Tensor,
    /// Zeros as long as the padding after each slot (none where a slot needs none), so
    /// the gradients and the padding are gathered into `flat_grad` by one `cat`.
    padding: Vec<Option<Tensor>>,
    /// Elements updated at a time: the whole buffer on a GPU (a handful of kernels),
    /// cache-sized pieces on the CPU.
    piece: i64,
    step: i64,
}

/// `offset` rounded up to the next slot boundary.
fn aligned(offset: i64) -> i64 {
    (offset + SLOT_ALIGNMENT - 1) / SLOT_ALIGNMENT * SLOT_ALIGNMENT
}

const STEP_KEY: &str = "step";

/// The scalars of one Adam step.
#[derive(Debug, Clone, Copy)]
struct Step {
    beta1: f64,
    beta2: f64,
    eps: f64,
    bias_correction2_sqrt: f64,
    step_size: f64,
}

impl Step {
    /// PyTorch's single-tensor Adam on one piece of the buffers. Temporaries are updated
    /// in place: the same kernels as `a * s`, `a / s`, `a + s`, so the same bits.
    fn apply(
        self,
        param: &mut Tensor,
        exp_avg: &mut Tensor,
        exp_avg_sq: &mut Tensor,
        grad: &Tensor,
    ) {
        let _ = exp_avg.lerp_(grad, 1.0 - self.beta1);
        let _ = exp_avg_sq.g_mul_scalar_(self.beta2);
        let mut scaled_square = grad.square();
        let _ = scaled_square.g_mul_scalar_(1.0 - self.beta2);
        let _ = exp_avg_sq.g_add_(&scaled_square);
        let mut denom = exp_avg_sq.sqrt();
        let _ = denom.g_div_scalar_(self.bias_correction2_sqrt);
        let _ = denom.g_add_scalar_(self.eps);
        let mut update = &*exp_avg / &denom;
        let _ = update.g_mul_scalar_(-self.step_size);
        let _ = param.g_add_(&update);
    }
}

impl Adam {
    /// Moves every trainable parameter of `vs` into one flat buffer (the parameters become
    /// views into it, with their values unchanged) and starts with zero moments.
    pub fn new(vs: &nn::VarStore, config: AdamConfig) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut slots = Vec::with_capacity(named.len());
        let mut offset = 0;
        for (name, param) in named {
            let numel = param.numel() as i64;
            slots.push(Slot {
                name,
                param,
                offset,
                numel,
            });
            offset = aligned(offset + numel);
        }
        let device = vs.device();
        let flat = Tensor::zeros([offset], (Kind::Float, device));
        let padding = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let next = slots.get(i + 1).map_or(offset, |s| s.offset);
                let gap = next - slot.offset - slot.numel;
                (gap > 0).then(|| Tensor::zeros([gap], (Kind::Float, device)))
            })
            .collect();
        tch::no_grad(|| {
            for slot in &mut slots {
                let mut place = flat.narrow(0, slot.offset, slot.numel);
                place.copy_(&slot.param.detach().reshape([-1]));
                slot.param
                    .set_data(&place.view(slot.param.size().as_slice()));
            }
        });
        let piece = match device {
            Device::Cpu => CPU_UPDATE_PIECE,
            _ => flat.numel().max(1) as i64,
        };
        Self {
            config,
            exp_avg: flat.zeros_like(),
            exp_avg_sq: flat.zeros_like(),
            flat_grad: flat.zeros_like(),
            flat,
            slots,
            padding,
            piece,
            step: 0,
        }
    }

    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// The learning rate of the next steps (a schedule sets it before each step).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Backpropagates `loss` and takes one step.
    pub fn minimize(&mut self, loss: &Tensor) {
        self.backward(loss);
        self.update();
    }

    /// Backpropagates `loss` into the flat gradient buffer (clipped if configured). Each
    /// parameter starts without a gradient (PyTorch's `zero_grad(set_to_none=True)`), so
    /// autograd hands it the computed tensor instead of adding it into a zeroed one; that
    /// accumulating backward measured about 7% faster than asking autograd for the
    /// gradients of the parameters (`run_backward`), with the same values.
    pub fn backward(&mut self, loss: &Tensor) {
        for slot in &mut self.slots {
            crate::runtime::grad::forget_grad(&mut slot.param);
        }
        loss.backward();
        tch::no_grad(|| {
            let mut pieces: Vec<Tensor> = Vec::with_capacity(2 * self.slots.len());
            for (slot, padding) in self.slots.iter().zip(&self.padding) {
                let grad = slot.param.grad();
                pieces.push(if grad.defined() {
                    grad.reshape([-1])
                } else {
                    // A parameter the loss does not reach: its moments still decay.
                    Tensor::zeros([slot.numel], (Kind::Float, self.flat.device()))
                });
                if let Some(zeros) = padding {
                    pieces.push(zeros.shallow_clone());
                }
            }
            if !pieces.is_empty() {
                let _ = Tensor::cat_out(&self.flat_grad, &pieces, 0);
            }
            if let Some(max_norm) = self.config.grad_clip_norm {
                clip_to_norm(&mut self.flat_grad, max_norm);
            }
        });
        // The flat buffer holds them now; keeping them would hold the memory twice.
        for slot in &mut self.slots {
            crate::runtime::grad::forget_grad(&mut slot.param);
        }
    }

    /// One step with the gradient [`Adam::backward`] left, piece by piece.
    pub fn update(&mut self) {
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            ..
        } = self.config;
        let bias_correction1 = 1.0 - beta1.powi(self.step as i32);
        let step = Step {
            beta1,
            beta2,
            eps,
            bias_correction2_sqrt: (1.0 - beta2.powi(self.step as i32)).sqrt(),
            step_size: lr / bias_correction1,
        };
        let total = self.flat.numel() as i64;
        tch::no_grad(|| {
            for start in (0..total).step_by(self.piece as usize) {
                let len = self.piece.min(total - start);
                let piece = |t: &Tensor| t.narrow(0, start, len);
                step.apply(
                    &mut piece(&self.flat),
                    &mut piece(&self.exp_avg),
                    &mut piece(&self.exp_avg_sq),
                    &piece(&self.flat_grad),
                );
            }
        });
    }

    /// The moments of one parameter, as views into the flat moments.
    fn moments(&self, slot: &Slot) -> [(String, Tensor); 2] {
        let shape = slot.param.size();
        let view = |t: &Tensor| t.narrow(0, slot.offset, slot.numel).view(shape.as_slice());
        [
            (format!("exp_avg.{}", slot.name), view(&self.exp_avg)),
            (format!("exp_avg_sq.{}", slot.name), view(&self.exp_avg_sq)),
        ]
    }

    /// Writes the step count and each parameter's moments under its own name, the layout
    /// of checkpoints made before the buffers were flat.
    pub fn save(&self, path: &Path) -> Result<(), OptimError> {
        let step = Tensor::from_slice(&[self.step]);
        let moments: Vec<(String, Tensor)> =
            self.slots.iter().flat_map(|s| self.moments(s)).collect();
        let mut named: Vec<(String, &Tensor)> = vec![(STEP_KEY.to_string(), &step)];
        named.extend(moments.iter().map(|(name, t)| (name.clone(), t)));
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
        let expected = 1 + 2 * self.slots.len();
        if tensors.len() != expected {
            return Err(mismatch(format!(
                "{} tensors, expected {expected}",
                tensors.len()
            )));
        }
        let step = step.int64_value(&[0]);
        tch::no_grad(|| -> Result<(), OptimError> {
            for slot in &self.slots {
                for (key, mut target) in self.moments(slot) {
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
        grad_clip_norm: None,
    };

    /// PyTorch's single-tensor Adam, one parameter tensor at a time: what vaelab ran before
    /// its buffers were flat, kept as the reference the flat update must match bit for bit.
    struct PerTensorAdam {
        params: Vec<(Tensor, Tensor, Tensor)>,
        step: i64,
    }

    impl PerTensorAdam {
        fn new(vs: &nn::VarStore) -> Self {
            let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            let params = named
                .into_iter()
                .map(|(_, p)| {
                    let (m, v) = (p.zeros_like(), p.zeros_like());
                    (p, m, v)
                })
                .collect();
            Self { params, step: 0 }
        }

        fn minimize(&mut self, loss: &Tensor, config: AdamConfig) {
            let params: Vec<Tensor> = self.params.iter().map(|p| p.0.shallow_clone()).collect();
            let grads = Tensor::run_backward(&[loss], &params, false, false);
            self.step += 1;
            let bias_correction1 = 1.0 - config.beta1.powi(self.step as i32);
            let bias_correction2_sqrt = (1.0 - config.beta2.powi(self.step as i32)).sqrt();
            let step_size = config.lr / bias_correction1;
            tch::no_grad(|| {
                for ((param, exp_avg, exp_avg_sq), grad) in self.params.iter_mut().zip(&grads) {
                    let _ = exp_avg.lerp_(grad, 1.0 - config.beta1);
                    let _ = exp_avg_sq.g_mul_scalar_(config.beta2);
                    let _ = exp_avg_sq.g_add_(&(grad.square() * (1.0 - config.beta2)));
                    let denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + config.eps;
                    let _ = param.g_add_(&(&*exp_avg / denom * (-step_size)));
                }
            });
        }
    }

    #[test]
    fn clipping_scales_the_global_norm_down_and_never_up() {
        let grad = Tensor::from_slice(&[3.0f32, 0.0, 4.0]);
        let mut clipped = grad.copy();
        clip_to_norm(&mut clipped, 1.0);
        let clipped: Vec<f32> = clipped.try_into().unwrap();
        let scale = 1.0 / (5.0 + 1e-6);
        for (c, g) in clipped.iter().zip([3.0, 0.0, 4.0]) {
            assert!((f64::from(*c) - g * scale).abs() < 1e-7, "{clipped:?}");
        }
        let mut unclipped = grad.copy();
        clip_to_norm(&mut unclipped, 10.0);
        assert!(unclipped.equal(&grad));
    }

    #[test]
    fn a_clipped_step_moves_the_first_moment_by_the_clipped_gradient() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, 1.0]));
        let mut adam = Adam::new(
            &vs,
            AdamConfig {
                grad_clip_norm: Some(0.5),
                ..CONFIG
            },
        );
        // d/dw (3 w0 + 4 w1) = (3, 4): norm 5, clipped to 0.5 → (0.3, 0.4).
        adam.minimize(&(&w * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float));
        let m: Vec<f32> = adam.exp_avg.shallow_clone().try_into().unwrap();
        assert!(
            (m[0] - 0.03).abs() < 1e-6 && (m[1] - 0.04).abs() < 1e-6,
            "{m:?}"
        );
        adam.set_lr(0.0);
        let before = w.copy();
        adam.minimize(&(&w * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float));
        assert!(w.equal(&before), "a zero learning rate leaves the weights");
    }

    /// The flat Adam takes the real VAE through ten steps to the same bits as the
    /// per-tensor Adam, weights and both moments, updating its buffers in pieces that
    /// cut across parameters.
    #[test]
    fn flat_buffers_step_bit_identically_to_per_tensor_adam() {
        let config = crate::experiment::config::ModelConfig {
            residual: true,
            latent_dim: 8,
            channels: vec![8, 16],
            ..Default::default()
        };
        let adam = AdamConfig { lr: 3e-3, ..CONFIG };
        let (vs_flat, model_flat) = crate::model::build(&config, 16, Device::Cpu, 7);
        let (vs_ref, model_ref) = crate::model::build(&config, 16, Device::Cpu, 7);
        let mut flat = Adam::new(&vs_flat, adam);
        flat.piece = 4096;
        assert!(
            flat.flat.numel() > 3 * 4096,
            "the update must take several pieces"
        );
        let mut reference = PerTensorAdam::new(&vs_ref);
        for step in 0..10 {
            tch::manual_seed(100 + step);
            let x = Tensor::rand([6, 3, 16, 16], (Kind::Float, Device::Cpu));
            let eps = Tensor::randn([6, 8], (Kind::Float, Device::Cpu));
            let loss = |model: &crate::model::Vae| {
                let (recon, posterior) = model.forward_with_noise(&x, &eps);
                crate::model::vae_loss(&recon, &x, &posterior, crate::model::Objective::beta(1.0))
                    .loss
            };
            flat.minimize(&loss(&model_flat));
            reference.minimize(&loss(&model_ref), adam);
        }
        let by_name = |vs: &nn::VarStore| {
            let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let flat_weights = by_name(&vs_flat);
        assert_eq!(flat_weights.len(), reference.params.len());
        for (((name, a), (b, m, v)), slot) in
            flat_weights.iter().zip(&reference.params).zip(&flat.slots)
        {
            assert!(a.equal(b), "weights of {name} differ");
            let [(_, flat_m), (_, flat_v)] = flat.moments(slot);
            assert!(
                flat_m.equal(m) && flat_v.equal(v),
                "moments of {name} differ"
            );
        }
        // And the parameters really are views into the one buffer.
        let before = flat.flat.sum(Kind::Double).double_value(&[]);
        let _ = tch::no_grad(|| flat_weights[0].1.shallow_clone().fill_(0.0));
        assert_ne!(flat.flat.sum(Kind::Double).double_value(&[]), before);
    }

    /// Every parameter's data starts 64-byte aligned (the CPU allocator's alignment of the
    /// buffer, plus slot offsets of 256 bytes), whatever the sizes before it (odd-sized
    /// biases included), and the padding between them stays zero through a step.
    #[test]
    fn every_parameter_starts_aligned_and_the_padding_stays_zero() {
        let config = crate::experiment::config::ModelConfig {
            residual: true,
            latent_dim: 3,
            channels: vec![8, 16],
            ..Default::default()
        };
        let (vs, model) = crate::model::build(&config, 16, Device::Cpu, 7);
        let mut adam = Adam::new(&vs, CONFIG);
        let odd = adam.slots.iter().filter(|s| s.numel % 16 != 0).count();
        assert!(odd > 3, "the model must have tensors that pack unaligned");
        assert!(adam.slots.iter().all(|s| s.offset % SLOT_ALIGNMENT == 0));
        for (name, param) in vs.variables() {
            let address = param.data_ptr() as usize;
            assert_eq!(address % 64, 0, "{name} starts at {address:#x}");
        }
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let eps = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
        let (recon, posterior) = model.forward_with_noise(&x, &eps);
        let loss =
            crate::model::vae_loss(&recon, &x, &posterior, crate::model::Objective::beta(1.0));
        adam.minimize(&loss.loss);
        let in_slots = adam.flat.zeros_like();
        for slot in &adam.slots {
            let _ = in_slots.narrow(0, slot.offset, slot.numel).fill_(1.0);
        }
        let outside = in_slots.eq(0.0);
        for buffer in [&adam.flat, &adam.flat_grad, &adam.exp_avg, &adam.exp_avg_sq] {
            let stray = buffer.masked_select(&outside).abs().sum(Kind::Double);
            assert_eq!(stray.double_value(&[]), 0.0);
        }
        assert!(
            outside.sum(Kind::Int64).int64_value(&[]) > 0,
            "some padding exists"
        );
    }

    fn minimise_square(opt: &mut Adam, vs: &nn::VarStore, steps: usize) {
        let w = vs.variables()["w"].shallow_clone();
        for _ in 0..steps {
            opt.minimize(&(&w * &w).sum(Kind::Float));
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
