//! The reader on hand-written logs: each job of the module, through [`check`].

use tracing::Level;

use super::*;

fn run(input: &[u8]) -> Result<CheckOutcome, CheckError> {
    check(input, &CheckOptions::default())
}

const FINDING: &str = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"ERROR","fields":{"message":"THREAD-LOCAL LEAK: x","kind":"stranded","thread.name":"pool-1","thread.id":3,"key":"CONN","value_type":"alloc::string::String","bytes":24,"age_ms":1500,"set_site":"src/db.rs:10:5"},"target":"tl_audit"}"#;

#[test]
fn reads_findings_and_skips_others() {
    let input = format!(
        "{FINDING}\r\n\n{}\n{}",
        r#"{"level":"INFO","fields":{"message":"THREAD-LOCAL AUDIT SUMMARY: ...","summary":"total"},"target":"tl_audit"}"#,
        r#"{"level":"INFO","fields":{"message":"hi"},"target":"app"}"#
    );
    let outcome = run(input.as_bytes()).unwrap();
    assert_eq!(outcome.lines, 4);
    assert_eq!(outcome.events, 3);
    assert_eq!(outcome.findings.len(), 1);
    let f = &outcome.findings[0].finding;
    assert_eq!(f.level, Level::ERROR);
    assert_eq!(f.kind(), Some(crate::FindingKind::Stranded));
    assert_eq!(f.thread_name(), Some("pool-1"));
    assert_eq!(f.thread_id(), Some(3));
    assert_eq!(f.bytes(), Some(24));
    let table = render_table(&outcome.findings);
    assert!(table.contains("pool-1 (#3)"), "{table}");
    assert!(
        table.contains("1 thread-local leak finding event(s) logged: 1 stranded"),
        "{table}"
    );
    // A summary, but not the one at shutdown: no totals.
    assert_eq!(outcome.totals, None);
}

#[test]
fn flattened_events_are_read() {
    let input = r#"{"level":"WARN","message":"THREAD-LOCAL LEAK: y","kind":"growth","thread.name":"w","entries":5,"target":"tl_audit"}"#;
    let outcome = run(input.as_bytes()).unwrap();
    assert_eq!(outcome.findings[0].finding.u64_field("entries"), Some(5));
}

#[test]
fn bad_input_names_the_line() {
    let truncated = format!("{FINDING}\n{}", &FINDING[..60]);
    let err = run(truncated.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::NotJson {
                line: 2,
                truncated: true,
                ..
            }
        ),
        "{err}"
    );

    let err = run(b"{\"a\":1}\nnot json\n").unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::NotJson {
                line: 2,
                truncated: false,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "line 2, column 2: not JSON: expected ident"
    );

    let err = run(b"[1,2]\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: expected a JSON object (one tracing event), found an array"
    );

    let err = run(b"{}\n\x00\x9f\x92\x96\xff\n").unwrap_err();
    assert!(
        matches!(err, CheckError::NotUtf8 { line: 2, offset: 1 }),
        "{err}"
    );

    let long = format!(
        "{{\"level\":\"INFO\",\"fields\":{{\"message\":\"{}\"}}}}\n",
        "x".repeat(100)
    );
    let err = check(long.as_bytes(), &CheckOptions::default().max_line_bytes(64)).unwrap_err();
    assert!(
        matches!(err, CheckError::LineTooLong { line: 1, limit: 64 }),
        "{err}"
    );
    assert!(
        check(
            long.as_bytes(),
            &CheckOptions::default().max_line_bytes(200)
        )
        .is_ok()
    );
}

#[test]
fn empty_input_is_an_error_unless_allowed() {
    for input in [&b""[..], b"\n\n  \n"] {
        assert!(matches!(run(input), Err(CheckError::Empty)));
        let ok = check(input, &CheckOptions::default().allow_empty(true)).unwrap();
        assert_eq!(ok.exit_status(), 0);
    }
}

#[test]
fn control_characters_are_not_printed() {
    let input = r#"{"level":"WARN","fields":{"message":"m","kind":"unreleased","key":"A\u001b[31mB\nC"},"target":"tl_audit"}"#;
    let outcome = run(input.as_bytes()).unwrap();
    let table = render_table(&outcome.findings);
    assert!(table.contains("A?[31mB?C"), "{table}");
    assert!(!table.contains('\u{1b}'));
}

/// `fmt().json().with_target(false)`: no `target` field, so findings are
/// told by their message's prefix (and their `kind`).
#[test]
fn findings_without_a_target_field_are_read() {
    let finding = r#"{"timestamp":"t","level":"WARN","fields":{"message":"THREAD-LOCAL LEAK: task a left CONN","kind":"unreleased","key":"CONN"}}"#;
    let flattened =
        r#"{"level":"WARN","message":"THREAD-LOCAL LEAK: y","kind":"growth","entries":5}"#;
    // An application's own event with a `kind` field is not a finding.
    let other = r#"{"level":"INFO","fields":{"message":"order placed","kind":"retail"}}"#;
    let input = format!("{finding}\n{flattened}\n{other}\n");
    let outcome = run(input.as_bytes()).unwrap();
    assert_eq!(outcome.events, 3);
    let kinds: Vec<_> = outcome
        .findings
        .iter()
        .map(|f| (f.line, f.finding.kind_name.as_str()))
        .collect();
    assert_eq!(kinds, [(1, "unreleased"), (2, "growth")]);
    assert_eq!(outcome.findings[0].finding.key(), Some("CONN"));
    assert_eq!(outcome.exit_status(), 1);
}

/// Only objects shaped like tracing events count: a JSON file of other
/// objects is not a clean log.
#[test]
fn json_objects_that_are_not_events_are_not_counted() {
    for input in [
        &br#"{"name":"x"}"#[..],
        br#"{"a":1}
{"level":"INFO"}
{"level":"loud","fields":{"message":"m"}}
{"level":"INFO","fields":"m"}"#,
    ] {
        assert!(
            matches!(run(input), Err(CheckError::Empty)),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    let mixed = format!("{{\"name\":\"x\"}}\n{FINDING}\n");
    let outcome = run(mixed.as_bytes()).unwrap();
    assert_eq!((outcome.events, outcome.findings.len()), (1, 1));
}

const SHUTDOWN: &str = r#"{"level":"INFO","fields":{"message":"THREAD-LOCAL AUDIT SUMMARY: 7 finding(s)","summary":"total","shutdown":true,"findings":7,"stranded":1,"unreleased":6,"growth":0,"suppressed":5},"target":"tl_audit"}"#;

#[test]
fn shutdown_summaries_give_the_totals() {
    // Two auditors ran one after the other; a summary taken mid-run
    // (no `shutdown`) does not count.
    let mid_run = SHUTDOWN.replace(r#""shutdown":true,"#, "");
    let second = r#"{"level":"INFO","message":"THREAD-LOCAL AUDIT SUMMARY: 1 finding(s)","summary":"total","shutdown":true,"findings":1,"stranded":0,"unreleased":0,"growth":1,"suppressed":0}"#;
    let input = format!("{FINDING}\n{mid_run}\n{SHUTDOWN}\n{second}\n");
    let outcome = run(input.as_bytes()).unwrap();
    assert_eq!(outcome.findings.len(), 1);
    let totals = outcome.totals.unwrap();
    assert_eq!(totals.summaries, 2);
    assert_eq!(
        (
            totals.findings.stranded,
            totals.findings.unreleased,
            totals.findings.growth
        ),
        (1, 6, 1)
    );
    assert_eq!(totals.suppressed, 5);
    assert_eq!(
        totals.to_string(),
        "2 auditors' shutdown summaries: 8 finding(s) in total (1 stranded, 6 unreleased, 1 growth), 5 event(s) withheld by the rate limiter"
    );

    // Findings counted but none logged (say, filtered out): not clean.
    let outcome = run(SHUTDOWN.as_bytes()).unwrap();
    assert!(outcome.findings.is_empty());
    assert_eq!(outcome.exit_status(), 1);
    assert!(
        outcome
            .totals
            .unwrap()
            .to_string()
            .starts_with("the auditor's shutdown summary: 7 finding(s) in total")
    );

    // Another target's "summary" is not the auditor's.
    let foreign = SHUTDOWN.replace(r#""target":"tl_audit""#, r#""target":"billing""#);
    assert_eq!(run(foreign.as_bytes()).unwrap().totals, None);
}

/// A summary whose counts cannot be read or do not add up fails the
/// check (exit 2), rather than counting as 0 findings.
#[test]
fn bad_shutdown_summaries_are_errors() {
    for (from, to, field) in [
        (r#""stranded":1"#, r#""stranded":"1""#, "stranded"),
        (r#""unreleased":6"#, r#""unreleased":-6"#, "unreleased"),
        (r#""growth":0,"#, "", "growth"),
        (r#""findings":7"#, r#""findings":2"#, "findings"),
        (r#""suppressed":5"#, r#""suppressed":5.5"#, "suppressed"),
    ] {
        let input = format!("{FINDING}\n{}\n", SHUTDOWN.replace(from, to));
        match run(input.as_bytes()) {
            Err(CheckError::BadSummary { line: 2, field: f }) => assert_eq!(f, field),
            other => panic!("{from} -> {to}: {other:?}"),
        }
    }
}

/// Counts near `u64::MAX` saturate: no overflow panic, no wrap to 0.
#[test]
fn huge_summary_counts_saturate() {
    let max = u64::MAX;
    let huge = SHUTDOWN
        .replace(r#""stranded":1"#, &format!(r#""stranded":{max}"#))
        .replace(r#""unreleased":6"#, r#""unreleased":0"#)
        .replace(r#""findings":7"#, &format!(r#""findings":{max}"#));
    let input = format!("{huge}\n{huge}\n");
    let outcome = run(input.as_bytes()).unwrap();
    let totals = outcome.totals.unwrap();
    assert_eq!(totals.findings.stranded, max);
    assert_eq!(totals.findings.total(), max);
    assert_eq!(outcome.exit_status(), 1);
}

#[test]
fn bom_is_skipped() {
    let input = format!("\u{feff}{FINDING}\n");
    assert_eq!(run(input.as_bytes()).unwrap().findings.len(), 1);
}
