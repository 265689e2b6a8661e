//! One module per subcommand; each turns parsed arguments into library calls and output.
pub mod bench;
pub mod export;
pub mod gc;
pub mod info;
pub mod plan;
pub mod report;
pub mod run;
pub mod runs;
pub mod serve;
pub mod slurm;
pub mod status;

use anyhow::Result;
use tch::Device;
use vaelab::experiment::plan::PlannedRun;

use crate::cli::{DeviceChoice, PlacementArgs};

/// Exit code for mistakes in what the user asked for (bad spec, bad flag value).
pub const EXIT_USAGE: u8 = 2;

/// A mistake in the command line: reported like a spec error, with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

/// Resolves `--device` and `--threads` into a libtorch device, refusing CUDA when absent.
pub fn placement_device(args: &PlacementArgs) -> Result<Device> {
    if let Some(threads) = args.threads {
        if threads < 1 {
            return Err(usage(format!(
                "--threads: expected a positive integer, got {threads}"
            )));
        }
        tch::set_num_threads(threads);
    }
    resolve_device(args.device)
}

/// A `--device` choice as a libtorch device, refusing a GPU that is not visible.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    Ok(match choice {
        DeviceChoice::Auto => Device::cuda_if_available(),
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda(index) => {
            let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            if index >= count {
                let visible = match count {
                    0 => "no CUDA device is visible".to_string(),
                    1 => "only cuda:0 is visible".to_string(),
                    n => format!("cuda:0 to cuda:{} are visible", n - 1),
                };
                return Err(usage(format!(
                    "--device cuda:{index}: {visible} (see `vaelab info` and CUDA_VISIBLE_DEVICES); use --device cpu or auto"
                )));
            }
            Device::Cuda(index)
        }
    })
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The runs `--only` picks (an id prefix or a label glob each); all when it is empty.
pub fn select<'a>(runs: &'a [PlannedRun], only: &[String]) -> Result<Vec<&'a PlannedRun>> {
    if only.is_empty() {
        return Ok(runs.iter().collect());
    }
    let picked: Vec<&PlannedRun> = runs
        .iter()
        .filter(|run| {
            only.iter()
                .any(|sel| run.id.full().starts_with(sel.as_str()) || glob_match(sel, &run.label))
        })
        .collect();
    if picked.is_empty() {
        return Err(usage(format!(
            "--only {}: matches no run; labels look like {:?}",
            only.join(","),
            runs.first().map(|r| r.label.as_str()).unwrap_or("")
        )));
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_labels() {
        assert!(glob_match("plain/*", "plain/latent_dim=64/seed=0"));
        assert!(glob_match("*seed=1", "residual/seed=1"));
        assert!(glob_match(
            "*/latent_dim=6?/*",
            "plain/latent_dim=64/seed=0"
        ));
        assert!(!glob_match("plain/*", "residual/seed=0"));
        assert!(!glob_match("seed=1", "seed=10"));
    }
}
