//! Gathering a sweep for its report: every planned run's Parquet metrics and evaluation,
//! grouped into variants (grid points with seeds pooled) and paired against a baseline.
//!
//! Over 500 lines with its tests (about 130); what a metric is lives in `metric`.
use std::collections::HashMap;

use crate::experiment::capacity::capacity;
use crate::experiment::config::DataSource;
use crate::experiment::plan::{PlannedRun, Selection};
use crate::store::{
    self, EpochMetrics, Evaluation, LatentStats, RunDir, RunStore, Standing, Target,
};

use super::stats::{FAMILY_WISE_LEVEL, PairedDifference, Summary, holm};

/// Reads one quantity out of an epoch's metrics.
pub type MetricOf = fn(&EpochMetrics) -> f64;

pub use super::metric::Metric;

/// One planned run with everything its directory holds.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub planned: PlannedRun,
    pub dir: RunDir,
    pub seed: u64,
    pub standing: Standing,
    pub metrics: Vec<EpochMetrics>,
    pub evaluation: Option<Evaluation>,
    pub latent: Option<LatentStats>,
    pub parameters: f64,
    /// Training images per epoch, when known (recorded by the trainer, or fixed by the
    /// config for synthetic data and a `data.limit`).
    pub train_images: Option<u64>,
    /// Forward FLOPs per image, counted from the config.
    pub forward_flops: f64,
    /// Training FLOPs that [`Metric::BestValLossEqualCompute`] allows; NaN where unknown.
    pub compute_budget: f64,
    /// The build and hardware that last trained it (`RunState::trained_by`).
    pub trained_by: Option<String>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

impl RunRecord {
    /// Trained to its target epochs and evaluated there: what the comparison uses.
    pub fn finished(&self) -> bool {
        self.standing.is_complete() && self.evaluation.is_some()
    }

    /// A short word for tables: done, running, failed, ...
    pub fn status(&self) -> String {
        let target = self.planned.config.train.epochs;
        match &self.standing {
            Standing::TrainedNotEvaluated { .. } => "not evaluated".into(),
            Standing::Complete { .. } if !self.finished() => "not evaluated".into(),
            Standing::Failed { .. } => "failed".into(),
            Standing::Running { epochs_done, .. } => {
                format!("running ({epochs_done}/{target})")
            }
            Standing::New => "not started".into(),
            other => other.describe(target),
        }
    }

    pub fn metric(&self, metric: Metric) -> f64 {
        let eval = |f: fn(&Evaluation) -> f64| self.evaluation.as_ref().map_or(f64::NAN, f);
        match metric {
            Metric::Parameters => self.parameters,
            Metric::Epochs => self.metrics.len() as f64,
            Metric::SecondsPerEpoch => {
                Summary::of(
                    &self
                        .metrics
                        .iter()
                        .map(|m| m.epoch_seconds)
                        .collect::<Vec<_>>(),
                )
                .mean
            }
            Metric::FinalTrainLoss => self.metrics.last().map_or(f64::NAN, |m| m.train_loss),
            Metric::BestValLoss => self
                .metrics
                .iter()
                .map(|m| m.val_loss)
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::min),
            Metric::ReconMse => eval(|e| e.recon_mse),
            Metric::Psnr => eval(|e| e.psnr),
            Metric::Ssim => eval(|e| e.ssim),
            Metric::Kl => eval(|e| e.kl),
            Metric::ActiveUnits => eval(|e| e.active_units as f64),
            Metric::ElboBpd => eval(|e| e.elbo_bpd),
            Metric::IwaeBpd => eval(|e| e.iwae_bpd),
            Metric::CalibratedIwaeBpd => eval(|e| e.calibrated_iwae_bpd),
            Metric::Fid => eval(|e| e.fid.as_ref().map_or(f64::NAN, |f| f.fid)),
            Metric::ReconstructionFid => {
                eval(|e| e.fid.as_ref().map_or(f64::NAN, |f| f.reconstruction_fid))
            }
            Metric::Kid => eval(|e| e.fid.as_ref().map_or(f64::NAN, |f| f.kid)),
            Metric::BestValLossEqualCompute => {
                let budget = self.compute_budget * (1.0 + 1e-9);
                self.metrics
                    .iter()
                    .zip(self.spent())
                    .filter(|(_, spent)| spent.training_flops <= budget)
                    .map(|(m, _)| m.val_loss)
                    .filter(|v| v.is_finite())
                    .fold(f64::NAN, f64::min)
            }
        }
    }

    /// What the run had spent by the end of each of its epochs, in the order of `metrics`.
    pub fn spent(&self) -> Vec<Spent> {
        let per_epoch = self.train_images.map_or(f64::NAN, |n| n as f64);
        let mut seconds = 0.0;
        self.metrics
            .iter()
            .map(|m| {
                seconds += m.epoch_seconds;
                let images = f64::from(m.epoch) * per_epoch;
                Spent {
                    epoch: m.epoch,
                    images,
                    seconds,
                    training_flops: images * self.forward_flops * TRAINING_FLOPS_PER_FORWARD,
                }
            })
            .collect()
    }

    /// Training FLOPs over every epoch of its target.
    fn total_training_flops(&self) -> f64 {
        let epochs = f64::from(self.planned.config.train.epochs);
        let images = self.train_images.map_or(f64::NAN, |n| n as f64);
        epochs * images * self.forward_flops * TRAINING_FLOPS_PER_FORWARD
    }
}

/// Training FLOPs per image as a multiple of the forward pass's: the backward pass costs
/// about twice the forward (the rule behind the usual 6 × parameters per token).
pub const TRAINING_FLOPS_PER_FORWARD: f64 = 3.0;

/// What a run had spent by the end of an epoch: images seen, wall-clock seconds of
/// training and validation, and training FLOPs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    pub epoch: u32,
    pub images: f64,
    pub seconds: f64,
    pub training_flops: f64,
}

/// A variant: the runs at one grid point of one named variant, seeds pooled.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub variant: Option<String>,
    /// Grid coordinates without the seed, e.g. `latent_dim=64/beta=4`.
    pub grid: String,
    /// Indices into [`Aggregate::runs`], in plan order.
    pub runs: Vec<usize>,
    /// Index of the group this one is compared against (none for baselines).
    pub baseline: Option<usize>,
}

/// A paired comparison of one group with its baseline on one metric.
#[derive(Debug, Clone)]
pub struct Difference {
    pub group: usize,
    pub baseline: usize,
    pub metric: Metric,
    pub difference: PairedDifference,
    /// The paired t-test's p-value, Holm-adjusted over every difference of the report
    /// (every variant × compared metric with an interval): `family` of them.
    pub holm_p: f64,
    pub family: usize,
}

impl Difference {
    /// Whether the difference holds at a family-wise 5% over the report's comparisons.
    pub fn holm_significant(&self) -> bool {
        self.holm_p < FAMILY_WISE_LEVEL
    }
}

#[derive(Debug, Clone)]
pub struct Aggregate {
    pub experiment: String,
    pub runs: Vec<RunRecord>,
    pub groups: Vec<Group>,
    /// Directories of the store that cannot be read as runs (they may belong here).
    pub damaged: Vec<String>,
}

fn group_name(planned: &PlannedRun) -> (String, String) {
    let grid: Vec<String> = planned
        .coordinates
        .iter()
        .filter(|(k, _)| k != "seed")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let grid = grid.join("/");
    let name = match (&planned.variant, grid.is_empty()) {
        (Some(v), true) => v.clone(),
        (Some(v), false) => format!("{v}/{grid}"),
        (None, false) => grid.clone(),
        (None, true) => "all runs".into(),
    };
    (name, grid)
}

fn seed_of(planned: &PlannedRun) -> u64 {
    planned.config.seed
}

/// Reads every run of `selection` from `store`. Unreadable files are recorded as the
/// run's problems, never fatal: a report on a damaged sweep still shows the rest.
pub fn gather(store: &RunStore, selection: Selection) -> Aggregate {
    let Selection { plan, runs } = selection;
    let mut records = Vec::with_capacity(runs.len());
    for planned in runs {
        let dir = store.run_dir(&planned.id);
        let mut problems = Vec::new();
        let target = Target::of(&planned.config);
        let standing = dir.standing(target).unwrap_or_else(|e| {
            problems.push(e.to_string());
            Standing::New
        });
        // Recorded by the trainer when it built the model; runs from before it was
        // recorded show none.
        let state = dir.read_state().ok().flatten();
        let parameters = state
            .as_ref()
            .and_then(|s| s.parameters)
            .map_or(f64::NAN, |p| p as f64);
        let trained_by = state.as_ref().map(|s| s.trained_by());
        let data = &planned.config.data;
        let train_images = state
            .as_ref()
            .and_then(|s| s.train_images)
            .or(match data.source {
                DataSource::Synthetic => Some(data.effective_train_images() as u64),
                _ => data.limit.map(|n| n as u64),
            });
        let forward_flops =
            capacity(&planned.config.model, data.image_size as usize).forward_flops as f64;
        let metrics = if dir.metrics_path().exists() {
            store::read_metrics_file(&dir.metrics_path()).unwrap_or_else(|e| {
                problems.push(e.to_string());
                Vec::new()
            })
        } else {
            Vec::new()
        };
        let evaluation = dir.read_evaluation().unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        let latent = dir.read_latent_stats().unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        records.push(RunRecord {
            planned: (*planned).clone(),
            dir: dir.clone(),
            seed: seed_of(planned),
            standing,
            metrics,
            evaluation,
            latent,
            parameters,
            train_images,
            forward_flops,
            compute_budget: f64::NAN,
            trained_by,
            problems,
        });
    }

    let mut groups: Vec<Group> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let (name, grid) = group_name(&record.planned);
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.runs.push(i),
            None => groups.push(Group {
                name,
                variant: record.planned.variant.clone(),
                grid,
                runs: vec![i],
                baseline: None,
            }),
        }
    }
    let baseline_variant = plan
        .baseline
        .clone()
        .or_else(|| plan.runs.first().and_then(|r| r.variant.clone()));
    let first = groups.first().map(|g| g.name.clone());
    for g in 0..groups.len() {
        let partner = match &baseline_variant {
            // Named variants: compare with the baseline variant at the same grid point.
            Some(base) if groups[g].variant.as_deref() != Some(base.as_str()) => {
                groups.iter().position(|b| {
                    b.variant.as_deref() == Some(base.as_str()) && b.grid == groups[g].grid
                })
            }
            Some(_) => None,
            // A grid alone: every point against the first.
            None if Some(&groups[g].name) != first.as_ref() => Some(0),
            None => None,
        };
        groups[g].baseline = partner;
    }
    set_compute_budgets(&mut records, &groups);
    let damaged = match store.scan() {
        Ok(listing) => listing.damaged.iter().map(|d| d.describe()).collect(),
        Err(e) => vec![e.to_string()],
    };
    Aggregate {
        experiment: plan.experiment.clone(),
        runs: records,
        groups,
        damaged,
    }
}

/// Each run's compute budget: the smallest total training FLOPs among the finished runs of
/// the groups at its grid point (the variants compared there).
fn set_compute_budgets(records: &mut [RunRecord], groups: &[Group]) {
    for group in groups {
        let budget = groups
            .iter()
            .filter(|other| other.grid == group.grid)
            .flat_map(|other| &other.runs)
            .map(|&i| &records[i])
            .filter(|r| r.finished())
            .map(RunRecord::total_training_flops)
            .filter(|flops| flops.is_finite())
            .fold(f64::NAN, f64::min);
        for &i in &group.runs {
            records[i].compute_budget = budget;
        }
    }
}

impl Aggregate {
    /// The finished runs of `group`.
    pub fn finished(&self, group: &Group) -> Vec<&RunRecord> {
        group
            .runs
            .iter()
            .map(|&i| &self.runs[i])
            .filter(|r| r.finished())
            .collect()
    }

    /// Mean ± std over `group`'s finished runs.
    pub fn summary(&self, group: &Group, metric: Metric) -> Summary {
        let values: Vec<f64> = self
            .finished(group)
            .iter()
            .map(|r| r.metric(metric))
            .collect();
        Summary::of(&values)
    }

    /// Every group's paired differences against its baseline, seeds matched, finished runs only.
    pub fn differences(&self) -> Vec<Difference> {
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let Some(b) = group.baseline else { continue };
            let baseline: HashMap<u64, &RunRecord> = self
                .finished(&self.groups[b])
                .into_iter()
                .map(|r| (r.seed, r))
                .collect();
            let pairs: Vec<(&RunRecord, &RunRecord)> = self
                .finished(group)
                .into_iter()
                .filter_map(|r| baseline.get(&r.seed).map(|base| (r, *base)))
                .collect();
            for metric in self.shown(&Metric::compared()) {
                let values: Vec<(f64, f64)> = pairs
                    .iter()
                    .map(|(t, base)| (t.metric(metric), base.metric(metric)))
                    .collect();
                out.push(Difference {
                    group: g,
                    baseline: b,
                    metric,
                    difference: PairedDifference::of(&values),
                    holm_p: f64::NAN,
                    family: 0,
                });
            }
        }
        let p_values: Vec<f64> = out.iter().map(|d| d.difference.p_value()).collect();
        let family = p_values.iter().filter(|p| p.is_finite()).count();
        for (d, adjusted) in out.iter_mut().zip(holm(&p_values)) {
            d.holm_p = adjusted;
            d.family = family;
        }
        out
    }

    /// Per epoch, over the runs of `group` that reached it: (epoch, summary) of `value`.
    pub fn curve(&self, group: &Group, value: MetricOf) -> Vec<(u32, Summary)> {
        let mut by_epoch: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
        for &i in &group.runs {
            for m in &self.runs[i].metrics {
                by_epoch.entry(m.epoch).or_default().push(value(m));
            }
        }
        by_epoch
            .into_iter()
            .map(|(epoch, values)| (epoch, Summary::of(&values)))
            .collect()
    }

    /// Per epoch, `group` minus its baseline in `value`, paired by seed over the runs of
    /// both that reached the epoch (finished or not): how a gap moves over training.
    pub fn gap_curve(&self, group: &Group, value: MetricOf) -> Vec<(u32, PairedDifference)> {
        let Some(b) = group.baseline else {
            return Vec::new();
        };
        // Ordered maps: the sums, and so the report's last digits, never depend on hashing.
        let by_seed = |g: &Group| -> std::collections::BTreeMap<(u64, u32), f64> {
            g.runs
                .iter()
                .map(|&i| &self.runs[i])
                .flat_map(|r| r.metrics.iter().map(move |m| ((r.seed, m.epoch), value(m))))
                .collect()
        };
        let baseline = by_seed(&self.groups[b]);
        let mut pairs: std::collections::BTreeMap<u32, Vec<(f64, f64)>> = Default::default();
        for ((seed, epoch), v) in by_seed(group) {
            if let Some(&base) = baseline.get(&(seed, epoch)) {
                pairs.entry(epoch).or_default().push((v, base));
            }
        }
        pairs
            .into_iter()
            .map(|(epoch, pairs)| (epoch, PairedDifference::of(&pairs)))
            .collect()
    }

    /// Per epoch over the runs of `group` that reached it: the mean of `measure` (what the
    /// runs had spent), the mean validation loss and its standard deviation.
    pub fn cost_curve(&self, group: &Group, measure: fn(&Spent) -> f64) -> Vec<(f64, f64, f64)> {
        let mut by_epoch: std::collections::BTreeMap<u32, (Vec<f64>, Vec<f64>)> =
            Default::default();
        for &i in &group.runs {
            let run = &self.runs[i];
            for (m, spent) in run.metrics.iter().zip(run.spent()) {
                let (xs, ys) = by_epoch.entry(m.epoch).or_default();
                xs.push(measure(&spent));
                ys.push(m.val_loss);
            }
        }
        by_epoch
            .into_values()
            .map(|(xs, ys)| {
                let (x, y) = (Summary::of(&xs), Summary::of(&ys));
                // A run with an unknown cost leaves its epoch's x out, never half in.
                let x = if x.n == xs.len() { x.mean } else { f64::NAN };
                (x, y.mean, y.std)
            })
            .collect()
    }

    /// The metrics of `metrics` the tables people read show: every one but an optional
    /// metric no run has.
    pub fn shown(&self, metrics: &[Metric]) -> Vec<Metric> {
        metrics
            .iter()
            .copied()
            .filter(|m| !m.is_optional() || self.runs.iter().any(|r| r.metric(*m).is_finite()))
            .collect()
    }

    /// Runs that the comparison leaves out, with why.
    pub fn left_out(&self) -> Vec<&RunRecord> {
        self.runs.iter().filter(|r| !r.finished()).collect()
    }
}

impl Aggregate {
    /// The run whose pictures stand for a group: its first finished run, else any evaluated one.
    pub fn representative(&self, group: &Group) -> Option<&RunRecord> {
        self.finished(group).into_iter().next().or_else(|| {
            group
                .runs
                .iter()
                .map(|&i| &self.runs[i])
                .find(|r| r.evaluation.is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::tiny_config;
    use crate::store::test_metrics_row;

    /// A finished run of `variant` with seed `seed` whose validation loss per epoch is
    /// `losses`, on 100 training images an epoch.
    fn run(variant: &str, seed: u64, residual: bool, losses: &[f64]) -> RunRecord {
        let mut config = tiny_config();
        config.seed = seed;
        config.model.residual = residual;
        config.train.epochs = losses.len() as u32;
        let planned = PlannedRun {
            id: config.id(),
            label: format!("{variant}/seed={seed}"),
            variant: Some(variant.into()),
            coordinates: vec![("seed".into(), seed.to_string())],
            config: config.clone(),
        };
        let metrics = losses
            .iter()
            .enumerate()
            .map(|(i, &val_loss)| EpochMetrics {
                val_loss,
                ..test_metrics_row(i as u32 + 1)
            })
            .collect();
        let mut evaluation = crate::store::test_evaluation();
        evaluation.epoch = losses.len() as u32;
        RunRecord {
            dir: RunStore::new("unused").run_dir(&planned.id),
            planned,
            seed,
            standing: Standing::Complete {
                epochs_done: losses.len() as u32,
            },
            metrics,
            evaluation: Some(evaluation),
            latent: None,
            parameters: f64::NAN,
            train_images: Some(100),
            forward_flops: capacity(&config.model, config.data.image_size as usize).forward_flops
                as f64,
            compute_budget: f64::NAN,
            trained_by: None,
            problems: Vec::new(),
        }
    }

    /// The plain runs (cheaper per image) set the budget; the residual runs' equal-compute
    /// loss is their best over the epochs that end within it.
    fn aggregate() -> Aggregate {
        let mut runs = vec![
            run("plain", 0, false, &[10.0, 8.0, 6.0, 5.0]),
            run("plain", 1, false, &[11.0, 9.0, 7.0, 6.0]),
            run("residual", 0, true, &[9.0, 7.0, 4.0, 3.0]),
            run("residual", 1, true, &[9.5, 7.5, 5.0, 4.0]),
        ];
        let group = |name: &str, runs: Vec<usize>, baseline| Group {
            name: name.into(),
            variant: Some(name.into()),
            grid: String::new(),
            runs,
            baseline,
        };
        let groups = vec![
            group("plain", vec![0, 1], None),
            group("residual", vec![2, 3], Some(0)),
        ];
        set_compute_budgets(&mut runs, &groups);
        Aggregate {
            experiment: "e".into(),
            runs,
            groups,
            damaged: Vec::new(),
        }
    }

    #[test]
    fn equal_compute_takes_the_best_loss_within_the_cheapest_variant_s_flops() {
        let agg = aggregate();
        let plain = &agg.runs[0];
        let residual = &agg.runs[2];
        let per_epoch = |r: &RunRecord| r.spent()[0].training_flops;
        let budget = 4.0 * per_epoch(plain);
        assert_eq!(plain.compute_budget, budget);
        assert_eq!(residual.compute_budget, budget, "one budget per grid point");
        let affordable = (budget / per_epoch(residual)).floor() as usize;
        assert!((1..4).contains(&affordable), "{affordable} residual epochs");
        assert_eq!(
            residual.metric(Metric::BestValLossEqualCompute),
            [9.0, 7.0, 4.0, 3.0][affordable - 1],
        );
        assert_eq!(plain.metric(Metric::BestValLossEqualCompute), 5.0);
        assert_eq!(residual.metric(Metric::BestValLoss), 3.0);
    }

    #[test]
    fn the_gap_is_paired_by_seed_at_every_epoch() {
        let agg = aggregate();
        let gap = agg.gap_curve(&agg.groups[1], |m| m.val_loss);
        let means: Vec<(u32, f64)> = gap.iter().map(|(e, d)| (*e, d.mean)).collect();
        assert_eq!(means, [(1, -1.25), (2, -1.25), (3, -2.0), (4, -2.0)]);
        assert!(gap.iter().all(|(_, d)| d.n == 2));
        assert!(agg.gap_curve(&agg.groups[0], |m| m.val_loss).is_empty());
    }

    #[test]
    fn every_difference_carries_its_holm_adjustment_over_the_report() {
        let agg = aggregate();
        let differences = agg.differences();
        let p: Vec<f64> = differences.iter().map(|d| d.difference.p_value()).collect();
        let adjusted = holm(&p);
        let family = p.iter().filter(|p| p.is_finite()).count();
        assert!(family >= 2, "{p:?}");
        for (d, want) in differences.iter().zip(adjusted) {
            assert_eq!(d.family, family);
            assert!(d.holm_p.to_bits() == want.to_bits() || (d.holm_p.is_nan() && want.is_nan()));
            if d.difference.p_value().is_finite() {
                assert!(d.holm_p >= d.difference.p_value());
            }
        }
    }
}
