//! Finds thread-local values that leak on pooled threads and reports each
//! one through `tracing`, deterministically, while it happens, with enough
//! detail to fix it from the log line alone.
//!
//! JVM detectors depend on garbage collection: Tomcat checks only when a web
//! application stops and reports key and value types only; Netty samples and
//! waits for GC. With [`tl_core`], a key's death and a task's end are exact
//! events, so every leak can be reported as it happens.
//!
//! # What it finds
//! - **Stranded** values: a `ThreadLocal` was dropped, but a live thread still
//!   holds its value past the grace period. A busy thread drops such a value
//!   at its next bind, unbind, scope or task start; an idle pooled thread
//!   never does.
//!   Found by scans of the [registry](tl_core::registry), reported once per
//!   value.
//! - **Unreleased** values: a task-scoped value left bound on its thread
//!   when the work that bound it ended, so the next work on that thread can
//!   read it (a memory leak and a data leak between requests). Per-thread
//!   caches (`ThreadLocal::per_thread`) are never reported. Each bind is
//!   reported once, by the first check that sees it; its event's `found_by`
//!   field says which (see [`Detection`]).
//! - **Growth**: a thread holding more values or bytes than a configured
//!   threshold ([`AuditorBuilder::max_entries_per_thread`],
//!   [`AuditorBuilder::max_bytes_per_thread`]), reported once per crossing.
//!
//! ## What is found, and when
//! A thread is *inside a task* while a `#[thread_local_scoped]` handler, a
//! [`task`]/[`wrap`] closure or an [`AuditScope`](testing::AuditScope)
//! closure runs on it. No other boundary is needed: installing the auditor
//! is enough for plain std, rayon and tokio pools.
//!
//! | Kind (`found_by`) | Triggered by | Reported | Modes |
//! |---|---|---|---|
//! | `unreleased` (`task_end`) | a task ends with a value it bound still bound | at the task's end, on its thread | `full`, `deny`; one task end in N per thread in `sampled` |
//! | `unreleased` (`overwrite`) | a `set` in a task replaces a value bound before the task began | at that `set` | all but `off` |
//! | `unreleased` (`park`) | a pool worker goes idle with a value bound: tokio's `on_thread_park` ([`tokio::instrument`]), or [`worker_idle`] in your own pool | when it parks | all but `off` |
//! | `unreleased` (`idle`) | a thread running no task has held a value longer than [`AuditorBuilder::idle_after`] (default 60 s) | at the next scan (every [`AuditorBuilder::interval`]) | all but `off` |
//! | `unreleased` (`worker_stop`) | a pool thread stops with a value bound since it started ([`rayon::instrument`], [`tokio::instrument`]) | when it stops | all but `off` |
//! | `unreleased` (`gate`) | a thread running no task still holds a value when the audit ends | at [`Auditor::finish`], [`Auditor::shutdown`] and the end of an [`AuditScope`](testing::AuditScope) (there: bound since the scope began) | all but `off` |
//! | `stranded` | a key died while another thread holds its value, past [`AuditorBuilder::grace_period`] | at the next scan | all but `off` |
//! | `growth` | a thread holds more values or bytes than a threshold | at the next scan | all but `off`, with a threshold set |
//!
//! Values held by a thread that is inside a task when a scan or the gate
//! runs are counted in summaries, never reported as idle, however old: a
//! long task may legitimately hold its value throughout. rayon has no idle
//! hook, so plain rayon pools rely on overwrites, scans and the gate.

//! # Quick start
//! ```
//! use tl_audit::Auditor;
//!
//! // Once, at startup, after the tracing subscriber is set up:
//! let auditor = Auditor::builder().install().expect("audit configuration");
//! // ... serve ...
//! // At shutdown: a final scan, a summary, and an exit code for `main`.
//! let report = auditor.finish().unwrap();
//! println!("{report}");
//! # assert!(report.is_clean());
//! ```
//!
//! In tests, [`assert_clean`] runs a closure under a deny-mode scope and
//! panics listing every leak; [`FindingsLayer`] collects finding events for
//! assertions. For services, `tl-audit check FILE` reads the JSON logs and
//! fails CI on findings (see [`check`] and [the CLI](#the-cli)).
//!
//! # Modes
//! See [`Mode`]: `off` (no cost), `sampled` (default: one task end in N
//! audited per thread), `full`, and `deny` (every finding is an error: test
//! scopes fail, and [`Report::exit_status`] is 1). The `TL_AUDIT`
//! environment variable (`off|sampled|full|deny`) overrides the builder's
//! mode, so CI can make a service strict without a rebuild. An invalid value
//! is an error from [`AuditorBuilder::install`] (not a silent fallback: a
//! typo must not weaken CI); an empty value counts as unset.
//!
//! # Events
//! One event per finding: target `tl_audit`, level WARN (ERROR in deny
//! mode), a message starting with `THREAD-LOCAL LEAK:` ([`LEAK_PREFIX`])
//! that says what to do, and these fields, whose names are stable. A field
//! is absent where it does not apply.
//!
//! | Field | Type | Kinds | Meaning |
//! |---|---|---|---|
//! | `kind` | string | all | `stranded`, `unreleased` or `growth` |
//! | `thread.name` | string | all | The thread's name, `<unnamed>` if none |
//! | `thread.id` | u64 | all | tl-core's thread number (unique, never reused) |
//! | `key` | string | all | The key's name, or `ThreadLocal<type>@file:line:col`; for growth, the key with the largest value |
//! | `key.id` | u64 | all | tl-core's key id |
//! | `value_type` | string | all | `type_name` of the value |
//! | `policy` | string | all | `task-scoped` or `per-thread` |
//! | `bytes` | u64 | all | Bytes retained by the value (growth: by all the thread's values) |
//! | `age_ms` | u64 | all | How long the value had been bound (for `idle`, how long the idle thread has held it) (coarse: may overstate the age by up to the auditor's interval; with a manual auditor, by up to the time since the last scan) |
//! | `dead_ms` | u64 | stranded | How long ago the key died |
//! | `declared_at` | string | all | Where the `ThreadLocal` is declared, `file:line:col` |
//! | `set_site` | string | all | Where the value was bound, `file:line:col` |
//! | `task` | string | unreleased, stranded; if known | The task the value was bound in (the innermost, for nested tasks); for a worker stop with no task known, the pool (`rayon`, `tokio`) |
//! | `task_site` | string | unreleased, stranded; if known | Where that task was entered (its handler, or the [`wrap`] call) |
//! | `found_by` | string | unreleased | How it was found: `task_end`, `overwrite`, `park`, `idle`, `worker_stop` or `gate` ([`Detection`]) |
//! | `by_initializer` | bool | unreleased | Present (true) if the key's initializer bound the value on a read at `set_site` |
//! | `overwritten_by`, `overwritten_by_site` | string | unreleased (`overwrite`) | The task whose `set` replaced the value, and where it was entered |
//! | `panicking` | bool | unreleased | Present (true) if the task ended by a panic |
//! | `worker_stop` | bool | unreleased | Present (true) if found when a pool thread stopped |
//! | `entries` | u64 | growth | Values bound on the thread |
//! | `key_bytes` | u64 | growth | Bytes of the largest value |
//! | `max_entries`, `max_bytes` | u64 | growth | The thresholds in force |
//! | `value` | string | unreleased | The value's `Debug` form, only if its key opted in with `reveal_in_reports()` |
//! | `suppressed` | u64 | all | Events of the same kind and key (for growth: the same thread) withheld by the rate limiter since the last one |
//! | `mode` | string | all | The auditor's mode |
//!
//! Values are never shown otherwise: thread-locals hold user ids, tokens and
//! connections. Summaries ([`Auditor::summary`], and at shutdown) are INFO
//! events with a `summary` field (`total`, `key` or `thread`) and no `kind`;
//! the `total` event of the summary at shutdown also has `shutdown = true`,
//! and its `findings` and `suppressed` fields are the auditor's final counts
//! (which [`check`] reports next to the finding events it read).
//!
//! Events go to the subscriber that was the default on the installing thread
//! when the auditor was installed, from every thread (so a test's
//! `with_default` subscriber sees findings made on pool threads); if there
//! was none, to the default wherever each event is emitted. tl-audit never
//! prints on its own.
//!
//! # Metrics
//! With the `metrics` feature, the auditor also publishes these through the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter works
//! (Prometheus, OpenTelemetry, StatsD); install the exporter's recorder
//! before the auditor. Gauges are set at every scan (every
//! [`AuditorBuilder::interval`]).
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `tl_audit_findings_total` | counter | `kind`, `key` | Findings made, rate-limited ones included |
//! | `tl_audit_held_values` | gauge | `key` | Values of live keys bound on live threads |
//! | `tl_audit_held_bytes` | gauge | `key` | Bytes those values retain |
//! | `tl_audit_stranded_values` | gauge | | Values still held for dead keys (past the grace period or not) |
//! | `tl_audit_stranded_bytes` | gauge | | Bytes those values retain |
//! | `tl_audit_threads` | gauge | | Registered live threads |
//! | `tl_audit_scan_duration_seconds` | histogram | | How long each scan took |
//! | `tl_audit_finding_callback_panics_total` | counter | | Panics caught in [`AuditorBuilder::on_finding`]'s callback |
//!
//! `key` is the key's report name (its name, or `ThreadLocal<type>@site`);
//! past [`AuditorBuilder::metrics_max_keys`] distinct names (default 50),
//! further keys are summed under `key="other"`, so the label's cardinality
//! is bounded. A PromQL alert on a leak that persists:
//! `max_over_time(tl_audit_stranded_bytes[5m]) > 0` held `for: 5m`, or
//! `increase(tl_audit_findings_total{kind="unreleased"}[10m]) > 0`.
//!
//! # The CLI
//! `tl-audit check FILE` reads the JSON lines a service wrote with
//! `tracing-subscriber`'s JSON formatter, prints the findings as a table,
//! and exits 0 (clean), 1 (findings) or 2 (unreadable input). It and its
//! log reader, [`check`], sit behind the `cli` feature, so that a service
//! embedding the auditor compiles no JSON parser:
//!
//! ```sh
//! cargo install tl-audit --features cli                    # then: tl-audit check run.jsonl
//! cargo run -p tl-audit --features cli -- check run.jsonl  # from a clone of the workspace
//! ```
//!
//! # Features
//! None is on by default.
//!
//! | Feature | Adds |
//! |---|---|
//! | `cli` | [`check`] and the `tl-audit` binary (`tl-audit check FILE`); pulls in `serde_json` |
//! | `rayon` | [`rayon::instrument`] (start/exit handlers), [`rayon::spawn`] |
//! | `tokio` | [`tokio::instrument`] (`on_thread_start`/`on_thread_stop`/`on_thread_park`), [`tokio::spawn_blocking`] |
//! | `metrics` | The metrics above, and [`AuditorBuilder::metrics_max_keys`] |

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Layers, bottom up: a module uses only modules listed above it (checked
// by scripts/check-layers in CI).
// - error: configuration and life-cycle errors
// - detection: how an unreleased value was found
// - finding: one leak, its kind, and counts by kind
// - message: the sentence of each finding
// - mode: audit modes and `TL_AUDIT`
// - reported: what was already reported (binds, stranded values, growth)
// - rate_limit: which finding events are emitted, per kind and key
// - tally: findings counted in total, per thread and per key
// - summary: per-thread, per-key summaries
// - state: the auditor's memory, composing the three above under one lock
// - config: the builder's settings, validated
// - emit: findings and summaries as `tracing` events
// - scan: from registry snapshots to stranded, idle-held and growth findings
// - metrics: the `metrics` facade's figures (feature `metrics`)
// - shared: what the handle, its thread and the hooks share; every report path
// - global: the process's auditor slot and tl-core's hooks
// - report: the final report and exit code
// - auditor: the handle, its life cycle and the final gate
// - record: finding events read back (for tests and the CLI)
// - layer: `FindingsLayer`
// - check: the `tl-audit check` log reader
// - task: task boundaries and pool worker hooks
// - rayon: rayon integration
// - tokio: tokio integration
// - testing: `AuditScope`, `assert_clean`, `serial`

mod auditor;
mod config;
mod detection;
mod emit;
mod error;
mod finding;
mod global;
mod layer;
mod message;
#[cfg(feature = "metrics")]
mod metrics;
mod mode;
mod rate_limit;
mod record;
mod report;
mod reported;
mod scan;
mod shared;
mod state;
mod summary;
mod tally;
mod task;

#[cfg(feature = "cli")]
pub mod check;
pub mod testing;

#[cfg(feature = "rayon")]
pub mod rayon;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use auditor::Auditor;
pub use config::{AuditorBuilder, MAX_DURATION, MIN_INTERVAL};
pub use detection::Detection;
pub use emit::{SUMMARY_PREFIX, TARGET};
pub use error::{AuditError, ConfigError};
pub use finding::{Counts, Finding, FindingKind, LEAK_PREFIX, UnknownKind};
pub use layer::FindingsLayer;
pub use mode::Mode;
pub use record::{FieldValue, RecordedFinding};
pub use report::Report;
pub use scan::ScanStats;
pub use shared::ScanReport;
pub use summary::{KeySummary, Summary, ThreadSummary};
pub use task::{task, worker_idle, worker_started, worker_stopping, wrap};
pub use testing::assert_clean;

/// The Rust snippets of the repository's `MIGRATING.md`, compiled and run
/// as doctests so that the guide keeps matching the API.
#[cfg(doctest)]
#[doc = include_str!("../../MIGRATING.md")]
pub struct MigratingGuide;
