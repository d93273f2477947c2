//! The tl project's main job: an HTTP order service whose handlers bind a
//! pooled database connection and the current user to thread-locals on
//! pooled threads, first leaking them, then fixed with
//! `#[thread_local_scoped]`, under tl-audit's eye.
//!
//! # The story
//! [`OrderService`](service::OrderService) places orders on tokio's blocking
//! pool (at most 4 threads, kept alive), one SQLite transaction per order
//! over an r2d2 pool of 4 connections, with the caller and the connection
//! bound to thread-locals for the helpers deep in the call chain, as Spring's
//! `DataSourceTransactionManager` binds a connection to the thread.
//!
//! - **Buggy**: on an error path ("insufficient stock") the handler returns
//!   before unbinding. The pooled thread keeps the connection out of the
//!   pool and keeps the user: the thread's next request without a user runs
//!   as that user, and once every connection is stuck on a thread, every
//!   order fails with "pool exhausted". tl-audit reports each value left
//!   bound when its task ends (*unreleased*), and, after a reload replaces
//!   the service, each value of the dead instance still held by an idle
//!   thread (*stranded*).
//! - **Fixed**: the same handler under `#[thread_local_scoped]`: nothing is
//!   left, nothing is reported, the pool never drains.
//!
//! The load generator ([`load`]) drives the server with real HTTP requests
//! over loopback; [`run::run_variant`] runs one variant end to end and
//! [`report::render_table`] puts runs side by side. The binary is a thin
//! layer over [`commands`].
//!
//! # Modules
//! | Module | Job |
//! |---|---|
//! | [`service`] | `OrderService`, its thread-local fields, the buggy and fixed handlers, the call chain |
//! | [`order`] | request, receipt and error types |
//! | [`db`] | the temporary SQLite database, its catalogue, the r2d2 pool |
//! | [`http`] | axum routes, the hop to pooled threads, the admin reload |
//! | [`server`] | the instrumented runtime and the server's life cycle |
//! | [`load`] | the load generator and its request mix |
//! | [`latency`] | latency percentiles |
//! | [`audit`] | the auditor's settings |
//! | [`metrics`] | the Prometheus recorder, `GET /metrics`, reading a scrape |
//! | [`run`] | one variant's run, start to finish |
//! | [`report`] | the side-by-side summary table |
//! | [`logging`] | stdout and stderr discipline, progress bars |
//! | [`cli`], [`commands`] | the binary's arguments and commands |

#![warn(missing_docs)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod db;
pub mod error;
pub mod http;
pub mod latency;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod order;
pub mod report;
pub mod run;
pub mod server;
pub mod service;

pub use error::Error;
