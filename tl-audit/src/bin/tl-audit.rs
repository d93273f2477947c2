//! `tl-audit check FILE`: reads JSON lines written by `tracing-subscriber`'s
//! JSON formatter, prints the thread-local leak findings as a table, and
//! exits 1 if there is any, 0 if none, 2 if the input cannot be read.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::process::ExitCode;

use tl_audit::check::{CheckOptions, check, render_table};

const USAGE: &str = "\
Usage: tl-audit check [-q] [--allow-empty] [--] FILE

Reads JSON lines written by tracing-subscriber's JSON formatter (FILE, or -
for standard input), prints the thread-local leak finding events of target
tl_audit as a table with their count, and the auditor's final counts from
its shutdown summary (which include findings whose events the rate limiter
withheld; a note on standard error says when the log has no such summary).
Exits with:
  0  no finding
  1  at least one finding (logged, or counted by a shutdown summary)
  2  unreadable input (the line is named), no event at all, or bad usage

Options:
  --allow-empty  accept an input with no event (exit 0)
  -q, --quiet    print nothing but errors: the exit status tells
  --             end of options: the next argument is FILE even if it
                 starts with -
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
    let mut options_ended = false;
    let mut quiet = false;
    for arg in args {
        match arg.to_str() {
            _ if options_ended => {}
            Some("--") => {
                options_ended = true;
                continue;
            }
            Some("--allow-empty") => {
                options = options.allow_empty(true);
                continue;
            }
            Some("-q" | "--quiet") => {
                quiet = true;
                continue;
            }
            Some("-h" | "--help") => return Ok(print(USAGE)),
            // `-` alone is standard input; anything else with a leading dash
            // is an option, known or not (a file named like one goes after `--`).
            // (Bytes, so that a name that is not UTF-8 is told the same way.)
            _ if arg != "-" && arg.as_encoded_bytes().starts_with(b"-") => {
                return Err(format!(
                    "unknown option {arg:?} (for a FILE named so, put `--` before it)\n\n{USAGE}"
                ));
            }
            _ => {}
        }
        if file.is_some() {
            return Err(format!("more than one FILE given\n\n{USAGE}"));
        }
        file = Some(arg);
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
