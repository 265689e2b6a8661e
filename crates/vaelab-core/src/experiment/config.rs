//! The fully resolved, validated configuration of one run, and its content-hashed identity.
//!
//! `RunConfig` is the only thing training accepts. Its identity is everything that changes
//! what is learned; `train.epochs` is a budget (raising it extends a finished run) and is
//! left out of the hash, as is `eval` (what is measured afterwards) and anything about
//! placement (device, paths, progress output).
//!
//! Over 500 lines because every section's config type keeps its identity rule beside its
//! fields (`NOT_IDENTITY`, the left-out-at-default attributes), so one file answers "is this
//! field identity?"; about 300 of them are the tests that set every field.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped whenever the meaning of a resolved config changes, so old ids never alias new runs.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    Synthetic,
    Celeba,
    Folder,
}

/// The resampling filter used to resize images on disk to `image_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeFilter {
    Nearest,
    Triangle,
    CatmullRom,
    Gaussian,
    Lanczos3,
}

/// Which held-out images evaluation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    Validation,
    Test,
}

/// The arithmetic of training's forward and backward passes. Weights, optimizer state and
/// the loss stay fp32 either way; bf16 runs convolutions and linear layers in bfloat16.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    pub fn is_fp32(&self) -> bool {
        *self == Self::Fp32
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }
}

/// How 4-d activations and convolution weights are laid out in memory while training and
/// evaluating. Placement, like TF32: it changes which kernels run (cuDNN's NHWC kernels
/// are the tensor cores' native layout), not what the run means, so it is not identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFormat {
    /// PyTorch's default, batch × channels × height × width.
    #[default]
    Nchw,
    /// Channels innermost (NHWC strides), `torch.channels_last`.
    ChannelsLast,
}

impl MemoryFormat {
    pub fn is_nchw(&self) -> bool {
        *self == Self::Nchw
    }
}

/// How the learning rate moves over a run's steps (after `train.lr_warmup_steps`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Half a cosine from `train.lr` down to 0 over the run's `train.epochs`.
    Cosine,
}

impl LrSchedule {
    pub fn is_constant(&self) -> bool {
        *self == Self::Constant
    }
}

/// Which weights the end-of-run evaluation measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The last epoch's weights.
    #[default]
    Last,
    /// The weights of the epoch with the lowest validation loss.
    Best,
}

impl Select {
    pub fn is_last(&self) -> bool {
        *self == Self::Last
    }
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

fn is_one_u32(value: &u32) -> bool {
    *value == 1
}

fn one_u32() -> u32 {
    1
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_true(value: &bool) -> bool {
    *value
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    pub image_size: u32,
    /// Seed of the dataset itself (synthetic generator), shared by every run on it.
    pub dataset_seed: u64,
    pub train_images: usize,
    pub val_images: usize,
    /// Caps the training images to the first `limit` (a deterministic subset).
    pub limit: Option<usize>,
    /// Where a dataset on disk lives: placement, not identity (moving it changes no id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<std::path::PathBuf>,
    /// The content fingerprint of a dataset on disk (`data::fingerprint`), filled in by
    /// planning: identity in the path's stead. None for synthetic data, whose parameters
    /// are its identity already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Centre crop to this square before resizing (datasets on disk; none keeps the frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_filter: Option<ResizeFilter>,
    /// Share of a folder dataset held out for validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<EvalSplit>,
    /// Random horizontal flips of training images, a function of (seed, epoch, step).
    #[serde(default, skip_serializing_if = "is_false")]
    pub hflip: bool,
}

impl DataConfig {
    /// The resampling filter for datasets on disk when `data.resize_filter` is not set.
    pub const DEFAULT_RESIZE_FILTER: ResizeFilter = ResizeFilter::Triangle;
    /// The share of a folder dataset held out when `data.val_ratio` is not set.
    pub const DEFAULT_FOLDER_VAL_RATIO: f64 = 0.1;

    pub fn effective_train_images(&self) -> usize {
        self.limit
            .map_or(self.train_images, |limit| limit.min(self.train_images))
    }
}

impl DataConfig {
    /// Placement, not identity: where the images are. What they are is `fingerprint`.
    pub const NOT_IDENTITY: &'static [&'static str] = &["root"];
}

/// The defaults of every `data:` field a spec leaves out.
impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: DataSource::Synthetic,
            image_size: 64,
            dataset_seed: 0,
            train_images: 4096,
            val_images: 256,
            limit: None,
            root: None,
            fingerprint: None,
            crop: None,
            resize_filter: None,
            val_ratio: None,
            split: None,
            hflip: false,
        }
    }
}

/// Normalisation after each convolution of the down/up stages and residual blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// None, as in the seed.
    #[default]
    None,
    /// Batch norm: running statistics in evaluation mode, saved with the weights.
    Batch,
    /// Group norm with the largest divisor of the width that is at most 32 as groups.
    Group,
}

impl Norm {
    pub fn is_none(&self) -> bool {
        *self == Self::None
    }
}

/// The decoder's likelihood p(x | z) on pixels in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// N(x̂, ½·I): the seed's sum of squared errors.
    #[default]
    Fixed,
    /// N(x̂, σ_c²·I) with a learned log σ per colour channel (σ-VAE, Rybkin et al. 2021).
    Learned,
}

impl Likelihood {
    pub const ALL: [Likelihood; 2] = [Likelihood::Fixed, Likelihood::Learned];

    pub fn is_fixed(&self) -> bool {
        *self == Self::Fixed
    }
}

/// A choice's name as a spec writes it (`learned`), from its one `serde` declaration, for
/// files and text that name it.
pub fn choice_name<T: Serialize>(choice: &T) -> String {
    match serde_json::to_value(choice) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The choice a name written by [`choice_name`] stands for.
pub fn parse_choice<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// How a model's weights start (`model.init`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// PyTorch's defaults for `Conv2d`, `ConvTranspose2d` and `Linear`, which the seed's
    /// model was trained from: weights and biases uniform in ±1/√fan_in.
    #[default]
    Pytorch,
    /// tch's He-uniform weights (bound √6/√fan_in) and zero convolution biases: what runs
    /// were made with before `model.init` existed.
    He,
}

impl Init {
    pub fn is_he(&self) -> bool {
        *self == Self::He
    }

    /// What a `config.yaml` written before `model.init` existed was trained with.
    fn before_it_existed() -> Self {
        Self::He
    }
}

/// The seed model's widths: five down-sampling stages.
pub const DEFAULT_CHANNELS: [usize; 5] = [32, 64, 128, 256, 512];

/// Which network the VAE has (`model.kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The seed's convolutional VAE (`channels`, `residual` and the block knobs).
    #[default]
    Conv,
    /// Kingma & Welling's fully connected VAE (`hidden`).
    Mlp,
}

impl ModelKind {
    pub fn is_conv(&self) -> bool {
        *self == Self::Conv
    }
}

/// The MLP's hidden widths when `model.hidden` is not given.
pub const DEFAULT_HIDDEN: [usize; 1] = [512];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Left out at `conv`, so the ids of runs made before it existed stay theirs.
    #[serde(default, skip_serializing_if = "ModelKind::is_conv")]
    pub kind: ModelKind,
    /// The MLP's hidden widths, encoder order (the decoder takes them reversed); empty,
    /// and left out, for the convolutional model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    pub residual: bool,
    pub latent_dim: usize,
    pub channels: Vec<usize>,
    /// Left out at `none`, so the ids of runs made before it existed stay theirs.
    #[serde(default, skip_serializing_if = "Norm::is_none")]
    pub norm: Norm,
    /// Left out at `fixed`, likewise.
    #[serde(default, skip_serializing_if = "Likelihood::is_fixed")]
    pub likelihood: Likelihood,
    /// Left out at `he`, what every run before it was made with, so those runs keep their
    /// ids and read back as `he`; the default, `pytorch`, is written, so it makes new ids.
    #[serde(
        default = "Init::before_it_existed",
        skip_serializing_if = "Init::is_he"
    )]
    pub init: Init,
    /// The residual block's design; left out at `seed`, so earlier ids stay theirs.
    #[serde(default, skip_serializing_if = "BlockDesign::is_seed")]
    pub block: BlockDesign,
    /// Where the residual blocks go; left out at `both`, likewise.
    #[serde(default, skip_serializing_if = "BlocksIn::is_both")]
    pub blocks_in: BlocksIn,
    /// Residual blocks after each stage's (transposed) convolution; left out at 1.
    #[serde(default = "one_u32", skip_serializing_if = "is_one_u32")]
    pub blocks_per_stage: u32,
}

/// The residual block a stage ends in (`model.block`), when `model.residual` is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockDesign {
    /// The seed's post-activation block, `relu(x + f(x))` with f = conv, [norm], ReLU,
    /// conv, [norm].
    #[default]
    Seed,
    /// Pre-activation (He et al. 2016), `x + f(x)` with f = [norm], ReLU, conv, [norm],
    /// ReLU, conv.
    Preact,
    /// SkipInit (De & Smith 2020; ReZero), `x + α·f(x)` with the seed's f and a learned
    /// scalar α per block that starts at 0, so every block starts as the identity.
    Skipinit,
}

impl BlockDesign {
    pub fn is_seed(&self) -> bool {
        *self == Self::Seed
    }
}

/// Which half of the model has residual blocks (`model.blocks_in`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlocksIn {
    #[default]
    Both,
    Encoder,
    Decoder,
}

impl BlocksIn {
    pub fn is_both(&self) -> bool {
        *self == Self::Both
    }

    pub fn encoder(self) -> bool {
        self != Self::Decoder
    }

    pub fn decoder(self) -> bool {
        self != Self::Encoder
    }
}

/// The seed's model: residual blocks, latent 128, widths 32 to 512.
impl ModelConfig {
    /// Fields that describe only the convolutional network: an MLP's identity leaves
    /// them out, so settings meant for a sweep's convolutional arms cannot split its runs.
    pub const CONV_ONLY: &'static [&'static str] = &[
        "residual",
        "channels",
        "norm",
        "block",
        "blocks_in",
        "blocks_per_stage",
    ];
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: ModelKind::Conv,
            hidden: Vec::new(),
            residual: true,
            latent_dim: 128,
            channels: DEFAULT_CHANNELS.to_vec(),
            norm: Norm::None,
            likelihood: Likelihood::Fixed,
            init: Init::Pytorch,
            block: BlockDesign::Seed,
            blocks_in: BlocksIn::Both,
            blocks_per_stage: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Budget, not identity (raising it extends a run), except under a cosine schedule.
    pub epochs: u32,
    pub batch_size: usize,
    pub lr: f64,
    pub beta: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    /// Identity: bf16 learns different weights. Left out when fp32, so the ids of runs
    /// made before precision existed stay theirs.
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
    /// Placement, not identity: on CUDA, deterministic cuDNN algorithms, no benchmark mode
    /// and no TF32, so a run killed and resumed on the same GPU model ends bit-identical.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deterministic: bool,
    /// Placement, not identity: fp32 convolutions and matmuls may run as TF32 on Ampere
    /// and later GPUs (libtorch's default for convolutions). Ignored on the CPU.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub tf32: bool,
    /// Placement, not identity: NCHW or channels-last activations ([`MemoryFormat`]).
    #[serde(default, skip_serializing_if = "MemoryFormat::is_nchw")]
    pub memory_format: MemoryFormat,
    /// β rises linearly from 0 to `beta` over this many epochs, step by step (0: off).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub kl_warmup_epochs: u32,
    /// Nats per latent dimension (batch mean) below which KL is not penalised (0: off).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub free_bits: f64,
    /// Identity; a cosine schedule also makes `epochs` identity (its horizon).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// The learning rate rises linearly to `lr` over this many steps (0: off).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub lr_warmup_steps: u64,
    /// Gradients are scaled so their global 2-norm is at most this (none: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f64>,
    /// Measurement, not identity: which epoch's weights the end-of-run evaluation uses.
    #[serde(default, skip_serializing_if = "Select::is_last")]
    pub select: Select,
}

impl TrainConfig {
    /// Placement and measurement, not identity: how exactly the arithmetic runs on a GPU,
    /// and which epoch is evaluated. (`epochs` is budget, left out by `canonical_identity`
    /// unless a schedule depends on it.)
    pub const NOT_IDENTITY: &'static [&'static str] =
        &["deterministic", "tf32", "memory_format", "select"];
}

/// PyTorch's Adam defaults, the seed's learning rate, β = 1, fp32.
impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            beta: 1.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            precision: Precision::Fp32,
            deterministic: false,
            tf32: true,
            memory_format: MemoryFormat::Nchw,
            kl_warmup_epochs: 0,
            free_bits: 0.0,
            lr_schedule: LrSchedule::Constant,
            lr_warmup_steps: 0,
            grad_clip_norm: None,
            select: Select::Last,
        }
    }
}

/// What the end-of-run evaluation computes: measurement, not identity (changing it
/// re-evaluates a finished run's final weights without retraining).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Importance samples per image for the importance-weighted bound.
    pub iwae_samples: usize,
    /// The bound is computed on the first this many evaluation images (it costs
    /// `iwae_samples` decodes per image).
    pub iwae_images: usize,
    /// The dataset attribute whose latent direction the report shows (CelebA names).
    pub attribute: String,
    /// Sample quality in an extractor's feature space (FID, KID, precision and recall);
    /// off without an extractor file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<FidConfig>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            iwae_samples: 16,
            iwae_images: 512,
            attribute: "Smiling".into(),
            fid: None,
        }
    }
}

/// `eval.fid`: the protocol of the feature-space metrics, recorded with every number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidConfig {
    /// The TorchScript feature extractor, such as the standard
    /// `inception-2015-12-05.pt` that clean-fid and StyleGAN2-ADA load: called as
    /// `forward(uint8 NCHW images, return_features=True)`, it returns one feature row per
    /// image.
    pub extractor: std::path::PathBuf,
    /// Prior samples generated, and reference images at most.
    pub samples: usize,
    /// The images the samples are compared with.
    pub reference: FidReference,
}

/// Which images `eval.fid` compares samples with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FidReference {
    /// The training images, as papers on generative models usually do.
    #[default]
    Train,
    /// The evaluation images (validation, or test under `data.split: test`).
    Evaluation,
}

/// Samples FID uses unless `eval.fid.samples` says otherwise (the literature's 10,000).
pub const DEFAULT_FID_SAMPLES: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

/// A run's identity: the full sha256 and the short form used for directory names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(String);

impl RunId {
    /// Accepts a full id as written in `config.yaml` (64 lowercase hex digits).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.to_string()))
    }

    pub fn full(&self) -> &str {
        &self.0
    }

    /// 16 hex digits (64 bits): the run directory's name.
    pub fn dir_name(&self) -> &str {
        &self.0[..16]
    }

    /// 8 hex digits for tables.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl RunConfig {
    /// Sections that are measurement, not identity: evaluating again changes no run.
    pub const NOT_IDENTITY: &'static [&'static str] = &["eval"];

    /// Canonical JSON of the identity fields: sorted keys, shortest round-trip floats. What
    /// is left out is declared beside each section (`NOT_IDENTITY`); a unit test sets every
    /// field and checks the exact list.
    pub fn canonical_identity(&self) -> String {
        let mut value = serde_json::to_value(self).expect("RunConfig always serializes");
        let object = value.as_object_mut().expect("a RunConfig is a JSON object");
        for section in Self::NOT_IDENTITY {
            object.remove(*section);
        }
        for (section, keys) in [
            ("data", DataConfig::NOT_IDENTITY),
            ("train", TrainConfig::NOT_IDENTITY),
        ] {
            if let Some(fields) = object.get_mut(section).and_then(|s| s.as_object_mut()) {
                for key in keys {
                    fields.remove(*key);
                }
            }
        }
        if self.model.kind == ModelKind::Mlp
            && let Some(model) = object.get_mut("model").and_then(|m| m.as_object_mut())
        {
            for key in ModelConfig::CONV_ONLY {
                model.remove(*key);
            }
        }
        // Budget: more epochs continue the same run. A cosine schedule's horizon is its
        // epochs, so there they are identity: a 20-epoch cosine run is not a 10-epoch one
        // extended.
        if self.train.lr_schedule.is_constant()
            && let Some(train) = object.get_mut("train").and_then(|t| t.as_object_mut())
        {
            train.remove("epochs");
        }
        // serde_json's Map is a BTreeMap (no preserve_order feature): keys come out sorted.
        serde_json::to_string(&value).expect("a JSON value always serializes")
    }

    pub fn id(&self) -> RunId {
        let mut hasher = Sha256::new();
        hasher.update(format!("vaelab-run/{SCHEMA_VERSION}\n"));
        hasher.update(self.canonical_identity());
        let digest = hasher.finalize();
        RunId(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A small valid config for unit tests, here and in the `vaelab` crate (whose tests turn on
/// the `test-support` feature).
#[cfg(any(test, feature = "test-support"))]
pub fn tiny_config() -> RunConfig {
    RunConfig {
        seed: 0,
        data: DataConfig {
            image_size: 32,
            train_images: 64,
            val_images: 16,
            ..DataConfig::default()
        },
        model: ModelConfig {
            residual: true,
            latent_dim: 8,
            channels: vec![8, 16],
            ..ModelConfig::default()
        },
        train: TrainConfig {
            epochs: 2,
            batch_size: 16,
            ..TrainConfig::default()
        },
        eval: EvalConfig::default(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_choice_s_name_is_the_one_a_spec_writes_and_reads_back() {
        for likelihood in Likelihood::ALL {
            let name = choice_name(&likelihood);
            let from_yaml: Likelihood = serde_yaml::from_str(&name).unwrap();
            assert_eq!(from_yaml, likelihood, "{name}");
            assert_eq!(parse_choice::<Likelihood>(&name), Some(likelihood));
        }
        assert_eq!(choice_name(&Likelihood::Learned), "learned");
        assert_eq!(parse_choice::<Likelihood>("laplace"), None);
    }

    #[test]
    fn identity_is_pinned() {
        // If this changes, every existing run directory is orphaned: bump SCHEMA_VERSION
        // deliberately and update the vector, never by accident.
        assert_eq!(
            tiny_config().canonical_identity(),
            r#"{"data":{"dataset_seed":0,"image_size":32,"limit":null,"source":"synthetic","train_images":64,"val_images":16},"model":{"channels":[8,16],"init":"pytorch","latent_dim":8,"residual":true},"seed":0,"train":{"adam_beta1":0.9,"adam_beta2":0.999,"adam_eps":1e-8,"batch_size":16,"beta":1.0,"lr":0.001}}"#
        );
        assert_eq!(tiny_config().id().full(), PINNED_TINY_ID);
    }

    pub(crate) const PINNED_TINY_ID: &str =
        "ff15bb106aea6e5b5f8f394b40d13c65cf414de1a467bf9cf3e6e7be1bf75373";

    /// Every field set away from its default (a struct literal, so a new field must be
    /// added here to compile): the hash leaves out exactly the budget, measurement and
    /// placement keys, so a renamed field can never silently leave the identity.
    #[test]
    fn the_identity_leaves_out_exactly_budget_measurement_and_placement() {
        let everything = RunConfig {
            seed: 7,
            data: DataConfig {
                source: DataSource::Celeba,
                image_size: 128,
                dataset_seed: 3,
                train_images: 1000,
                val_images: 100,
                limit: Some(500),
                root: Some("/data/celeba".into()),
                fingerprint: Some("ab".repeat(32)),
                crop: Some(140),
                resize_filter: Some(ResizeFilter::Lanczos3),
                val_ratio: Some(0.2),
                split: Some(EvalSplit::Test),
                hflip: true,
            },
            model: ModelConfig {
                kind: ModelKind::Conv,
                hidden: vec![256, 128],
                residual: false,
                latent_dim: 64,
                channels: vec![16, 32],
                norm: Norm::Batch,
                likelihood: Likelihood::Learned,
                // The default, but the value that is written (`he` is left out).
                init: Init::Pytorch,
                block: BlockDesign::Skipinit,
                blocks_in: BlocksIn::Decoder,
                blocks_per_stage: 2,
            },
            train: TrainConfig {
                epochs: 30,
                batch_size: 32,
                lr: 5e-4,
                beta: 4.0,
                adam_beta1: 0.5,
                adam_beta2: 0.99,
                adam_eps: 1e-6,
                precision: Precision::Bf16,
                deterministic: true,
                tf32: false,
                memory_format: MemoryFormat::ChannelsLast,
                kl_warmup_epochs: 5,
                free_bits: 0.5,
                lr_schedule: LrSchedule::Cosine,
                lr_warmup_steps: 100,
                grad_clip_norm: Some(1.0),
                select: Select::Best,
            },
            eval: EvalConfig {
                iwae_samples: 100,
                iwae_images: 10,
                attribute: "Eyeglasses".into(),
                fid: Some(FidConfig {
                    extractor: "/models/inception-2015-12-05.pt".into(),
                    samples: 5000,
                    reference: FidReference::Evaluation,
                }),
            },
        };
        fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value.as_object() {
                Some(map) => {
                    for (key, child) in map {
                        let path = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        leaves(&path, child, out);
                    }
                }
                None => out.push(prefix.to_string()),
            }
        }
        let left_out = |config: &RunConfig| {
            let (mut all, mut kept) = (Vec::new(), Vec::new());
            leaves("", &serde_json::to_value(config).unwrap(), &mut all);
            let identity: serde_json::Value =
                serde_json::from_str(&config.canonical_identity()).unwrap();
            leaves("", &identity, &mut kept);
            all.retain(|path| !kept.contains(path));
            all
        };
        let placement_and_measurement = [
            "data.root",
            "eval.attribute",
            "eval.fid.extractor",
            "eval.fid.reference",
            "eval.fid.samples",
            "eval.iwae_images",
            "eval.iwae_samples",
            "train.deterministic",
            "train.memory_format",
            "train.select",
            "train.tf32",
        ];
        // A cosine schedule's horizon is its epochs: identity there.
        assert_eq!(left_out(&everything), placement_and_measurement);
        let mut constant = everything.clone();
        constant.train.lr_schedule = LrSchedule::Constant;
        let mut with_budget = placement_and_measurement.to_vec();
        with_budget.insert(8, "train.epochs");
        assert_eq!(left_out(&constant), with_budget);
    }

    #[test]
    fn the_data_fingerprint_is_identity_and_the_root_is_not() {
        let mut on_disk = tiny_config();
        on_disk.data.source = DataSource::Folder;
        on_disk.data.fingerprint = Some("1".repeat(64));
        on_disk.data.root = Some("/a".into());
        let mut moved = on_disk.clone();
        moved.data.root = Some("/b".into());
        assert_eq!(on_disk.id(), moved.id(), "the same images elsewhere");
        let mut other = on_disk.clone();
        other.data.fingerprint = Some("2".repeat(64));
        assert_ne!(on_disk.id(), other.id(), "other images");
        assert!(
            !serde_yaml::to_string(&tiny_config())
                .unwrap()
                .contains("fingerprint")
        );
    }

    /// `model.init: he` is what runs were trained with before it existed: such runs'
    /// config.yaml (without the field) reads back as `he` with its old id, and `he` in a
    /// spec finds them; the default, `pytorch`, is another run.
    #[test]
    fn he_initialisation_keeps_the_ids_made_before_init_existed() {
        let mut he = tiny_config();
        he.model.init = Init::He;
        assert_eq!(he.id().full(), PINNED_HE_TINY_ID);
        let text = serde_yaml::to_string(&he).unwrap();
        assert!(!text.contains("init"), "{text}");
        let read: RunConfig = serde_yaml::from_str(&text).unwrap();
        assert_eq!(read.model.init, Init::He);
        assert_ne!(tiny_config().id(), he.id());
        let written = serde_yaml::to_string(&tiny_config()).unwrap();
        assert!(written.contains("init: pytorch"), "{written}");
    }

    /// The tiny config's id before `model.init` existed (its runs were He-initialised).
    const PINNED_HE_TINY_ID: &str =
        "d651d1d25f2616d1d355ff80c8e9bac83d988b4f4b4ba9b3dafbbd7b3a233f9b";

    #[test]
    fn evaluation_settings_are_not_identity() {
        let mut other = tiny_config();
        other.eval.iwae_samples = 1000;
        other.eval.attribute = "Eyeglasses".into();
        assert_eq!(other.id(), tiny_config().id());
    }

    #[test]
    fn bf16_is_identity_and_fp32_keeps_the_old_ids() {
        let mut bf16 = tiny_config();
        bf16.train.precision = Precision::Bf16;
        assert_ne!(bf16.id(), tiny_config().id());
        assert!(bf16.canonical_identity().contains(r#""precision":"bf16""#));
        // A config.yaml written before precision existed reads back as fp32.
        let old = serde_yaml::to_string(&tiny_config()).unwrap();
        assert!(!old.contains("precision"));
        let read: RunConfig = serde_yaml::from_str(&old).unwrap();
        assert_eq!(read.train.precision, Precision::Fp32);
        assert_eq!(read.id().full(), PINNED_TINY_ID);
    }

    #[test]
    fn cuda_numerics_are_placement_not_identity() {
        let mut exact = tiny_config();
        exact.train.deterministic = true;
        exact.train.tf32 = false;
        assert_eq!(exact.id(), tiny_config().id());
        // Their defaults leave config.yaml as it was; set, they are kept there.
        let default_text = serde_yaml::to_string(&tiny_config()).unwrap();
        assert!(!default_text.contains("deterministic") && !default_text.contains("tf32"));
        let text = serde_yaml::to_string(&exact).unwrap();
        let read: RunConfig = serde_yaml::from_str(&text).unwrap();
        assert!(read.train.deterministic && !read.train.tf32);
    }

    #[test]
    fn schedule_and_objective_fields_are_identity_and_left_out_at_their_defaults() {
        let text = serde_yaml::to_string(&tiny_config()).unwrap();
        for field in [
            "kl_warmup_epochs",
            "free_bits",
            "lr_schedule",
            "lr_warmup_steps",
            "grad_clip_norm",
            "select",
        ] {
            assert!(!text.contains(field), "{field} written at its default");
        }
        let mut grouped = tiny_config();
        grouped.model.norm = Norm::Group;
        let mut learned = tiny_config();
        learned.model.likelihood = Likelihood::Learned;
        for changed in [grouped, learned] {
            assert_ne!(changed.id(), tiny_config().id());
            let read: RunConfig =
                serde_yaml::from_str(&serde_yaml::to_string(&changed).unwrap()).unwrap();
            assert_eq!(read, changed, "config.yaml keeps the field");
        }
        assert!(!text.contains("norm") && !text.contains("likelihood"));
        let edits: [fn(&mut TrainConfig); 5] = [
            |t| t.kl_warmup_epochs = 2,
            |t| t.free_bits = 0.25,
            |t| t.lr_schedule = LrSchedule::Cosine,
            |t| t.lr_warmup_steps = 100,
            |t| t.grad_clip_norm = Some(1.0),
        ];
        for edit in edits {
            let mut changed = tiny_config();
            edit(&mut changed.train);
            assert_ne!(changed.id(), tiny_config().id());
            let read: RunConfig =
                serde_yaml::from_str(&serde_yaml::to_string(&changed).unwrap()).unwrap();
            assert_eq!(read, changed, "config.yaml keeps the field");
        }
    }

    /// `model.kind: mlp` is identity (left out at `conv`, so every earlier id stays), and
    /// an MLP's id ignores the convolutional fields it has no use for.
    #[test]
    fn an_mlp_is_its_own_run_and_ignores_the_convolutional_fields() {
        let mut mlp = tiny_config();
        mlp.model.kind = ModelKind::Mlp;
        mlp.model.hidden = vec![64];
        assert_ne!(mlp.id(), tiny_config().id());
        let mut wider = mlp.clone();
        wider.model.hidden = vec![128];
        assert_ne!(wider.id(), mlp.id());
        let mut other_channels = mlp.clone();
        other_channels.model.channels = vec![32, 64, 128];
        other_channels.model.residual = false;
        other_channels.model.block = BlockDesign::Preact;
        assert_eq!(other_channels.id(), mlp.id());
        let text = serde_yaml::to_string(&tiny_config()).unwrap();
        assert!(!text.contains("kind") && !text.contains("hidden"), "{text}");
        let read: RunConfig = serde_yaml::from_str(&serde_yaml::to_string(&mlp).unwrap()).unwrap();
        assert_eq!(read, mlp);
    }

    #[test]
    fn selection_is_measurement_and_a_cosine_horizon_is_identity() {
        let mut best = tiny_config();
        best.train.select = Select::Best;
        assert_eq!(best.id(), tiny_config().id());
        let mut cosine = tiny_config();
        cosine.train.lr_schedule = LrSchedule::Cosine;
        let mut longer = cosine.clone();
        longer.train.epochs = 50;
        assert_ne!(
            cosine.id(),
            longer.id(),
            "the cosine decays over its epochs"
        );
    }

    #[test]
    fn epochs_are_budget_not_identity() {
        let mut longer = tiny_config();
        longer.train.epochs = 50;
        assert_eq!(tiny_config().id(), longer.id());
    }

    #[test]
    fn every_identity_field_changes_the_id() {
        let base = tiny_config().id();
        let mut changes: Vec<RunConfig> = Vec::new();
        let mut c = tiny_config();
        c.seed = 1;
        changes.push(c);
        let mut c = tiny_config();
        c.model.residual = false;
        changes.push(c);
        let mut c = tiny_config();
        c.train.beta = 4.0;
        changes.push(c);
        let mut c = tiny_config();
        c.data.limit = Some(10);
        changes.push(c);
        let mut c = tiny_config();
        c.model.channels = vec![8, 32];
        changes.push(c);
        let mut c = tiny_config();
        c.train.precision = Precision::Bf16;
        changes.push(c);
        let mut c = tiny_config();
        c.model.block = BlockDesign::Preact;
        changes.push(c);
        let mut c = tiny_config();
        c.model.blocks_in = BlocksIn::Encoder;
        changes.push(c);
        let mut c = tiny_config();
        c.model.blocks_per_stage = 2;
        changes.push(c);
        for changed in changes {
            assert_ne!(changed.id(), base, "{}", changed.canonical_identity());
        }
    }
}
