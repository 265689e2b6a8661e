//! Named crash points, for tests that must interrupt a run at an exact place: with
//! `VAELAB_CRASH_AT=<point>` in its environment, vaelab kills itself with SIGKILL on
//! reaching that point, as a power cut or the OOM killer would. Without the variable a
//! point costs one check of a cached `None`.
//!
//! Points: `step:E:S` (step S of epoch E taken, counting from 0), `metrics-written:E`
//! (epoch E's metrics on disk, its checkpoint not yet), `checkpoint-partial:NAME` (the
//! files of checkpoint NAME written into its `.partial-*` directory, not yet renamed),
//! `evaluation-partial` (the latent statistics written, the evaluation row not yet).
use std::sync::OnceLock;

/// The environment variable that names the crash point.
pub const CRASH_AT_ENV: &str = "VAELAB_CRASH_AT";

/// Kills this process with SIGKILL when `point()` names the crash point asked for.
pub fn crash_point(point: impl FnOnce() -> String) {
    static ASKED: OnceLock<Option<String>> = OnceLock::new();
    let Some(asked) = ASKED.get_or_init(|| std::env::var(CRASH_AT_ENV).ok()) else {
        return;
    };
    if *asked == point() {
        // SAFETY: kill(2) on this process's own pid; SIGKILL does not return.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
