//! The `vaelab` binary: parse arguments, dispatch to a subcommand, map errors to exit
//! codes. It links no libtorch: `run`, `bench` and `info` are handed to `vaelab-torch`
//! (`commands::torch`), so every other command starts at once.
mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use vaelab_core::progress::Console;
use vaelab_core::store::RunStore;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let reporter = Console::new(cli.quiet);
    let store = RunStore::new(&cli.runs_dir);
    let result = match &cli.command {
        Command::Plan(args) => commands::plan::execute(args, &store),
        Command::Report(args) => {
            commands::report::execute(args, &store, &cli.report_dir, &reporter)
        }
        Command::Slurm(args) => commands::slurm::execute(args, &store, &reporter),
        Command::Status(args) => commands::status::execute(args, &store),
        Command::Serve(args) => commands::serve::execute(args, &cli.runs_dir, &reporter),
        Command::Runs(args) => commands::runs::execute(args, &store, &reporter),
        Command::Gc(args) => commands::gc::execute(args, &store, &reporter),
        Command::Export(args) => commands::export::execute(args, &store, &reporter),
        Command::Run(_) | Command::Info(_) | Command::Bench(_) => commands::torch::hand_over(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => commands::shared::report_error(&error),
    }
}
