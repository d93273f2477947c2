//! One variant's run, start to finish: install the auditor, start the
//! server, drive the load, reload, let the auditor see the stranded values,
//! stop, and summarize.

use indicatif::ProgressBar;
use tl_audit::Report;

use crate::audit::AuditSettings;
use crate::error::Error;
use crate::load::{LoadGenerator, LoadPlan};
use crate::report::RunSummary;
use crate::server::{Server, ServerConfig};
use crate::service::Variant;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// The server's settings, with the variant.
    pub server: ServerConfig,
    /// The orders to send.
    pub load: LoadPlan,
    /// The auditor's settings.
    pub audit: AuditSettings,
}

impl RunOptions {
    /// The demo's settings for `variant` (see [`ServerConfig::new`] and
    /// [`AuditSettings::new`]).
    pub fn new(variant: Variant, load: LoadPlan, mode: tl_audit::Mode) -> Self {
        Self {
            server: ServerConfig::new(variant),
            load,
            audit: AuditSettings::new(mode),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The numbers for the summary table.
    pub summary: RunSummary,
    /// The auditor's report: every finding, and the exit code.
    pub report: Report,
}

/// Runs one variant, ticking `progress` once per order answered.
///
/// The auditor is installed first and finished last, after the server's
/// threads stopped, so it sees every task end and every thread stop. It is
/// the process's only auditor: runs must not overlap.
///
/// # Errors
/// If the auditor, the server or the load generator cannot be set up, or the
/// reload fails.
pub fn run_variant(options: &RunOptions, progress: &ProgressBar) -> Result<RunOutcome, Error> {
    let variant = options.server.variant;
    // Before the auditor, so that its metrics reach `GET /metrics`.
    crate::metrics::prometheus();
    let auditor = options.audit.install()?;
    let mode = auditor.mode();
    let server = Server::start(options.server)?;
    tracing::info!(
        variant = variant.as_str(),
        addr = %server.addr(),
        requests = options.load.requests,
        concurrency = options.load.concurrency,
        "{variant} variant: serving http://{} on at most {} pooled threads, {} pooled connections; audit mode {mode}",
        server.addr(),
        options.server.blocking_threads,
        options.server.blocking_threads,
    );
    let client = LoadGenerator::new(server.addr())?;
    let load = client.run(options.load, progress);
    progress.finish_and_clear();

    // Every order was answered: no request is in flight, so every
    // connection still checked out is held by an idle pooled thread.
    let pool = server.pool_status();
    let stuck_connections = pool.stuck_on_threads().unwrap_or(pool.checked_out());
    tracing::info!(
        variant = variant.as_str(),
        stuck_connections,
        pool_size = pool.size,
        "{variant} variant: {} orders answered in {:.2?}; {stuck_connections} of {} pooled connections still checked out by idle threads",
        load.outcomes.total(),
        load.elapsed,
        pool.size,
    );

    // What the idle threads hold now, as a dashboard would see it.
    auditor.scan_now()?;
    let held_bytes = client.scrape()?.sum("tl_audit_held_bytes");

    client.reload()?;
    // The old instance's keys are dead now; its values on idle threads
    // become stranded once the grace period is over.
    std::thread::sleep(options.audit.settle_time());
    auditor.scan_now()?;
    let stranded_bytes = client.scrape()?.sum("tl_audit_stranded_bytes");
    let ran_as_previous_user = server.ran_as_previous_user();
    drop(client);
    server.stop()?;
    let report = auditor.finish()?;

    let summary = RunSummary {
        variant,
        mode,
        outcomes: load.outcomes,
        p50: load.latencies.percentile(50),
        p99: load.latencies.percentile(99),
        pool_size: pool.size,
        stuck_connections,
        ran_as_previous_user,
        held_bytes,
        stranded_bytes,
        findings: report.counts(),
        exit_status: report.exit_status(),
    };
    Ok(RunOutcome { summary, report })
}
