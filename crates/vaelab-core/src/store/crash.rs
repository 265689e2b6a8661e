//! Named crash points, for tests that must interrupt a run at an exact place: with
//! `VAELAB_CRASH_AT=<point>` in its environment, vaelab kills itself with SIGKILL on
//! reaching that point, as a power cut or the OOM killer would. Without the variable a
//! point costs one check of a cached `None`.
//!
//! Points: `step:E:S` (step S of epoch E taken, counting from 0), `metrics-written:E`
//! (epoch E's metrics on disk, its checkpoint not yet), `checkpoint-partial:NAME` (the
//! files of checkpoint NAME written into its `.partial-*` directory, not yet renamed),
//! `evaluation-partial` (the latent statistics written, the evaluation row not yet).
//!
//! `VAELAB_CRASH_SIGNAL=INT` (or `TERM`, `USR1`) sends that signal instead, as a user's
//! Ctrl-C or a scheduler would, and carries on: the run then stops the way it stops for
//! them. `VAELAB_CRASH_SIGNAL=ENOSPC` makes the write at that point fail as on a full disk
//! (for the points that write: `checkpoint-partial:NAME`), and `OOM` makes libtorch's
//! failure at that point happen: a panic with its out-of-memory message, as tch raises it.
//!
//! `VAELAB_CRASH_SIGNAL=COMMAND` runs the shell line in `VAELAB_CRASH_COMMAND` there
//! instead (say `scontrol requeue ...`, so that a scheduler stops the run) and, at a point
//! that waits for stop requests and when the line succeeds, holds the run at that point
//! until the stop request arrives: the stop then lands exactly there, however long the
//! scheduler takes to deliver it. A line that fails (by its own guard, for example on a
//! requeued task's second start) lets the run carry on.
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable that names the crash point.
pub const CRASH_AT_ENV: &str = "VAELAB_CRASH_AT";
/// The environment variable that names the signal sent there (default `KILL`).
pub const CRASH_SIGNAL_ENV: &str = "VAELAB_CRASH_SIGNAL";
/// The environment variable with the shell line `VAELAB_CRASH_SIGNAL=COMMAND` runs.
pub const CRASH_COMMAND_ENV: &str = "VAELAB_CRASH_COMMAND";
/// How long a point holds the run for a stop request after its command succeeded.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// The crash point and signal asked for, read once.
fn asked() -> &'static Option<(String, i32)> {
    static ASKED: OnceLock<Option<(String, i32)>> = OnceLock::new();
    ASKED.get_or_init(|| {
        let point = std::env::var(CRASH_AT_ENV).ok()?;
        let signal = match std::env::var(CRASH_SIGNAL_ENV).as_deref() {
            Ok("INT") => libc::SIGINT,
            Ok("TERM") => libc::SIGTERM,
            Ok("USR1") => libc::SIGUSR1,
            Ok("ENOSPC") => DISK_FULL,
            Ok("OOM") => OUT_OF_MEMORY,
            Ok("COMMAND") => RUN_COMMAND,
            _ => libc::SIGKILL,
        };
        Some((point, signal))
    })
}

/// Stands for "fail this write with ENOSPC" where a signal number would be.
const DISK_FULL: i32 = -1;
/// Stands for "fail as libtorch does when memory runs out".
const OUT_OF_MEMORY: i32 = -2;
/// Stands for "run the crash command".
const RUN_COMMAND: i32 = -3;

/// At a point that writes: the write fails as on a full disk when `point()` is the crash
/// point asked for with `VAELAB_CRASH_SIGNAL=ENOSPC`.
pub fn disk_full_point(point: impl FnOnce() -> String) -> std::io::Result<()> {
    match asked() {
        Some((asked, DISK_FULL)) if *asked == point() => {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        _ => Ok(()),
    }
}

/// Sends this process the crash signal (SIGKILL unless asked otherwise) when `point()`
/// names the crash point asked for.
pub fn crash_point(point: impl FnOnce() -> String) {
    crash_point_until_stopped(point, || true);
}

/// [`crash_point`] at a place that checks for stop requests right after it: a crash
/// command that succeeds holds the run here until `stopped()` (or a minute passes).
pub fn crash_point_until_stopped(point: impl FnOnce() -> String, stopped: impl Fn() -> bool) {
    let Some((asked, signal)) = asked() else {
        return;
    };
    if *signal == DISK_FULL || *asked != point() {
        return;
    }
    if *signal == OUT_OF_MEMORY {
        panic!("CUDA out of memory. Tried to allocate 2.00 GiB (injected at {asked})");
    }
    if *signal == RUN_COMMAND {
        if run_crash_command() {
            let started = Instant::now();
            while !stopped() && started.elapsed() < STOP_WAIT {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        return;
    }
    // SAFETY: kill(2) on this process's own pid.
    unsafe {
        libc::kill(libc::getpid(), *signal);
    }
}

/// Runs `VAELAB_CRASH_COMMAND` through `sh -c`; whether it ran and succeeded.
fn run_crash_command() -> bool {
    let Ok(line) = std::env::var(CRASH_COMMAND_ENV) else {
        return false;
    };
    std::process::Command::new("sh")
        .args(["-c", &line])
        .status()
        .is_ok_and(|status| status.success())
}
