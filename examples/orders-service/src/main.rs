//! `orders-service`: the binary. Parses the arguments, sets up the log, and
//! hands over to [`orders_service::commands`].

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use orders_service::cli::Cli;
use orders_service::commands;
use orders_service::logging::Console;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let console = match Console::install(cli.log_format) {
        Ok(console) => console,
        Err(e) => return fail(&e),
    };
    let status = if cli.serve {
        commands::serve(&cli, &console)
    } else {
        commands::story(&cli, &console)
    };
    match status {
        Ok(status) => ExitCode::from(status),
        Err(e) => fail(&e),
    }
}

/// Reports a run that could not complete: exit status 2, as for bad usage,
/// so that 1 keeps meaning "the auditor found a leak".
fn fail(error: &dyn std::error::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "orders-service: {error}");
    ExitCode::from(2)
}
