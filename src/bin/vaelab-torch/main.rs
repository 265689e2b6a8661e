//! `vaelab-torch`: the half of vaelab that links libtorch. `vaelab` hands it `run`,
//! `bench` and `info` with the same command line, so it parses the same `cli.rs`.
#[path = "../../cli.rs"]
mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use vaelab::progress::Console;
use vaelab::store::RunStore;

fn main() -> ExitCode {
    commands::start_with_cublas_workspace();
    // Before anything allocates: tensors reuse freed memory instead of fresh pages.
    vaelab::runtime::memory::keep_freed_memory();
    let cli = match commands::run::WorkerArgs::from_env() {
        // A `--jobs` worker: its parent's arguments, handed whole.
        Some(Ok(worker)) => Cli {
            runs_dir: worker.runs_dir,
            report_dir: "report".into(),
            quiet: worker.quiet,
            command: Command::Run(worker.run),
        },
        Some(Err(error)) => return commands::shared::report_error(&error),
        None => Cli::parse(),
    };
    if let Err(error) = commands::check_same_build() {
        return commands::shared::report_error(&error);
    }
    let reporter = Console::new(cli.quiet);
    let store = RunStore::new(&cli.runs_dir);
    let result = match &cli.command {
        Command::Run(args) => commands::run::execute(args, &store, &reporter, cli.quiet),
        Command::Info(args) => commands::info::execute(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => commands::bench::execute(args).map(|()| ExitCode::SUCCESS),
        _ => Err(commands::usage(
            "vaelab-torch runs `run`, `bench` and `info`; use `vaelab` for the rest".into(),
        )),
    };
    match result {
        Ok(code) => code,
        Err(error) => commands::shared::report_error(&error),
    }
}
