//! The order API's data: what a client sends, what it gets back, and why an
//! order fails. Shared by the service, the HTTP layer and the load generator.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The request header that names the caller. A request without it is
/// unauthenticated and must not run as anybody.
pub const USER_HEADER: &str = "x-user";

/// Who places an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The body of `POST /orders`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// A product id from the seeded catalogue (see [`crate::db::catalog`]).
    pub product: String,
    /// How many units.
    pub quantity: u32,
}

/// One order as the handler sees it: the body, and the caller if the request
/// named one.
#[derive(Clone, Debug)]
pub struct OrderRequest {
    /// `None` for a request without a [`USER_HEADER`].
    pub user: Option<UserId>,
    /// What to order.
    pub order: Order,
}

/// The response to a placed order: what was recorded in the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The new row's id.
    pub order_id: i64,
    /// The user the order was recorded for: whatever the thread-local said
    /// when the order was written.
    pub user: UserId,
    /// The product ordered.
    pub product: String,
    /// Units ordered.
    pub quantity: u32,
    /// Price times quantity, in cents.
    pub total_cents: i64,
}

/// Why an order was not placed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OrderError {
    /// No user is bound to the thread.
    Unauthenticated,
    /// The product is not in the catalogue.
    UnknownProduct(String),
    /// Fewer units in stock than ordered.
    OutOfStock {
        /// The product.
        product: String,
        /// Units ordered.
        requested: u32,
        /// Units in stock.
        available: i64,
    },
    /// No pooled connection became free within the pool's checkout timeout.
    PoolExhausted(r2d2::Error),
    /// A data-access helper ran with no connection bound to its thread.
    NoConnection,
    /// SQLite failed.
    Database(rusqlite::Error),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthenticated => write!(f, "no user: send the {USER_HEADER} header"),
            Self::UnknownProduct(product) => write!(f, "unknown product {product:?}"),
            Self::OutOfStock {
                product,
                requested,
                available,
            } => write!(
                f,
                "insufficient stock of {product:?}: {requested} ordered, {available} available"
            ),
            Self::PoolExhausted(e) => write!(f, "connection pool exhausted: {e}"),
            Self::NoConnection => f.write_str("no database connection bound to this thread"),
            Self::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for OrderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::PoolExhausted(e) => Some(e),
            Self::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<r2d2::Error> for OrderError {
    fn from(e: r2d2::Error) -> Self {
        Self::PoolExhausted(e)
    }
}

impl From<rusqlite::Error> for OrderError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e)
    }
}
