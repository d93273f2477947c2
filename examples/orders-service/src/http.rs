//! The HTTP layer: axum routes, the hop from async handlers to pooled
//! blocking threads, and the admin reload.
//!
//! | Route | What it does |
//! |---|---|
//! | `POST /orders` | places an order (`{"product": "..", "quantity": n}`, caller in the `x-user` header) |
//! | `POST /admin/reload` | replaces the [`OrderService`] instance, as a configuration reload does |
//! | `GET /admin/pool` | the connection pool's state ([`PoolStatus`]) |
//!
//! Orders run on tokio's blocking pool through `tl_audit::tokio::spawn_blocking`,
//! so each one is an audited task: whatever it leaves bound on its pooled
//! thread is reported when it returns.
//!
//! `GET /admin/pool` is the async side: an `async fn` under
//! `#[thread_local_scoped(REQUEST_ID)]` binds its request id with a plain
//! `set`, and the id travels with the handler's task across `.await` from
//! worker to worker, then is dropped when the handler returns.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tl_core::{ThreadLocal, thread_local_scoped};
use tracing::Dispatch;

use crate::db::DbPool;
use crate::order::{Order, OrderError, OrderRequest, USER_HEADER, UserId};
use crate::service::{self, OrderService, Variant};

/// The audited task name of an order on its pooled thread.
pub const ORDER_TASK: &str = "place_order";

/// The id of the async request being handled, on whichever worker polls it.
static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new().named("REQUEST_ID");
static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    variant: Variant,
    /// The current instance. A reload swaps it; requests in flight keep the
    /// instance they started with (their `Arc`), so an old instance dies
    /// when its last request ends.
    service: RwLock<Arc<OrderService>>,
    pool: DbPool,
    /// Requests between arrival and response.
    in_flight: AtomicUsize,
    /// Requests without a user that were placed as somebody.
    ran_as_previous_user: AtomicU64,
    /// Whether "pool exhausted" was logged already (once per server).
    exhaustion_logged: AtomicBool,
    /// Where this crate's events go, from any thread (see [`AppState::new`]).
    dispatch: Dispatch,
}

impl AppState {
    /// State for a server running `variant` over `pool`. Events of the
    /// service's threads go to `dispatch`, so a test's scoped subscriber sees
    /// them as well as a global one.
    pub fn new(variant: Variant, pool: DbPool, dispatch: Dispatch) -> Self {
        Self {
            variant,
            service: RwLock::new(Arc::new(OrderService::new(pool.clone(), 1))),
            pool,
            in_flight: AtomicUsize::new(0),
            ran_as_previous_user: AtomicU64::new(0),
            exhaustion_logged: AtomicBool::new(false),
            dispatch,
        }
    }

    /// The current instance.
    fn service(&self) -> Arc<OrderService> {
        Arc::clone(&self.service.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the service with a new instance over the same pool and
    /// returns the new generation. The old instance is dropped here unless a
    /// request still holds it: its thread-locals' keys die with it.
    pub fn reload(&self) -> u64 {
        let old = {
            let mut current = self.service.write().unwrap_or_else(PoisonError::into_inner);
            let next = Arc::new(OrderService::new(
                self.pool.clone(),
                current.generation() + 1,
            ));
            core::mem::replace(&mut *current, next)
        };
        let (old_generation, generation) = (old.generation(), old.generation() + 1);
        drop(old);
        tracing::dispatcher::with_default(&self.dispatch, || {
            tracing::info!(
                generation,
                "configuration reloaded: OrderService #{generation} replaces #{old_generation}, whose thread-locals die with it"
            );
        });
        generation
    }

    /// The pool as seen now.
    pub fn pool_status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            size: self.pool.max_size(),
            open: state.connections,
            idle: state.idle_connections,
            requests_in_flight: self.in_flight.load(Ordering::Acquire),
        }
    }

    /// Requests without a user that were placed as somebody, so far.
    pub fn ran_as_previous_user(&self) -> u64 {
        self.ran_as_previous_user.load(Ordering::Relaxed)
    }

    /// Runs on the pooled thread: places the order and notes what went wrong
    /// in ways only the server can see.
    fn place_order_blocking(
        &self,
        service: &OrderService,
        request: &OrderRequest,
    ) -> Result<crate::order::Receipt, OrderError> {
        let result = service.place_order(self.variant, request);
        tracing::dispatcher::with_default(&self.dispatch, || {
            if let Some(user) = service::ran_as_previous_user(request, &result) {
                self.ran_as_previous_user.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    user = %user,
                    "request without a user placed an order as user \"{user}\": an earlier request on this thread left that user bound"
                );
            }
            if let Err(OrderError::PoolExhausted(e)) = &result {
                if !self.exhaustion_logged.swap(true, Ordering::Relaxed) {
                    let status = self.pool_status();
                    tracing::warn!(
                        open = status.open,
                        idle = status.idle,
                        "connection pool exhausted ({e}): {} of {} connections checked out, further failures not logged",
                        status.open - status.idle,
                        status.size
                    );
                }
            }
        });
        result
    }
}

/// The connection pool's state, as served by `GET /admin/pool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Connections the pool may hold.
    pub size: u32,
    /// Connections open.
    pub open: u32,
    /// Open connections in the pool, free to check out.
    pub idle: u32,
    /// Requests being handled.
    pub requests_in_flight: usize,
}

impl PoolStatus {
    /// Connections checked out of the pool.
    pub fn checked_out(&self) -> u32 {
        self.open - self.idle
    }

    /// Connections checked out while no request runs: each is held by a
    /// thread-local on an idle pooled thread. `None` while requests run
    /// (a running request legitimately holds one).
    pub fn stuck_on_threads(&self) -> Option<u32> {
        (self.requests_in_flight == 0).then(|| self.checked_out())
    }
}

/// The routes, over `app`.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/orders", post(place_order))
        .route("/admin/reload", post(reload))
        .route("/admin/pool", get(pool_status))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// `GET /metrics`: Prometheus text (tl-audit's leak metrics among them).
async fn metrics() -> String {
    crate::metrics::render()
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ReloadBody {
    pub(crate) generation: u64,
}

async fn place_order(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(order): Json<Order>,
) -> Response {
    let _in_flight = InFlight::enter(&app.in_flight);
    let user = headers
        .get(USER_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|name| !name.is_empty())
        .map(|name| UserId(name.to_owned()));
    let request = OrderRequest { user, order };
    // Taken here, on arrival: a reload during the request does not move it
    // to the new instance halfway.
    let service = app.service();
    let state = Arc::clone(&app);
    let placed = tl_audit::tokio::spawn_blocking(ORDER_TASK, move || {
        state.place_order_blocking(&service, &request)
    })
    .await;
    match placed {
        Ok(Ok(receipt)) => (StatusCode::CREATED, Json(receipt)).into_response(),
        Ok(Err(error)) => error_response(&error),
        Err(join_error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(ErrorBody {
                error: format!("the handler failed: {join_error}"),
            }),
        )
            .into_response(),
    }
}

fn error_response(error: &OrderError) -> Response {
    let status = match error {
        OrderError::Unauthenticated => StatusCode::UNAUTHORIZED,
        OrderError::UnknownProduct(_) => StatusCode::NOT_FOUND,
        OrderError::OutOfStock { .. } => StatusCode::CONFLICT,
        OrderError::PoolExhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = ErrorBody {
        error: error.to_string(),
    };
    (status, Json(body)).into_response()
}

async fn reload(State(app): State<Arc<AppState>>) -> Json<ReloadBody> {
    Json(ReloadBody {
        generation: app.reload(),
    })
}

/// An async handler beside the synchronous ones: the attribute carries
/// `REQUEST_ID` with the task, so the id read after the `.await` is this
/// request's, on any worker, and nothing is left bound on the workers.
#[thread_local_scoped(REQUEST_ID)]
async fn pool_status(State(app): State<Arc<AppState>>) -> Json<PoolStatus> {
    REQUEST_ID.set(NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed));
    // Gives the worker to other tasks, as a lookup's I/O would: the handler
    // may resume on another worker, and its id comes along.
    tokio::task::yield_now().await;
    let status = app.pool_status();
    tracing::dispatcher::with_default(&app.dispatch, || {
        tracing::debug!(request_id = REQUEST_ID.get(), "pool status");
    });
    Json(status)
}
