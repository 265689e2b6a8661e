//! The `vaelab` binary: parse arguments, dispatch to a subcommand, map errors to exit codes.
mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use vaelab::progress::Console;
use vaelab::store::RunStore;

fn main() -> ExitCode {
    // Before anything allocates: tensors reuse freed memory instead of fresh pages.
    vaelab::model::memory::keep_freed_memory();
    let cli = Cli::parse();
    let reporter = Console::new(cli.quiet);
    let store = RunStore::new(&cli.runs_dir);
    let result = match &cli.command {
        Command::Plan(args) => commands::plan::execute(args, &store).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => commands::run::execute(args, &store, &reporter),
        Command::Report(args) => {
            commands::report::execute(args, &store, &cli.report_dir, &reporter)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Slurm(args) => {
            commands::slurm::execute(args, &store, &reporter).map(|()| ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            commands::status::execute(args, &store).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            commands::serve::execute(args, &cli.runs_dir, &reporter).map(|()| ExitCode::SUCCESS)
        }
        Command::Runs(args) => {
            commands::runs::execute(args, &store, &reporter).map(|()| ExitCode::SUCCESS)
        }
        Command::Gc(args) => {
            commands::gc::execute(args, &store, &reporter).map(|()| ExitCode::SUCCESS)
        }
        Command::Export(args) => {
            commands::export::execute(args, &store, &reporter).map(|()| ExitCode::SUCCESS)
        }
        Command::Info(args) => commands::info::execute(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => commands::bench::execute(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error
                .downcast_ref::<vaelab::experiment::spec::SpecError>()
                .is_some()
                || error.downcast_ref::<commands::UsageError>().is_some()
            {
                ExitCode::from(commands::EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
