//! `tl-audit check FILE`: reads JSON lines written by `tracing-subscriber`'s
//! JSON formatter, prints the thread-local leak findings as a table, and
//! exits 1 if there is any, 0 if none, 2 if the input cannot be read.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::process::ExitCode;

use tl_audit::check::{CheckOptions, check, render_table};

const USAGE: &str = "\
Usage: tl-audit check [--allow-empty] FILE

Reads JSON lines written by tracing-subscriber's JSON formatter (FILE, or -
for standard input), prints the thread-local leak findings of target
tl_audit as a table, and exits with:
  0  no finding
  1  at least one finding
  2  unreadable input (the line is named) or bad usage

Options:
  --allow-empty  accept an input with no event (exit 0)
  -h, --help     print this help
  -V, --version  print the version
";

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
    let mut args = args.iter();
    let command = args.next().map(|a| a.to_string_lossy());
    match command.as_deref() {
        Some("-h" | "--help" | "help") => return Ok(print(USAGE)),
        Some("-V" | "--version") => {
            return Ok(print(&format!("tl-audit {}\n", env!("CARGO_PKG_VERSION"))));
        }
        Some("check") => {}
        Some(other) => return Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => return Err(format!("missing command\n\n{USAGE}")),
    }
    let mut options = CheckOptions::default();
    let mut file = None;
    for arg in args {
        match arg.to_str() {
            Some("--allow-empty") => options = options.allow_empty(true),
            Some("-h" | "--help") => return Ok(print(USAGE)),
            Some(flag) if flag.starts_with("--") => {
                return Err(format!("unknown option {flag:?}\n\n{USAGE}"));
            }
            _ if file.is_some() => return Err(format!("more than one FILE given\n\n{USAGE}")),
            _ => file = Some(arg),
        }
    }
    let Some(file) = file else {
        return Err(format!("missing FILE\n\n{USAGE}"));
    };
    let shown = file.to_string_lossy();
    let outcome = if file == "-" {
        check(io::stdin().lock(), &options)
    } else {
        let opened = File::open(file).map_err(|e| format!("{shown}: cannot open: {e}"))?;
        check(BufReader::new(opened), &options)
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    if outcome.findings.is_empty() {
        print(&format!(
            "{shown}: no thread-local leak findings in {} event(s)\n",
            outcome.events
        ));
    } else {
        print(&render_table(&outcome.findings));
    }
    Ok(outcome.exit_status())
}

/// Writes to standard output; a closed pipe (`| head`) is not an error worth
/// a panic, so write failures are ignored. Returns 0 for convenience.
fn print(text: &str) -> u8 {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    0
}
