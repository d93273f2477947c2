//! [`render_table`]: finding events as a plain-text table for a terminal or
//! a CI log, safe to print whatever the log holds.

use std::collections::BTreeMap;

use super::outcome::LoggedFinding;

/// Renders finding events as a plain-text table, then their count by kind
/// (of events logged: see [`CheckOutcome::totals`](super::CheckOutcome::totals) for all findings). Control
/// characters in the log are shown as `?`, so a hostile log cannot drive
/// the terminal.
pub fn render_table(findings: &[LoggedFinding]) -> String {
    const HEADERS: [&str; 9] = [
        "LINE", "KIND", "THREAD", "KEY", "TYPE", "BYTES", "AGE", "SET AT", "TASK",
    ];
    let rows: Vec<[String; 9]> = findings
        .iter()
        .map(|LoggedFinding { line, finding: f }| {
            let thread = match (f.thread_name(), f.thread_id()) {
                (Some(name), Some(id)) => format!("{name} (#{id})"),
                (Some(name), None) => name.to_owned(),
                (None, Some(id)) => format!("#{id}"),
                (None, None) => "-".to_owned(),
            };
            let cell = |name: &str| {
                f.field(name)
                    .map_or_else(|| "-".to_owned(), ToString::to_string)
            };
            [
                line.to_string(),
                f.kind_name.clone(),
                thread,
                cell("key"),
                cell("value_type"),
                cell("bytes"),
                f.age_ms()
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms")),
                cell("set_site"),
                cell("task"),
            ]
            .map(|c| sanitize(&c))
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[String]| {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&HEADERS.map(str::to_owned));
    for row in &rows {
        push_row(row);
    }
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *by_kind.entry(f.finding.kind_name.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by_kind
        .iter()
        .map(|(k, n)| format!("{n} {}", sanitize(k)))
        .collect();
    out.push_str(&format!(
        "{} thread-local leak finding event(s) logged: {}\n",
        findings.len(),
        counts.join(", ")
    ));
    out
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
