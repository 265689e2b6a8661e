//! The end-of-run metrics a report compares and a study's question may name ([`Metric`]):
//! each metric's key, title, phrase, unit and direction, and which are compared against the
//! baseline. Declared here, in the lowest layer, so a spec can name one; how a run's value
//! is read lives with the run (`report::aggregate::RunRecord::metric`).

/// What the comparison table reports per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Parameters,
    Epochs,
    SecondsPerEpoch,
    FinalTrainLoss,
    BestValLoss,
    ReconMse,
    Psnr,
    Ssim,
    Kl,
    ActiveUnits,
    ElboBpd,
    IwaeBpd,
    /// −IWAE under the calibrated decoder variance: comparable across likelihoods.
    CalibratedIwaeBpd,
    /// The best validation loss among the epochs that end within the compute budget of its
    /// grid point: the smallest total training FLOPs of the variants compared there.
    BestValLossEqualCompute,
    /// FID of prior samples against the reference images (`eval.fid`).
    Fid,
    /// FID of the decoded posterior means of the evaluation images against them.
    ReconstructionFid,
    /// KID (unbiased MMD², cubic kernel) of prior samples.
    Kid,
}

impl Metric {
    pub const ALL: [Metric; 17] = [
        Metric::Parameters,
        Metric::Epochs,
        Metric::SecondsPerEpoch,
        Metric::FinalTrainLoss,
        Metric::BestValLoss,
        Metric::ReconMse,
        Metric::Psnr,
        Metric::Ssim,
        Metric::Kl,
        Metric::ActiveUnits,
        Metric::ElboBpd,
        Metric::IwaeBpd,
        Metric::CalibratedIwaeBpd,
        Metric::BestValLossEqualCompute,
        Metric::Fid,
        Metric::ReconstructionFid,
        Metric::Kid,
    ];

    /// The metrics compared against the baseline, in table order: all but those that
    /// describe cost, not quality.
    pub fn compared() -> Vec<Metric> {
        Self::ALL
            .into_iter()
            .filter(|m| {
                !matches!(
                    m,
                    Metric::Parameters | Metric::Epochs | Metric::SecondsPerEpoch
                )
            })
            .collect()
    }

    /// Measured only when a spec asks (`eval.fid`): the tables people read leave such a
    /// column out while no run has it.
    pub fn is_optional(self) -> bool {
        matches!(self, Metric::Fid | Metric::ReconstructionFid | Metric::Kid)
    }

    /// Column name in CSV files.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Parameters => "parameters",
            Metric::Epochs => "epochs",
            Metric::SecondsPerEpoch => "seconds_per_epoch",
            Metric::FinalTrainLoss => "final_train_loss",
            Metric::BestValLoss => "best_val_loss",
            Metric::ReconMse => "recon_mse",
            Metric::Psnr => "psnr",
            Metric::Ssim => "ssim",
            Metric::Kl => "kl",
            Metric::ActiveUnits => "active_units",
            Metric::ElboBpd => "elbo_bpd",
            Metric::IwaeBpd => "iwae_bpd",
            Metric::CalibratedIwaeBpd => "calibrated_iwae_bpd",
            Metric::BestValLossEqualCompute => "best_val_loss_equal_compute",
            Metric::Fid => "fid",
            Metric::ReconstructionFid => "reconstruction_fid",
            Metric::Kid => "kid",
        }
    }

    /// Column heading in Markdown and HTML.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Parameters => "parameters",
            Metric::Epochs => "epochs",
            Metric::SecondsPerEpoch => "s / epoch",
            Metric::FinalTrainLoss => "final train loss",
            Metric::BestValLoss => "best val loss",
            Metric::ReconMse => "recon MSE",
            Metric::Psnr => "PSNR (dB)",
            Metric::Ssim => "SSIM",
            Metric::Kl => "KL (nats)",
            Metric::ActiveUnits => "active units",
            Metric::ElboBpd => "−ELBO (bits/dim)",
            Metric::IwaeBpd => "−IWAE (bits/dim)",
            Metric::CalibratedIwaeBpd => "−IWAE calibrated (bits/dim)",
            Metric::BestValLossEqualCompute => "best val loss, equal FLOPs",
            Metric::Fid => "FID",
            Metric::ReconstructionFid => "rFID",
            Metric::Kid => "KID",
        }
    }

    /// How a reading names it.
    pub fn phrase(self) -> &'static str {
        match self {
            Metric::Parameters => "the parameter count",
            Metric::Epochs => "the epochs",
            Metric::SecondsPerEpoch => "the seconds per epoch",
            Metric::FinalTrainLoss => "the final training loss",
            Metric::BestValLoss => "the best validation loss",
            Metric::ReconMse => "the reconstruction MSE",
            Metric::Psnr => "PSNR",
            Metric::Ssim => "SSIM",
            Metric::Kl => "the KL term",
            Metric::ActiveUnits => "the active units",
            Metric::ElboBpd => "the negative ELBO",
            Metric::IwaeBpd => "the negative importance-weighted bound",
            Metric::CalibratedIwaeBpd => {
                "the negative importance-weighted bound under the calibrated decoder"
            }
            Metric::BestValLossEqualCompute => {
                "the best validation loss within equal training FLOPs"
            }
            Metric::Fid => "FID of prior samples",
            Metric::ReconstructionFid => "the reconstruction FID",
            Metric::Kid => "KID of prior samples",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Psnr => " dB",
            Metric::Kl => " nats",
            Metric::ElboBpd | Metric::IwaeBpd | Metric::CalibratedIwaeBpd => " bits/dim",
            Metric::ActiveUnits => " units",
            Metric::SecondsPerEpoch => " s",
            _ => "",
        }
    }

    /// The compared metric whose [`Metric::key`] is `key`.
    pub fn from_key(key: &str) -> Option<Metric> {
        Self::compared().into_iter().find(|m| m.key() == key)
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Psnr | Metric::Ssim | Metric::ActiveUnits)
    }
}
