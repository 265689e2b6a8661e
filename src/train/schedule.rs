//! The learning rate and β of every training step, as pure functions of the run's config
//! and the step's place in the run, so a resumed run takes exactly the steps an
//! uninterrupted one takes.
use std::f64::consts::PI;

use crate::experiment::config::{LrSchedule, TrainConfig};
use crate::model::Objective;

/// What one step minimises and how far it moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSettings {
    pub lr: f64,
    pub objective: Objective,
}

/// A run's schedule: its train settings and how many steps an epoch has.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    train: &'a TrainConfig,
    steps_per_epoch: u64,
}

impl<'a> Schedule<'a> {
    pub fn new(train: &'a TrainConfig, steps_per_epoch: u64) -> Self {
        Self {
            train,
            steps_per_epoch: steps_per_epoch.max(1),
        }
    }

    /// The settings of step `step` (from 0) of epoch `epoch` (from 1).
    pub fn at(&self, epoch: u32, step: u64) -> StepSettings {
        let global = u64::from(epoch.saturating_sub(1)) * self.steps_per_epoch + step;
        StepSettings {
            lr: self.lr(global),
            objective: Objective {
                beta: self.beta(global),
                free_bits: self.train.free_bits,
            },
        }
    }

    /// The settings of an epoch's last step: what `metrics.parquet` logs for the epoch.
    pub fn end_of_epoch(&self, epoch: u32) -> StepSettings {
        self.at(epoch, self.steps_per_epoch - 1)
    }

    /// Linear warm-up from `lr / warmup` to `lr`, then constant or half a cosine to 0 at
    /// the end of `train.epochs`.
    fn lr(&self, global: u64) -> f64 {
        let train = self.train;
        let warmup = train.lr_warmup_steps;
        if global < warmup {
            return train.lr * (global + 1) as f64 / warmup as f64;
        }
        match train.lr_schedule {
            LrSchedule::Constant => train.lr,
            LrSchedule::Cosine => {
                let total = u64::from(train.epochs) * self.steps_per_epoch;
                let span = total.saturating_sub(warmup).max(1);
                let progress = ((global - warmup) as f64 / span as f64).min(1.0);
                train.lr * 0.5 * (1.0 + (PI * progress).cos())
            }
        }
    }

    /// β rises linearly from 0 at the first step to `beta` after `kl_warmup_epochs`.
    fn beta(&self, global: u64) -> f64 {
        let train = self.train;
        let warmup = u64::from(train.kl_warmup_epochs) * self.steps_per_epoch;
        if global >= warmup {
            train.beta
        } else {
            train.beta * global as f64 / warmup as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(edit: impl FnOnce(&mut TrainConfig)) -> TrainConfig {
        let mut train = TrainConfig {
            epochs: 3,
            lr: 0.01,
            beta: 2.0,
            ..TrainConfig::default()
        };
        edit(&mut train);
        train
    }

    /// (epoch, step) → (lr, β) for every step of a 3-epoch, 4-steps-per-epoch run.
    fn table(train: &TrainConfig) -> Vec<(f64, f64)> {
        let schedule = Schedule::new(train, 4);
        (1..=3)
            .flat_map(|epoch| (0..4).map(move |step| (epoch, step)))
            .map(|(epoch, step)| {
                let s = schedule.at(epoch, step);
                (s.lr, s.objective.beta)
            })
            .collect()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() < 1e-12, "step {i}: {a} vs {e}");
        }
    }

    #[test]
    fn defaults_are_the_constant_seed_settings_bit_for_bit() {
        let t = train(|_| {});
        for (lr, beta) in table(&t) {
            assert_eq!((lr, beta), (0.01, 2.0));
        }
    }

    #[test]
    fn kl_warmup_rises_by_step_from_zero_over_its_epochs() {
        let t = train(|t| t.kl_warmup_epochs = 2);
        let betas: Vec<f64> = table(&t).iter().map(|s| s.1).collect();
        // 8 warm-up steps: β = 2 · k / 8 for step k, then 2.
        let expected = [
            0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.0, 2.0, 2.0,
        ];
        assert_close(&betas, &expected);
    }

    #[test]
    fn cosine_with_warmup_matches_a_hand_computed_table() {
        let t = train(|t| {
            t.lr_schedule = LrSchedule::Cosine;
            t.lr_warmup_steps = 2;
        });
        let lrs: Vec<f64> = table(&t).iter().map(|s| s.0).collect();
        // Warm-up: 0.01·1/2, 0.01·2/2; then 0.005·(1 + cos(π·k/10)) for k = 0..9.
        let cosine = |k: f64| 0.005 * (1.0 + (PI * k / 10.0).cos());
        let mut expected = vec![0.005, 0.01];
        expected.extend((0..10).map(|k| cosine(k as f64)));
        assert_close(&lrs, &expected);
        assert_eq!(expected[2], 0.01);
        assert!((expected[7] - 0.005).abs() < 1e-12, "half-way is lr/2");
    }

    #[test]
    fn the_epoch_logs_its_last_step() {
        let t = train(|t| t.kl_warmup_epochs = 1);
        let schedule = Schedule::new(&t, 4);
        assert_eq!(schedule.end_of_epoch(1).objective.beta, 1.5);
        assert_eq!(schedule.end_of_epoch(2).objective.beta, 2.0);
    }
}
