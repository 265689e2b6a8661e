//! `vaelab serve [--port 6006] [--host 127.0.0.1]`: the live dashboard; prints its URL.
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;

use crate::cli::ServeArgs;
use vaelab_core::progress::Reporter;

pub fn execute(args: &ServeArgs, runs_dir: &Path, reporter: &dyn Reporter) -> Result<()> {
    if !args.host.is_loopback() {
        reporter.warn(&format!(
            "listening on {}: anyone who can reach this machine can read every run in {}",
            args.host,
            runs_dir.display()
        ));
    }
    let address = SocketAddr::new(args.host, args.port);
    vaelab_core::serve::serve(runs_dir.to_path_buf(), address, |bound| {
        // The URL on stdout (flushed, so a script or test can read it), the rest on stderr.
        println!("http://{bound}/");
        let _ = std::io::stdout().flush();
        reporter.note(&format!(
            "serving {} read-only; Ctrl-C stops",
            runs_dir.display()
        ));
    })?;
    Ok(())
}
