//! Command-line arguments. Bad input is clap's to report (exit status 2),
//! never a panic.

use clap::{Parser, ValueEnum};
use tl_audit::Mode;

use crate::logging::LogFormat;
use crate::service::Variant;

/// Places orders against an HTTP service whose handlers bind a pooled
/// database connection and the current user to thread-locals: first the
/// buggy handler, which leaks both on pooled threads, then the fixed one.
/// tl-audit's warnings explain each leak as it happens; a side-by-side
/// summary closes the run.
#[derive(Clone, Debug, Parser)]
#[command(name = "orders-service", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Run only the buggy variant (the error path forgets to unbind).
    #[arg(long, conflicts_with = "fixed")]
    pub buggy: bool,

    /// Run only the fixed variant (`#[thread_local_scoped]` unbinds on every path).
    #[arg(long)]
    pub fixed: bool,

    /// Only serve (the fixed variant unless --buggy), for an external client
    /// such as curl or wrk, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,

    /// Port on 127.0.0.1 for --serve; 0 picks a free one.
    #[arg(long, default_value_t = 0, requires = "serve")]
    pub port: u16,

    /// Orders to send per variant.
    #[arg(long, value_name = "N", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub requests: u32,

    /// Orders in flight at once.
    #[arg(long, value_name = "C", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub concurrency: u32,

    /// Audit mode; the TL_AUDIT environment variable overrides it.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AuditMode::Full)]
    pub audit: AuditMode,

    /// Log format on stdout. With json, stdout holds only JSON log lines
    /// (for `tl-audit check`); the progress bar and summary go to stderr.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

const AFTER_HELP: &str = "\
Exit status: 0, or 1 if the audit mode is deny and the auditor found a leak,
or 2 for bad arguments or a run that could not complete.

Examples:
  orders-service                                   # buggy, then fixed, side by side
  orders-service --buggy --log-format json > run.jsonl && tl-audit check run.jsonl
  orders-service --serve --buggy --port 8080       # then: curl -H 'x-user: alice' \\
      -H 'content-type: application/json' -d '{\"product\":\"espresso-beans\",\"quantity\":1}' \\
      http://127.0.0.1:8080/orders";

/// `--audit`'s values: tl-audit's modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditMode {
    /// No auditing, no cost.
    Off,
    /// One task end in 128 audited per thread; leftovers the others miss are reported when the next task replaces them, a thread idles with them, or at shutdown; scans for stranded values.
    Sampled,
    /// Every task end audited; plus the checks of sampled.
    Full,
    /// Like full, and findings make the exit status 1.
    Deny,
}

impl From<AuditMode> for Mode {
    fn from(mode: AuditMode) -> Self {
        match mode {
            AuditMode::Off => Mode::Off,
            AuditMode::Sampled => Mode::Sampled,
            AuditMode::Full => Mode::Full,
            AuditMode::Deny => Mode::Deny,
        }
    }
}

impl Cli {
    /// The variants to run, in order: both unless one was chosen.
    pub fn variants(&self) -> Vec<Variant> {
        match (self.buggy, self.fixed) {
            (true, _) => vec![Variant::Buggy],
            (_, true) => vec![Variant::Fixed],
            _ => vec![Variant::Buggy, Variant::Fixed],
        }
    }

    /// The variant `--serve` runs.
    pub fn served_variant(&self) -> Variant {
        if self.buggy {
            Variant::Buggy
        } else {
            Variant::Fixed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["orders-service"], args].concat())
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_run_both_variants() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.variants(), [Variant::Buggy, Variant::Fixed]);
        assert_eq!((cli.requests, cli.concurrency), (400, 8));
        assert_eq!(cli.audit, AuditMode::Full);
        assert_eq!(cli.log_format, LogFormat::Text);
    }

    #[test]
    fn one_variant() {
        assert_eq!(parse(&["--buggy"]).unwrap().variants(), [Variant::Buggy]);
        assert_eq!(parse(&["--fixed"]).unwrap().variants(), [Variant::Fixed]);
        assert!(parse(&["--buggy", "--fixed"]).is_err());
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        for args in [
            &["--requests", "0"][..],
            &["--requests", "-3"],
            &["--requests", "many"],
            &["--concurrency", "0"],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let error = parse(&["--requests", "0"]).unwrap_err().to_string();
        assert!(
            error.contains("'0'") && error.contains("--requests"),
            "{error}"
        );
    }

    #[test]
    fn modes_and_formats() {
        let cli = parse(&["--audit", "deny", "--log-format", "json"]).unwrap();
        assert_eq!(Mode::from(cli.audit), Mode::Deny);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(parse(&["--audit", "loud"]).is_err());
    }

    #[test]
    fn port_only_with_serve() {
        assert!(parse(&["--port", "8080"]).is_err());
        let cli = parse(&["--serve", "--port", "8080"]).unwrap();
        assert_eq!(cli.served_variant(), Variant::Fixed);
        assert_eq!(
            parse(&["--serve", "--buggy"]).unwrap().served_variant(),
            Variant::Buggy
        );
    }
}
