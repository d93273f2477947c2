//! What the binary does: the story (one or both variants under load, then
//! the summary table) or `--serve`.

use indicatif::ProgressBar;

use crate::audit::AuditSettings;
use crate::cli::Cli;
use crate::error::Error;
use crate::load::LoadPlan;
use crate::logging::Console;
use crate::report::render_table;
use crate::run::{RunOptions, run_variant};
use crate::server::{Server, ServerConfig};

/// Runs shorter than this many requests get no progress bar: they end
/// before a bar would tell anything.
const PROGRESS_MIN_REQUESTS: usize = 100;

const TABLE_NOTES: &str = "\
stuck: checked out of the pool after the load, with no request in flight, so
held by thread-locals on idle pooled threads. Placed as a previous user: orders
sent without an x-user header that were placed anyway, for the user an
earlier request left bound on the thread. Bytes held: tl-audit's metrics
(tl_audit_held_bytes, tl_audit_stranded_bytes) as scraped from GET /metrics.
";

/// Runs the chosen variants one after the other, then prints the summary
/// table. Returns the exit status: 1 if a deny-mode auditor found a leak.
///
/// # Errors
/// If a run cannot be set up or completed.
pub fn story(cli: &Cli, console: &Console) -> Result<u8, Error> {
    let plan = LoadPlan {
        requests: usize::try_from(cli.requests).unwrap_or(usize::MAX),
        concurrency: usize::try_from(cli.concurrency).unwrap_or(usize::MAX),
    };
    let mut summaries = Vec::new();
    for variant in cli.variants() {
        let options = RunOptions::new(variant, plan, cli.audit.into());
        let progress = if plan.requests >= PROGRESS_MIN_REQUESTS {
            console.progress_bar(u64::from(cli.requests), variant.as_str())
        } else {
            ProgressBar::hidden()
        };
        summaries.push(run_variant(&options, &progress)?.summary);
    }
    console.print(&format!("\n{}\n{TABLE_NOTES}", render_table(&summaries)));
    Ok(summaries.iter().map(|s| s.exit_status).max().unwrap_or(0))
}

/// Serves one variant until Ctrl-C, then prints the auditor's report.
/// Returns the exit status: 1 if a deny-mode auditor found a leak.
///
/// # Errors
/// If the server cannot be set up, or the auditor not finished.
pub fn serve(cli: &Cli, console: &Console) -> Result<u8, Error> {
    let variant = cli.served_variant();
    // Before the auditor, so that its metrics reach `GET /metrics`.
    crate::metrics::prometheus();
    let auditor = AuditSettings::new(cli.audit.into()).install()?;
    let server = Server::start(ServerConfig {
        port: cli.port,
        ..ServerConfig::new(variant)
    })?;
    let url = format!("http://{}", server.addr());
    tracing::info!(variant = variant.as_str(), %url, "serving the {variant} variant on {url}");
    console.print(&format!(
        "serving the {variant} variant on {url} until Ctrl-C
  POST {url}/orders         body {{\"product\":\"espresso-beans\",\"quantity\":1}}, header x-user: NAME
  POST {url}/admin/reload   replace the OrderService instance
  GET  {url}/admin/pool     the connection pool's state
  GET  {url}/metrics        Prometheus metrics, tl-audit's leak metrics among them
"
    ));
    server.wait_for_ctrl_c()?;
    let pool = server.pool_status();
    server.stop()?;
    let report = auditor.finish()?;
    console.print(&format!(
        "\n{} of {} pooled connections were checked out at Ctrl-C ({} requests in flight)\n{report}\n",
        pool.checked_out(),
        pool.size,
        pool.requests_in_flight,
    ));
    Ok(report.exit_status())
}
