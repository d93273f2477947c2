//! The load generator: real HTTP requests over loopback, from a client
//! running on its own runtime (as a separate process would), with a fixed,
//! reproducible mix of good orders, failing orders and unauthenticated ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::db::catalog;
use crate::error::Error;
use crate::http::{PoolStatus, ReloadBody};
use crate::latency::Latencies;
use crate::metrics::Scrape;
use crate::order::{Order, Receipt, USER_HEADER, UserId};

/// The users good and failing orders are placed by, in turn.
pub const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
/// One request's deadline: far above any latency the service has, so a
/// timeout means something is broken rather than slow.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a planned request is meant to exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A user orders an in-stock product: placed.
    Good,
    /// A user orders more of the scarce product than is in stock: the
    /// handler's error path.
    OutOfStock,
    /// No user: refused, unless a user was left bound on the thread.
    Unauthenticated,
}

/// The mix, repeated: 60% good, 20% out of stock, 20% unauthenticated.
const MIX: [RequestKind; 10] = {
    use RequestKind::{Good as G, OutOfStock as F, Unauthenticated as U};
    [G, F, G, U, G, G, F, G, U, G]
};

/// How many requests, how many at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Orders to send (at least 1).
    pub requests: usize,
    /// Orders in flight at once (at least 1).
    pub concurrency: usize,
}

impl LoadPlan {
    /// Requests at the end that are all out-of-stock orders: a rush on the
    /// scarce product. Twice the concurrency, so that the last request each
    /// pooled thread handles before the reload fails: the buggy variant
    /// then leaves values on idle threads for the reload to strand.
    pub fn failing_tail(&self) -> usize {
        (self.concurrency * 2).min(self.requests / 5)
    }

    /// What request `index` (0-based) exercises.
    pub fn kind_of(&self, index: usize) -> RequestKind {
        if index >= self.requests - self.failing_tail() {
            RequestKind::OutOfStock
        } else {
            MIX[index % MIX.len()]
        }
    }

    /// Request `index`, as sent.
    pub fn request(&self, index: usize) -> PlannedRequest {
        let kind = self.kind_of(index);
        // Shifted each round of the mix, so that every user places every kind.
        let user = USERS[(index + index / MIX.len()) % USERS.len()];
        let bounded = |n: usize, max: usize| u32::try_from(n % max).unwrap_or(0);
        let order = match kind {
            RequestKind::Good | RequestKind::Unauthenticated => Order {
                product: catalog::IN_STOCK[index % catalog::IN_STOCK.len()].to_owned(),
                quantity: 1 + bounded(index, 3),
            },
            RequestKind::OutOfStock => Order {
                product: catalog::SCARCE.to_owned(),
                quantity: catalog::SCARCE_STOCK + 1 + bounded(index, 5),
            },
        };
        PlannedRequest {
            kind,
            user: (kind != RequestKind::Unauthenticated).then(|| UserId(user.to_owned())),
            order,
        }
    }
}

/// One order to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// What it exercises.
    pub kind: RequestKind,
    /// The `x-user` header, if any.
    pub user: Option<UserId>,
    /// The body.
    pub order: Order,
}

/// How the server answered an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 201: placed.
    Placed,
    /// 409: insufficient stock.
    OutOfStock,
    /// 401: no user.
    Unauthenticated,
    /// 503: no pooled connection became free in time.
    PoolExhausted,
    /// Any other status.
    OtherStatus(u16),
    /// No answer (connection or timeout error).
    Unanswered,
}

impl Outcome {
    fn of_status(status: u16) -> Self {
        match status {
            201 => Self::Placed,
            409 => Self::OutOfStock,
            401 => Self::Unauthenticated,
            503 => Self::PoolExhausted,
            other => Self::OtherStatus(other),
        }
    }
}

/// Requests by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// 201.
    pub placed: u64,
    /// 409.
    pub out_of_stock: u64,
    /// 401.
    pub unauthenticated: u64,
    /// 503.
    pub pool_exhausted: u64,
    /// Any other status, or no answer.
    pub other: u64,
}

impl OutcomeCounts {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Placed => self.placed += 1,
            Outcome::OutOfStock => self.out_of_stock += 1,
            Outcome::Unauthenticated => self.unauthenticated += 1,
            Outcome::PoolExhausted => self.pool_exhausted += 1,
            Outcome::OtherStatus(_) | Outcome::Unanswered => self.other += 1,
        }
    }

    fn merge(&mut self, other: Self) {
        self.placed += other.placed;
        self.out_of_stock += other.out_of_stock;
        self.unauthenticated += other.unauthenticated;
        self.pool_exhausted += other.pool_exhausted;
        self.other += other.other;
    }

    /// Every request.
    pub fn total(&self) -> u64 {
        self.placed + self.failed()
    }

    /// Every request not placed.
    pub fn failed(&self) -> u64 {
        self.out_of_stock + self.unauthenticated + self.pool_exhausted + self.other
    }
}

/// One answered (or unanswered) order.
#[derive(Clone, Debug)]
pub struct Reply {
    /// How it went.
    pub outcome: Outcome,
    /// The receipt, for a placed order.
    pub receipt: Option<Receipt>,
    /// From sending to the end of the body.
    pub latency: Duration,
}

/// What a run of the load generator saw.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Requests by outcome.
    pub outcomes: OutcomeCounts,
    /// Every request's latency.
    pub latencies: Latencies,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// A client of one server, with its own single-threaded runtime: its
/// blocking methods must not be called from inside another runtime.
#[derive(Debug)]
pub struct LoadGenerator {
    runtime: Runtime,
    client: reqwest::Client,
    base: String,
}

impl LoadGenerator {
    /// A client of the server at `addr`.
    ///
    /// # Errors
    /// If the runtime or the HTTP client cannot be built.
    pub fn new(addr: SocketAddr) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io("building the load generator's runtime", e))?;
        let client = reqwest::Client::builder()
            // Loopback only: never route through a proxy from the environment.
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Http("building the HTTP client", e))?;
        Ok(Self {
            runtime,
            client,
            base: format!("http://{addr}"),
        })
    }

    /// Sends one order and waits for the answer.
    pub fn place(&self, request: &PlannedRequest) -> Reply {
        self.runtime
            .block_on(place(&self.client, &self.base, request))
    }

    /// Sends `plan.requests` orders, `plan.concurrency` at a time, ticking
    /// `progress` once per answer.
    pub fn run(&self, plan: LoadPlan, progress: &ProgressBar) -> LoadReport {
        let start = Instant::now();
        let mut report = self.runtime.block_on(async {
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = JoinSet::new();
            for _ in 0..plan.concurrency.max(1) {
                let (client, base) = (self.client.clone(), self.base.clone());
                let (next, progress) = (Arc::clone(&next), progress.clone());
                workers.spawn(async move {
                    let mut part = LoadReport::default();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= plan.requests {
                            return part;
                        }
                        let reply = place(&client, &base, &plan.request(index)).await;
                        part.outcomes.add(reply.outcome);
                        part.latencies.record(reply.latency);
                        progress.inc(1);
                    }
                });
            }
            let mut report = LoadReport::default();
            while let Some(joined) = workers.join_next().await {
                match joined {
                    Ok(part) => {
                        report.outcomes.merge(part.outcomes);
                        report.latencies.merge(part.latencies);
                    }
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => {}
                }
            }
            report
        });
        report.elapsed = start.elapsed();
        report
    }

    /// `POST /admin/reload`: returns the new service generation.
    ///
    /// # Errors
    /// If the request fails or the server answers with an error.
    pub fn reload(&self) -> Result<u64, Error> {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(format!("{}/admin/reload", self.base))
                .send()
                .await
                .map_err(|e| Error::Http("POST /admin/reload", e))?;
            if !response.status().is_success() {
                return Err(Error::Reload(response.status().as_u16()));
            }
            let body: ReloadBody = response
                .json()
                .await
                .map_err(|e| Error::Http("reading the reload's answer", e))?;
            Ok(body.generation)
        })
    }

    /// `GET /metrics`, parsed.
    ///
    /// # Errors
    /// If the request fails or the text is not Prometheus text.
    pub fn scrape(&self) -> Result<Scrape, Error> {
        self.runtime.block_on(async {
            let text = self
                .client
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| Error::Http("GET /metrics", e))?
                .text()
                .await
                .map_err(|e| Error::Http("reading the metrics", e))?;
            Scrape::parse(&text).map_err(Error::Scrape)
        })
    }

    /// `GET /admin/pool`.
    ///
    /// # Errors
    /// If the request fails.
    pub fn pool_status(&self) -> Result<PoolStatus, Error> {
        self.runtime.block_on(async {
            self.client
                .get(format!("{}/admin/pool", self.base))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| Error::Http("GET /admin/pool", e))?
                .json()
                .await
                .map_err(|e| Error::Http("reading the pool status", e))
        })
    }
}

async fn place(client: &reqwest::Client, base: &str, request: &PlannedRequest) -> Reply {
    let start = Instant::now();
    let mut builder = client.post(format!("{base}/orders")).json(&request.order);
    if let Some(user) = &request.user {
        builder = builder.header(USER_HEADER, &user.0);
    }
    let (outcome, receipt) = match builder.send().await {
        Ok(response) => {
            let outcome = Outcome::of_status(response.status().as_u16());
            // Read the whole body either way, so the connection is reused.
            let body = response.bytes().await.unwrap_or_default();
            let receipt = (outcome == Outcome::Placed)
                .then(|| serde_json::from_slice(&body).ok())
                .flatten();
            (outcome, receipt)
        }
        Err(_) => (Outcome::Unanswered, None),
    };
    Reply {
        outcome,
        receipt,
        latency: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(plan: LoadPlan) -> Vec<RequestKind> {
        (0..plan.requests).map(|i| plan.kind_of(i)).collect()
    }

    #[test]
    fn the_mix_has_every_kind_in_its_proportion() {
        let plan = LoadPlan {
            requests: 1000,
            concurrency: 1,
        };
        let all = kinds(plan);
        let count = |k| all.iter().filter(|&&x| x == k).count();
        // The tail (the last 2) turns request 998, unauthenticated, and
        // 999, good, into failing ones.
        assert_eq!(count(RequestKind::Good), 599);
        assert_eq!(count(RequestKind::OutOfStock), 202);
        assert_eq!(count(RequestKind::Unauthenticated), 199);
    }

    #[test]
    fn the_run_ends_with_a_failing_burst_of_twice_the_concurrency() {
        let plan = LoadPlan {
            requests: 400,
            concurrency: 8,
        };
        assert_eq!(plan.failing_tail(), 16);
        assert!(
            kinds(plan)[384..]
                .iter()
                .all(|&k| k == RequestKind::OutOfStock)
        );
        // Short runs keep most of their mix.
        let short = LoadPlan {
            requests: 10,
            concurrency: 8,
        };
        assert_eq!(short.failing_tail(), 2);
        assert_eq!(
            LoadPlan {
                requests: 1,
                concurrency: 1
            }
            .failing_tail(),
            0
        );
    }

    #[test]
    fn requests_match_their_kind() {
        let plan = LoadPlan {
            requests: 100,
            concurrency: 4,
        };
        for i in 0..plan.requests {
            let request = plan.request(i);
            match request.kind {
                RequestKind::Good => {
                    assert!(request.user.is_some());
                    assert!(catalog::IN_STOCK.contains(&request.order.product.as_str()));
                }
                RequestKind::Unauthenticated => assert!(request.user.is_none()),
                RequestKind::OutOfStock => {
                    assert!(request.user.is_some());
                    assert_eq!(request.order.product, catalog::SCARCE);
                    assert!(request.order.quantity > catalog::SCARCE_STOCK);
                }
            }
        }
    }

    #[test]
    fn outcomes_add_up() {
        let mut counts = OutcomeCounts::default();
        for status in [201, 201, 409, 401, 503, 500] {
            counts.add(Outcome::of_status(status));
        }
        counts.add(Outcome::Unanswered);
        assert_eq!(counts.placed, 2);
        assert_eq!(counts.failed(), 5);
        assert_eq!(counts.other, 2);
        assert_eq!(counts.total(), 7);
    }
}
