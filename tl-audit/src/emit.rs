//! Turns findings and summaries into `tracing` events with stable field
//! names (the table is in the crate docs). The only place that emits.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing::Dispatch;

use crate::finding::Finding;
use crate::mode::Mode;
use crate::summary::{KeySummary, Summary, ThreadSummary};

/// The target of every event this crate emits.
pub const TARGET: &str = "tl_audit";

/// Runs `f` with `dispatch` as the default subscriber, if given. A
/// subscriber that panics loses the event but cannot unwind into the
/// auditor: emission happens in `TaskScope` drops, pool exit handlers and
/// the auditor's own `Drop`, where unwinding could abort the process.
pub(crate) fn with_dispatch(dispatch: Option<&Dispatch>, f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(move || match dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, f),
        None => f(),
    }));
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn u(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

macro_rules! finding_event {
    ($level:expr, $f:ident, $mode:ident, $suppressed:ident) => {
        tracing::event!(
            target: "tl_audit",
            $level,
            kind = $f.kind.as_str(),
            thread.name = $f.thread.display_name(),
            thread.id = $f.thread.id,
            key = $f.key.map(|k| k.display_name()),
            key.id = $f.key.map(|k| k.id),
            value_type = $f.key.map(|k| k.type_name),
            policy = $f.key.map(|k| k.policy.as_str()),
            bytes = u($f.bytes),
            age_ms = $f.age.map(ms),
            dead_ms = $f.dead_for.map(ms),
            declared_at = $f.key.map(|k| display(k.declared_at)),
            set_site = $f.set_site.map(display),
            task = $f.task,
            task_site = $f.task_site.map(display),
            panicking = $f.panicking.then_some(true),
            worker_stop = $f.at_worker_stop.then_some(true),
            found_by = ($f.kind == crate::finding::FindingKind::Unreleased)
                .then(|| $f.found_by.as_str()),
            by_initializer = $f.by_initializer.then_some(true),
            overwritten_by = $f.overwritten_by.map(|t| t.name),
            overwritten_by_site = $f.overwritten_by.map(|t| display(t.location)),
            entries = $f.entries.map(u),
            key_bytes = $f.key_bytes.map(u),
            max_entries = $f.max_entries.map(u),
            max_bytes = $f.max_bytes.map(u),
            value = $f.value.as_deref(),
            suppressed = ($suppressed > 0).then_some($suppressed),
            mode = $mode.as_str(),
            "{}",
            $f
        )
    };
}

/// Emits one finding: WARN, or ERROR in deny mode. `suppressed` is the
/// number of events the rate limiter withheld for the same kind and key
/// (for growth, the same thread) since the last one emitted.
pub(crate) fn finding(dispatch: Option<&Dispatch>, mode: Mode, f: &Finding, suppressed: u64) {
    with_dispatch(dispatch, || {
        if mode == Mode::Deny {
            finding_event!(tracing::Level::ERROR, f, mode, suppressed);
        } else {
            finding_event!(tracing::Level::WARN, f, mode, suppressed);
        }
    });
}

/// The fixed start of summary messages.
pub const SUMMARY_PREFIX: &str = "THREAD-LOCAL AUDIT SUMMARY:";

/// Emits a summary at INFO: one total event, then one per key and one per
/// thread that has findings or stranded values. Summary events carry a
/// `summary` field (`total`, `key` or `thread`) and no `kind`, so finding
/// collectors skip them. The total event of the summary an auditor emits when
/// it shuts down (`at_shutdown`) also has `shutdown = true`: its counts are
/// the auditor's final ones, which `tl-audit check` looks for.
pub(crate) fn summary(dispatch: Option<&Dispatch>, mode: Mode, s: &Summary, at_shutdown: bool) {
    with_dispatch(dispatch, || {
        let c = s.findings;
        tracing::event!(
            target: "tl_audit",
            tracing::Level::INFO,
            summary = "total",
            shutdown = at_shutdown.then_some(true),
            mode = mode.as_str(),
            findings = c.total(),
            stranded = c.stranded,
            unreleased = c.unreleased,
            growth = c.growth,
            suppressed = s.suppressed,
            threads = u(s.holding_threads()),
            bound = u(s.bound()),
            bytes = u(s.bytes()),
            stale = u(s.stale()),
            "{SUMMARY_PREFIX} {} finding(s) ({} stranded, {} unreleased, {} growth); {} thread(s) hold {} value(s) retaining {} bytes, {} of them for dead keys",
            c.total(),
            c.stranded,
            c.unreleased,
            c.growth,
            s.holding_threads(),
            s.bound(),
            s.bytes(),
            s.stale()
        );
        for k in s
            .keys
            .iter()
            .filter(|k| k.findings.total() > 0 || k.stale_holders > 0)
        {
            key_summary(k);
        }
        for t in s
            .threads
            .iter()
            .filter(|t| t.findings.total() > 0 || t.stale > 0)
        {
            thread_summary(t);
        }
    });
}

fn key_summary(k: &KeySummary) {
    tracing::event!(
        target: "tl_audit",
        tracing::Level::INFO,
        summary = "key",
        key = k.key.display_name(),
        key.id = k.key.id,
        value_type = k.key.type_name,
        declared_at = display(k.key.declared_at),
        alive = k.key.alive,
        holders = u(k.holders),
        stale_holders = u(k.stale_holders),
        bytes = u(k.bytes),
        findings = k.findings.total(),
        stranded = k.findings.stranded,
        unreleased = k.findings.unreleased,
        growth = k.findings.growth,
        "{SUMMARY_PREFIX} key {}: {} finding(s); held by {} thread(s) ({} for a dead key), {} bytes",
        k.key.display_name(),
        k.findings.total(),
        k.holders,
        k.stale_holders,
        k.bytes
    );
}

fn thread_summary(t: &ThreadSummary) {
    tracing::event!(
        target: "tl_audit",
        tracing::Level::INFO,
        summary = "thread",
        thread.name = t.thread.display_name(),
        thread.id = t.thread.id,
        alive = t.alive,
        bound = u(t.bound),
        bytes = u(t.bytes),
        stale = u(t.stale),
        findings = t.findings.total(),
        stranded = t.findings.stranded,
        unreleased = t.findings.unreleased,
        growth = t.findings.growth,
        "{SUMMARY_PREFIX} thread \"{}\" (#{}): {} finding(s); holds {} value(s), {} bytes, {} for dead keys",
        t.thread.display_name(),
        t.thread.id,
        t.findings.total(),
        t.bound,
        t.bytes,
        t.stale
    );
}
