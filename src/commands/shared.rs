//! What every command shares, in both binaries: usage errors and their exit code, and
//! choosing runs by `--only`.
use anyhow::Result;
use vaelab_core::experiment::plan::PlannedRun;

/// cuBLAS is deterministic only with a fixed workspace, which it reads from the
/// environment when it first starts. Setting it from inside the training process races
/// libtorch's threads (`setenv` is not thread-safe), so it is in the environment before
/// `vaelab-torch` starts: `vaelab` hands it over with it, and `vaelab-torch` started
/// directly re-executes itself with it. A value the user set is kept.
pub const CUBLAS_WORKSPACE: (&str, &str) = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8");

/// The launcher's build id (`VAELAB_BUILD_ID`, from `build.rs`), handed to `vaelab-torch`,
/// which refuses to run for a launcher of another build.
pub const BUILD_ENV: &str = "VAELAB_LAUNCHER_BUILD";

/// Exit code for mistakes in what the user asked for (bad spec, bad flag value).
pub const EXIT_USAGE: u8 = 2;

/// A mistake in the command line: reported like a spec error, with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

/// Prints `error` and gives the exit code it means: 2 for a mistake in the spec or the
/// command line, 1 for anything else.
pub fn report_error(error: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("error: {error:#}");
    let mistake = error
        .downcast_ref::<vaelab_core::experiment::spec::SpecError>()
        .is_some()
        || error.downcast_ref::<UsageError>().is_some();
    if mistake {
        std::process::ExitCode::from(EXIT_USAGE)
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// The plan of the spec at `path`: loaded, validated, expanded and fingerprinted, the one
/// way every command gets from a spec to its runs.
pub fn plan_of(path: &std::path::Path) -> Result<vaelab_core::experiment::plan::Plan> {
    let loaded = vaelab_core::experiment::spec::load(path)?;
    Ok(vaelab_core::data::fingerprint::plan(&loaded)?)
}

/// [`plan_of`], with the plan's warnings said (collapsed duplicates and the like): what a
/// command that acts on the plan starts with.
pub fn plan_and_warn(
    path: &std::path::Path,
    reporter: &dyn vaelab_core::progress::Reporter,
) -> Result<vaelab_core::experiment::plan::Plan> {
    let plan = plan_of(path)?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    Ok(plan)
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
