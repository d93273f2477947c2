//! [`Server`]: the service running on its own instrumented tokio runtime,
//! bound to 127.0.0.1, with a fresh seeded database.
//!
//! # Pooled threads and pooled connections
//! Orders run on tokio's blocking pool: at most [`ServerConfig::blocking_threads`]
//! threads, kept alive long after their last task, as a servlet container
//! keeps its request threads. The connection pool has as many connections
//! as there are blocking threads, and a request holds at most one, so a
//! checkout can only time out when connections are held by something other
//! than a running request: thread-locals on idle threads. In the buggy
//! variant that is what happens, and once every connection is stuck on a
//! thread, every later order fails with "pool exhausted".

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::{PoolSettings, TempDatabase};
use crate::error::Error;
use crate::http::{self, AppState, PoolStatus};
use crate::service::Variant;

/// How long an idle blocking thread stays in the pool: longer than any run,
/// so that threads stay pooled and idle, as in a long-running server. (With
/// `--serve`, a thread idle for this long exits, and the values it held,
/// stranded or not, are dropped with it.)
const KEEP_ALIVE: Duration = Duration::from_secs(600);
/// How long [`Server::stop`] waits for blocking tasks to finish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the server.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// The handler variant.
    pub variant: Variant,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Most blocking threads; also the pool's size (see the module docs).
    pub blocking_threads: usize,
    /// How long a checkout waits for a free connection. Short: in the fixed
    /// variant a checkout never waits, and in the buggy one each order
    /// failing with "pool exhausted" costs this long.
    pub checkout_timeout: Duration,
}

impl ServerConfig {
    /// 4 blocking threads and connections, a free port, 50 ms checkouts.
    pub fn new(variant: Variant) -> Self {
        Self {
            variant,
            port: 0,
            blocking_threads: 4,
            checkout_timeout: Duration::from_millis(50),
        }
    }
}

/// A running server. [`stop`](Self::stop) it to shut its threads down;
/// dropping it does the same.
#[derive(Debug)]
pub struct Server {
    /// `None` once stopped.
    runtime: Option<Runtime>,
    addr: SocketAddr,
    app: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<std::io::Result<()>>>,
    /// Declared last, so dropped last: the file outlives the connections.
    database: TempDatabase,
}

impl Server {
    /// Creates the database and the pool, builds the runtime and starts
    /// serving on 127.0.0.1. The service's events go to the subscriber that
    /// is the default here.
    ///
    /// # Errors
    /// If the database, the pool, the runtime or the socket cannot be set up.
    pub fn start(config: ServerConfig) -> Result<Self, Error> {
        let database = TempDatabase::create()?;
        let pool = database.pool(PoolSettings {
            size: u32::try_from(config.blocking_threads).unwrap_or(u32::MAX),
            checkout_timeout: config.checkout_timeout,
        })?;
        let runtime = runtime(config.blocking_threads)?;
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let app = Arc::new(AppState::new(config.variant, pool, dispatch));
        let listener = runtime
            .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)))
            .map_err(|e| Error::Io("binding 127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Io("reading the bound address", e))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let router = http::router(Arc::clone(&app));
        let serving = runtime.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            runtime: Some(runtime),
            addr,
            app,
            shutdown: Some(shutdown),
            serving: Some(serving),
            database,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection pool's state now.
    pub fn pool_status(&self) -> PoolStatus {
        self.app.pool_status()
    }

    /// Requests without a user that were placed as somebody, so far.
    pub fn ran_as_previous_user(&self) -> u64 {
        self.app.ran_as_previous_user()
    }

    /// The database's directory (deleted when the server is dropped).
    pub fn database_dir(&self) -> &std::path::Path {
        self.database.dir()
    }

    /// Blocks until Ctrl-C (SIGINT).
    ///
    /// # Errors
    /// If the signal handler cannot be installed.
    pub fn wait_for_ctrl_c(&self) -> Result<(), Error> {
        match &self.runtime {
            Some(runtime) => runtime
                .block_on(tokio::signal::ctrl_c())
                .map_err(|e| Error::Io("waiting for Ctrl-C", e)),
            None => Ok(()),
        }
    }

    /// Stops serving and shuts the runtime down: its threads exit, and with
    /// them every value still bound on them (the runtime's thread-stop hook
    /// reports those first, through the auditor).
    ///
    /// # Errors
    /// If the server had failed while serving.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), Error> {
        let Some(runtime) = self.runtime.take() else {
            return Ok(());
        };
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let served = match self.serving.take() {
            Some(serving) => match runtime.block_on(serving) {
                Ok(result) => result.map_err(|e| Error::Io("serving", e)),
                // Cancelled or panicked: the server is gone either way.
                Err(e) => Err(Error::Io("serving", std::io::Error::other(e))),
            },
            None => Ok(()),
        };
        runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
        served
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// A multi-threaded runtime whose threads are audited by tl-audit: each
/// thread's stop reports the task-scoped values its tasks left.
fn runtime(blocking_threads: usize) -> Result<Runtime, Error> {
    let numbers = Arc::new(AtomicUsize::new(1));
    tl_audit::tokio::instrument(&mut tokio::runtime::Builder::new_multi_thread())
        .worker_threads(2)
        .max_blocking_threads(blocking_threads)
        .thread_keep_alive(KEEP_ALIVE)
        // tokio names worker and blocking threads alike; only the blocking
        // threads, which run the orders, ever bind thread-locals.
        .thread_name_fn(move || format!("orders-pool-{}", numbers.fetch_add(1, Ordering::Relaxed)))
        .enable_all()
        .build()
        .map_err(|e| Error::Io("building the tokio runtime", e))
}
