//! The reporting layer: the only way the library talks to a person (progress bars, notes).
//!
//! Library code calls a [`Reporter`]; the binary picks the console one, tests a silent or
//! recording one. Nothing else in the library prints.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What one finished epoch looked like, for the per-epoch summary line.
#[derive(Debug, Clone)]
pub struct EpochSummary {
    pub label: String,
    pub epoch: u32,
    pub epochs: u32,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_recon: f64,
    pub val_kl: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

pub trait Reporter: Send + Sync {
    /// A line for a person: what is happening, what was skipped, where output went.
    fn note(&self, message: &str);
    /// A recoverable problem.
    fn warn(&self, message: &str);
    /// Starts a bar over `total` units of work.
    fn start(&self, label: &str, total: u64, unit: &str);
    /// Advances the bar; `status` replaces the text after it (loss, ...).
    fn advance(&self, done: u64, status: &str);
    fn finish(&self);
    fn epoch(&self, summary: &EpochSummary);
}

/// Drops everything: for tests and `--quiet`.
pub struct Silent;

impl Reporter for Silent {
    fn note(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn start(&self, _: &str, _: u64, _: &str) {}
    fn advance(&self, _: u64, _: &str) {}
    fn finish(&self) {}
    fn epoch(&self, _: &EpochSummary) {}
}

/// Progress bars and lines on stderr. Bars hide themselves when stderr is not a terminal,
/// so logs of batch jobs hold only the summary lines.
pub struct Console {
    bar: std::sync::Mutex<Option<ProgressBar>>,
    quiet: bool,
}

impl Console {
    pub fn new(quiet: bool) -> Self {
        Self {
            bar: std::sync::Mutex::new(None),
            quiet,
        }
    }

    fn println(&self, line: &str) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match bar.as_ref() {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }
}

impl Reporter for Console {
    fn note(&self, message: &str) {
        if !self.quiet {
            self.println(message);
        }
    }

    fn warn(&self, message: &str) {
        self.println(&format!("warning: {message}"));
    }

    fn start(&self, label: &str, total: u64, unit: &str) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = format!(
            "{{prefix}} [{{bar:28}}] {{pos}}/{{len}} {unit} {{per_sec}} {{msg}} ETA {{eta}}"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, done: u64, status: &str) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.set_position(done);
            bar.set_message(status.to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn epoch(&self, s: &EpochSummary) {
        if !self.quiet {
            self.println(&format!(
                "{} epoch {}/{}: train {:.3}  val {:.3} (recon {:.3}, kl {:.3})  {:.1}s, {:.0} img/s",
                s.label, s.epoch, s.epochs, s.train_loss, s.val_loss, s.val_recon, s.val_kl, s.seconds, s.images_per_second
            ));
        }
    }
}
