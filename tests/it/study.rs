//! Studies with a declared question: seeds added round by round until each comparison is
//! decided, the decision valid under the repeated looks, resumable from the store alone.

use crate::common::Workspace;
use predicates::str::contains;

/// Two arms and a baseline on tiny synthetic faces: `small` (16×16) is the baseline,
/// `large` is the same model at 32×32, whose summed validation loss is over a hundred
/// higher on every seed, and `twin` differs from the baseline only in validating on one
/// image more: its loss differs by a few tenths either way, far below a margin of 40.
pub(crate) fn spec(margin: f64, max: usize) -> String {
    format!(
        "name: settle\nseed: 4\ndata:\n  source: synthetic\n  train_images: 64\n  val_images: 16\n\
         model:\n  latent_dim: 4\n  channels: [8, 16]\ntrain:\n  epochs: 1\n  batch_size: 32\n\
         eval:\n  iwae_samples: 2\n  iwae_images: 8\n\
         question:\n  metric: best_val_loss\n  compare: [large, twin]\n  margin: {margin}\n  seeds: {{start: 3, step: 2, max: {max}}}\n\
         variants:\n  - name: small\n    data.image_size: 16\n  - name: large\n    data.image_size: 32\n\
         \x20 - name: twin\n    data.image_size: 16\n    data.val_images: 17\n"
    )
}

const CPU: [&str; 4] = ["--device", "cpu", "--threads", "1"];

fn run_study(ws: &Workspace, spec: &std::path::Path) -> std::process::Output {
    let mut args = vec!["run", spec.to_str().unwrap()];
    args.extend(CPU);
    ws.vaelab(&args).output().expect("vaelab runs")
}

fn run_dirs(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.runs())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The strong difference is decided at the first look, three seeds per arm; the twin,
/// far inside the margin, ends equivalent, never different. Nothing beyond the first
/// look's runs is trained, a rerun trains nothing, and `plan` and the report say the
/// same decisions, the report apart from its exploratory part.
#[test]
fn a_strong_difference_and_a_null_one_are_both_settled_at_the_first_look() {
    let ws = Workspace::new();
    let spec = ws.write("settle.yaml", &spec(40.0, 9));
    let output = run_study(&ws, &spec);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("large vs small: worse at 3 seeds"),
        "{stderr}"
    );
    assert!(
        stderr.contains("twin vs small: equivalent at 3 seeds"),
        "{stderr}"
    );
    assert!(stderr.contains("answered: every declared comparison is decided"));
    assert_eq!(run_dirs(&ws).len(), 9, "three seeds of three variants");

    let again = run_study(&ws, &spec);
    assert!(again.status.success());
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("trained epochs"),
        "nothing is trained twice"
    );
    ws.vaelab(&["plan", spec.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("rounds: 1 of at most 4 done"))
        .stdout(contains("large vs small: worse at 3 seeds"))
        .stdout(contains("\n9 runs: 0 new"));
    ws.vaelab(&["report", spec.to_str().unwrap()])
        .current_dir(ws.path())
        .assert()
        .success();
    let report = std::fs::read_to_string(ws.path().join("report/settle/report.md")).unwrap();
    let confirmatory = report
        .find("## Confirmatory: the declared question")
        .unwrap();
    let exploratory = report.find("## Exploratory").unwrap();
    assert!(confirmatory < exploratory, "{report}");
    assert!(report[confirmatory..exploratory].contains("twin vs small: equivalent at 3 seeds"));
}

/// With a margin too small for the twin to be called equivalent, its comparison goes on
/// round after round to the last look, and ends unresolved, not different; killing the
/// study in its second round and running it again ends with exactly the runs and
/// decisions of a study never interrupted.
#[test]
fn a_study_killed_mid_round_resumes_to_the_same_answer() {
    let margin = 0.5;
    let straight = Workspace::new();
    let spec_path = straight.write("settle.yaml", &spec(margin, 5));
    let output = run_study(&straight, &spec_path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("rounds: 1 of at most 2 done"), "{stderr}");
    let settled = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(" vs small: "))
            .map(|l| l.to_string())
            .collect()
    };
    let plan = |ws: &Workspace| {
        let output = ws
            .vaelab(&["plan", ws.path().join("settle.yaml").to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let answer = settled(&plan(&straight));
    assert!(
        answer
            .iter()
            .any(|l| l.starts_with("twin vs small: unresolved at max at 5 seeds")),
        "{answer:?}"
    );
    assert!(
        answer
            .iter()
            .any(|l| l.starts_with("large vs small: worse at 3 seeds"))
    );
    // large was decided at the first look: seeds 3 and 4 only for small and twin.
    assert_eq!(run_dirs(&straight).len(), 3 + 5 + 5);

    // The first round trained by a fixed spec of the same three seeds: the same runs (the
    // question is not identity), so the study's next run is the second round's first.
    let killed = Workspace::new();
    let spec_path = killed.write("settle.yaml", &spec(margin, 5));
    let fixed_text = spec(margin, 5);
    let question_at = fixed_text.find("question:").unwrap();
    let variants_at = fixed_text.find("variants:").unwrap();
    let fixed_text = format!(
        "{}{}",
        &fixed_text[..question_at].replace("seed: 4\n", "seeds: [4, 5, 6]\n"),
        &fixed_text[variants_at..]
    );
    let fixed = killed.write("fixed.yaml", &fixed_text);
    let mut args = vec!["run", fixed.to_str().unwrap()];
    args.extend(CPU);
    killed.vaelab(&args).assert().success();
    assert_eq!(run_dirs(&killed).len(), 9);
    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(CPU);
    use std::os::unix::process::ExitStatusExt;
    let crashed = killed
        .vaelab(&args)
        .env(vaelab::store::crash::CRASH_AT_ENV, "step:1:1")
        .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "KILL")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(libc::SIGKILL));
    let before_resume = String::from_utf8_lossy(&crashed.stderr).into_owned();
    assert!(
        before_resume.contains("rounds: 1 of at most 2 done"),
        "the kill came in the second round: {before_resume}"
    );
    let resumed = run_study(&killed, &spec_path);
    assert!(resumed.status.success());
    assert_eq!(settled(&plan(&killed)), answer);
    assert_eq!(run_dirs(&killed), run_dirs(&straight));
}

/// A question naming a metric or variant the spec does not have is refused with the
/// file, line and field, and a suggestion.
#[test]
fn a_bad_question_is_refused_with_where_and_a_suggestion() {
    let ws = Workspace::new();
    let spec = ws.write(
        "settle.yaml",
        &spec(40.0, 9).replace("compare: [large, twin]", "compare: [lage, twin]"),
    );
    ws.vaelab(&["plan", spec.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains(
            "settle.yaml:18: question.compare: expected the name of a variant",
        ))
        .stderr(contains("(did you mean `large`?)"));
}
