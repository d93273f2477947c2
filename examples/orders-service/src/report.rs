//! [`RunSummary`]: what one variant's run showed, and the side-by-side
//! table of several runs printed at the end.

use core::fmt::Write as _;
use std::time::Duration;

use tl_audit::{Counts, Mode};

use crate::load::OutcomeCounts;
use crate::service::Variant;

/// What one run of one variant showed.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The handler variant.
    pub variant: Variant,
    /// The auditor's effective mode.
    pub mode: Mode,
    /// Orders by outcome.
    pub outcomes: OutcomeCounts,
    /// Median order latency, client side.
    pub p50: Option<Duration>,
    /// 99th percentile order latency, client side.
    pub p99: Option<Duration>,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Connections checked out after the load, with no request in flight:
    /// held by thread-locals on idle pooled threads.
    pub stuck_connections: u32,
    /// Requests without a user that were placed as an earlier request's user.
    pub ran_as_previous_user: u64,
    /// Bytes held by thread-locals after the load, from `GET /metrics`
    /// (`tl_audit_held_bytes`, summed over keys).
    pub held_bytes: f64,
    /// Bytes held for dead keys after the reload, from `GET /metrics`
    /// (`tl_audit_stranded_bytes`).
    pub stranded_bytes: f64,
    /// The auditor's findings by kind (withheld events included).
    pub findings: Counts,
    /// The auditor's exit status: 1 in deny mode with findings, else 0.
    pub exit_status: u8,
}

/// One row: a label and how to show a run's value.
struct Row {
    label: &'static str,
    value: fn(&RunSummary) -> String,
    /// Shown only if some run's value is not "0" (rows that are noise when
    /// nothing happened).
    only_if_nonzero: bool,
}

const fn row(label: &'static str, value: fn(&RunSummary) -> String) -> Row {
    Row {
        label,
        value,
        only_if_nonzero: false,
    }
}

const ROWS: [Row; 17] = [
    row("requests", |r| r.outcomes.total().to_string()),
    row("  ok (201 created)", |r| r.outcomes.placed.to_string()),
    row("  failed", |r| r.outcomes.failed().to_string()),
    row("    out of stock (409)", |r| {
        r.outcomes.out_of_stock.to_string()
    }),
    row("    unauthenticated (401)", |r| {
        r.outcomes.unauthenticated.to_string()
    }),
    row("    pool exhausted (503)", |r| {
        r.outcomes.pool_exhausted.to_string()
    }),
    Row {
        label: "    other",
        value: |r| r.outcomes.other.to_string(),
        only_if_nonzero: true,
    },
    row("latency p50", |r| latency(r.p50)),
    row("latency p99", |r| latency(r.p99)),
    row("pool connections stuck on threads", |r| {
        format!("{} of {}", r.stuck_connections, r.pool_size)
    }),
    row("no-user orders placed as a previous user", |r| {
        r.ran_as_previous_user.to_string()
    }),
    row("bytes held by thread-locals after the load", |r| {
        format!("{:.0}", r.held_bytes)
    }),
    row("bytes held for dead keys after the reload", |r| {
        format!("{:.0}", r.stranded_bytes)
    }),
    row("findings: unreleased", |r| {
        r.findings.unreleased.to_string()
    }),
    row("findings: stranded", |r| r.findings.stranded.to_string()),
    Row {
        label: "findings: growth",
        value: |r| r.findings.growth.to_string(),
        only_if_nonzero: true,
    },
    row("audit mode (exit status)", |r| {
        format!("{} ({})", r.mode, r.exit_status)
    }),
];

/// `"0.42 ms"`, `"51.3 ms"`, `"1.20 s"`, or `"-"` without samples.
fn latency(d: Option<Duration>) -> String {
    match d {
        None => "-".to_owned(),
        Some(d) if d < Duration::from_millis(10) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) if d < Duration::from_secs(1) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

/// The runs side by side, one column each, headed by the variant: labels
/// left-aligned, values right-aligned, no trailing spaces.
pub fn render_table(runs: &[RunSummary]) -> String {
    const GAP: usize = 3;
    let rows: Vec<(&str, Vec<String>)> = ROWS
        .iter()
        .filter_map(|row| {
            let values: Vec<String> = runs.iter().map(row.value).collect();
            let shown = !row.only_if_nonzero || values.iter().any(|v| v != "0");
            shown.then_some((row.label, values))
        })
        .collect();
    let label_width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let widths: Vec<usize> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            rows.iter()
                .map(|(_, values)| values[i].len())
                .chain([run.variant.as_str().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |label: &str, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = format!("{label:<label_width$}");
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, "{:>w$}", cell, w = width + GAP);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line("", &mut runs.iter().map(|r| r.variant.as_str()));
    for (label, values) in &rows {
        line(label, &mut values.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(variant: Variant) -> RunSummary {
        let buggy = variant == Variant::Buggy;
        RunSummary {
            variant,
            mode: Mode::Full,
            outcomes: OutcomeCounts {
                placed: if buggy { 40 } else { 280 },
                out_of_stock: if buggy { 9 } else { 80 },
                unauthenticated: if buggy { 3 } else { 40 },
                pool_exhausted: if buggy { 348 } else { 0 },
                other: 0,
            },
            p50: Some(if buggy {
                Duration::from_micros(51_340)
            } else {
                Duration::from_micros(870)
            }),
            p99: Some(Duration::from_millis(if buggy { 1_200 } else { 3 })),
            pool_size: 4,
            stuck_connections: if buggy { 4 } else { 0 },
            ran_as_previous_user: if buggy { 5 } else { 0 },
            held_bytes: if buggy { 928.0 } else { 0.0 },
            stranded_bytes: if buggy { 928.0 } else { 0.0 },
            findings: {
                let mut counts = Counts::default();
                if buggy {
                    counts.stranded = 8;
                    counts.unreleased = 371;
                }
                counts
            },
            exit_status: 0,
        }
    }

    #[test]
    fn side_by_side_table() {
        let table = render_table(&[run(Variant::Buggy), run(Variant::Fixed)]);
        let expected = [
            "                                                buggy      fixed",
            "requests                                          400        400",
            "  ok (201 created)                                 40        280",
            "  failed                                          360        120",
            "    out of stock (409)                              9         80",
            "    unauthenticated (401)                           3         40",
            "    pool exhausted (503)                          348          0",
            "latency p50                                   51.3 ms    0.87 ms",
            "latency p99                                    1.20 s    3.00 ms",
            "pool connections stuck on threads              4 of 4     0 of 4",
            "no-user orders placed as a previous user            5          0",
            "bytes held by thread-locals after the load        928          0",
            "bytes held for dead keys after the reload         928          0",
            "findings: unreleased                              371          0",
            "findings: stranded                                  8          0",
            "audit mode (exit status)                     full (0)   full (0)",
        ]
        .map(|line| format!("{line}\n"))
        .concat();
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn rows_of_zeros_that_are_noise_are_hidden_unless_some_run_has_one() {
        let mut odd = run(Variant::Fixed);
        odd.outcomes.other = 2;
        odd.findings.growth = 1;
        let table = render_table(&[odd]);
        assert!(table.contains("\n    other "), "{table}");
        assert!(table.contains("\nfindings: growth "), "{table}");
    }

    #[test]
    fn one_column_and_no_samples() {
        let mut lone = run(Variant::Fixed);
        lone.p50 = None;
        let table = render_table(&[lone]);
        let label_width = "bytes held by thread-locals after the load".len();
        let value_column = label_width + 3 + "full (0)".len();
        assert!(
            table.starts_with(&format!("{:>value_column$}\n", "fixed")),
            "{table}"
        );
        assert!(
            table.contains(&format!("\n{:<label_width$}{:>11}\n", "latency p50", "-")),
            "{table}"
        );
        assert!(table.lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn latency_units() {
        assert_eq!(latency(Some(Duration::from_micros(420))), "0.42 ms");
        assert_eq!(latency(Some(Duration::from_micros(51_340))), "51.3 ms");
        assert_eq!(latency(Some(Duration::from_millis(1_204))), "1.20 s");
        assert_eq!(latency(None), "-");
    }
}
