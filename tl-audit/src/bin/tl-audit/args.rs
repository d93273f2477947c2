//! The command line: what `tl-audit` was asked to do, or why the arguments
//! are wrong (a message for standard error, exit 2).

use std::ffi::OsString;

use tl_audit::check::CheckOptions;

pub const USAGE: &str = "\
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

/// What the arguments ask for.
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Print the version.
    Version,
    /// `tl-audit check`.
    Check {
        /// The log, or `-` for standard input.
        file: OsString,
        options: CheckOptions,
        quiet: bool,
    },
}

/// Parses the arguments (without the program name). Arguments are read in
/// order: the first help flag or mistake decides.
pub fn parse(args: &[OsString]) -> Result<Command, String> {
    let mut args = args.iter();
    let command = args.next().map(|a| a.to_string_lossy());
    match command.as_deref() {
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("-V" | "--version") => return Ok(Command::Version),
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
            Some("-h" | "--help") => return Ok(Command::Help),
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
        file = Some(arg.clone());
    }
    let Some(file) = file else {
        return Err(format!("missing FILE\n\n{USAGE}"));
    };
    Ok(Command::Check {
        file,
        options,
        quiet,
    })
}
