//! The `vaelab` binary: parse arguments, dispatch to a subcommand, map errors to exit codes.
mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use vaelab::progress::Console;
use vaelab::store::RunStore;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let reporter = Console::new(cli.quiet);
    let store = RunStore::new(&cli.runs_dir);
    let result = match &cli.command {
        Command::Run(args) => commands::run::execute(args, &store, &reporter),
        Command::Info(args) => commands::info::execute(args),
        Command::Bench(args) => commands::bench::execute(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<vaelab::spec::SpecError>().is_some() {
                ExitCode::from(commands::EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
