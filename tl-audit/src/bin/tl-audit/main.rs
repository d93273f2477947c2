//! `tl-audit check FILE`: reads JSON lines written by `tracing-subscriber`'s
//! JSON formatter, prints the thread-local leak findings as a table, and
//! exits 1 if there is any, 0 if none, 2 if the input cannot be read.
//!
//! Built with the `cli` feature: `cargo install tl-audit --features cli`,
//! or `cargo run -p tl-audit --features cli -- check FILE` in the workspace.
//!
//! Layers: `args` (the command line) -> this file (files, the check,
//! printing), over the library's `tl_audit::check`.

mod args;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::process::ExitCode;

use args::{Command, USAGE};
use tl_audit::check::{CheckOptions, check, render_table};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            let _ = writeln!(io::stderr(), "tl-audit: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Err` is a message for standard error (exit 2).
fn run(args: &[OsString]) -> Result<u8, String> {
    match args::parse(args)? {
        Command::Help => Ok(print(USAGE)),
        Command::Version => Ok(print(&format!("tl-audit {}\n", env!("CARGO_PKG_VERSION")))),
        Command::Check {
            file,
            options,
            quiet,
        } => run_check(&file, &options, quiet),
    }
}

/// `tl-audit check`: the exit status, or a message for standard error.
fn run_check(file: &OsString, options: &CheckOptions, quiet: bool) -> Result<u8, String> {
    let shown = file.to_string_lossy();
    let outcome = if file == "-" {
        check(io::stdin().lock(), options)
    } else {
        let opened = File::open(file).map_err(|e| format!("{shown}: cannot open: {e}"))?;
        check(BufReader::new(opened), options)
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    if quiet {
        return Ok(outcome.exit_status());
    }
    let mut out = if outcome.findings.is_empty() {
        format!(
            "{shown}: no thread-local leak finding events in {} event(s)\n",
            outcome.events
        )
    } else {
        render_table(&outcome.findings)
    };
    match outcome.totals {
        Some(totals) => out.push_str(&format!("{totals}\n")),
        None => note(&format!(
            "{shown}: the auditor's shutdown summary is missing (a tl_audit event with summary=\"total\" and shutdown=true): the log may be cut short or filtered, or the auditor never shut down, so findings whose events were withheld or lost are not counted"
        )),
    }
    print(&out);
    Ok(outcome.exit_status())
}

/// Writes a note to standard error (ignoring failures, as [`print`] does).
fn note(text: &str) {
    let _ = writeln!(io::stderr(), "tl-audit: note: {text}");
}

/// Writes to standard output; a closed pipe (`| head`) is not an error worth
/// a panic, so write failures are ignored. Returns 0 for convenience.
fn print(text: &str) -> u8 {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    0
}
