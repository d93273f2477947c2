//! [`OrderService`]: places orders on a pooled thread, with the caller and a
//! pooled database connection bound to thread-locals for the length of the
//! request, the way Spring's `DataSourceTransactionManager` binds a
//! connection and its security context binds the user.
//!
//! # The call chain
//! ```text
//! place_order_buggy / place_order_fixed      binds current_user, then conn
//! ├── authorize                              reads current_user
//! └── checkout                               one transaction on the bound connection
//!     ├── reserve_stock                      reads conn; fails: insufficient stock
//!     └── insert_order                       reads conn and current_user
//! ```
//! The helpers take no connection or user argument: they read the
//! thread-locals, as data-access code under a transaction manager does.
//!
//! # The two variants
//! Both run the same body, `OrderService::bind_and_checkout`, which
//! unbinds at its end, so every `?` before that end returns with the user
//! and the connection still bound to the pooled thread. The fixed variant is
//! that body plus `#[thread_local_scoped]`:
//!
//! ```text
//! -    pub fn place_order_buggy(&self, request: &OrderRequest) -> Result<Receipt, OrderError> {
//! +    #[thread_local_scoped]
//! +    pub fn place_order_fixed(&self, request: &OrderRequest) -> Result<Receipt, OrderError> {
//! ```

use core::fmt;

use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior};
use tl_core::{ThreadLocal, ThreadLocalScoped, thread_local_scoped};

use crate::db::{DbConnection, DbPool};
use crate::order::{Order, OrderError, OrderRequest, Receipt, UserId};

/// Which handler the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The error path returns before unbinding: values leak on pooled threads.
    Buggy,
    /// The same code under `#[thread_local_scoped]`: nothing leaks.
    Fixed,
}

impl Variant {
    /// `"buggy"` or `"fixed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Buggy => "buggy",
            Self::Fixed => "fixed",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order service. One instance serves every request until a reload
/// replaces it; dropping it kills its thread-locals' keys, and values still
/// bound on idle pooled threads then become stranded.
#[derive(ThreadLocalScoped)]
pub struct OrderService {
    /// The caller of the request running on this thread. Bound only for a
    /// request that names a user; between requests, unbound (what the buggy
    /// variant breaks: then an unauthenticated request runs as whoever the
    /// thread's previous request left here).
    #[thread_local_scoped]
    current_user: ThreadLocal<UserId>,
    /// The pooled connection of the request running on this thread. Bound
    /// from the start of a request to its end; between requests, unbound and
    /// back in the pool (what the buggy variant breaks: then the connection
    /// stays checked out by an idle thread).
    #[thread_local_scoped]
    conn: ThreadLocal<DbConnection>,
    pool: DbPool,
    /// 1 for the instance built at start, +1 per reload.
    generation: u64,
}

impl fmt::Debug for OrderService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderService")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

// === impl OrderService: handlers ===

impl OrderService {
    /// A service over `pool`; `generation` counts reloads.
    pub fn new(pool: DbPool, generation: u64) -> Self {
        Self {
            // Named here as well as by the derive: the derive names its
            // fields' keys when a `#[thread_local_scoped]` method first runs,
            // and the buggy variant never runs one.
            current_user: ThreadLocal::new().named("OrderService.current_user"),
            conn: ThreadLocal::new().named("OrderService.conn"),
            pool,
            generation,
        }
    }

    /// Which instance this is: 1 at start, +1 per reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Places an order with the chosen variant's handler. Runs on a pooled
    /// thread: the bindings are this thread's.
    ///
    /// # Errors
    /// Why the order was not placed.
    pub fn place_order(
        &self,
        variant: Variant,
        request: &OrderRequest,
    ) -> Result<Receipt, OrderError> {
        match variant {
            Variant::Buggy => self.place_order_buggy(request),
            Variant::Fixed => self.place_order_fixed(request),
        }
    }

    /// The handler as people really write it: on an error path it returns
    /// before unbinding, and the pooled thread keeps the connection (out of
    /// the pool) and the user (visible to the thread's next request).
    ///
    /// # Errors
    /// Why the order was not placed.
    pub fn place_order_buggy(&self, request: &OrderRequest) -> Result<Receipt, OrderError> {
        self.bind_and_checkout(request)
    }

    /// The same handler under `#[thread_local_scoped]`: every way out (end,
    /// `?`, panic) unbinds both thread-locals.
    ///
    /// # Errors
    /// Why the order was not placed.
    #[thread_local_scoped]
    pub fn place_order_fixed(&self, request: &OrderRequest) -> Result<Receipt, OrderError> {
        self.bind_and_checkout(request)
    }

    /// The body both handlers share: bind, work, unbind. The unbinding at
    /// the end runs on success only; each `?` above it returns with the
    /// bindings in place.
    fn bind_and_checkout(&self, request: &OrderRequest) -> Result<Receipt, OrderError> {
        // An authentication filter's job: bind the caller, if there is one.
        // A request without a user binds nothing.
        if let Some(user) = &request.user {
            self.current_user.set(user.clone());
        }
        // Method security's job: no user, no order (and no connection).
        self.authorize()?;
        // A transaction manager's job: bind a pooled connection to the thread.
        self.conn.set(self.pool.get()?);
        let receipt = self.checkout(&request.order)?;
        self.conn.remove();
        self.current_user.remove();
        Ok(receipt)
    }
}

// === impl OrderService: the call chain ===

impl OrderService {
    /// Places `order` in one transaction on the bound connection.
    fn checkout(&self, order: &Order) -> Result<Receipt, OrderError> {
        self.in_transaction(|| {
            let price = self.reserve_stock(order)?;
            self.insert_order(order, price)
        })
    }

    /// Runs `body` in a write transaction on the bound connection, committed
    /// if `body` succeeds and rolled back (when the transaction drops)
    /// otherwise. `body` reaches the connection through the thread-local too.
    fn in_transaction<R>(
        &self,
        body: impl FnOnce() -> Result<R, OrderError>,
    ) -> Result<R, OrderError> {
        self.with_conn(|conn| {
            // IMMEDIATE takes the write lock now: a deferred transaction that
            // reads first may find the lock taken by then and fail at once.
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let value = body()?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// The caller bound to this thread; reading it is the authorization.
    fn authorize(&self) -> Result<UserId, OrderError> {
        self.current_user.get().ok_or(OrderError::Unauthenticated)
    }

    /// Takes `order.quantity` units from stock; returns the unit price.
    fn reserve_stock(&self, order: &Order) -> Result<i64, OrderError> {
        self.with_conn(|conn| {
            let (price, stock): (i64, i64) = conn
                .query_row(
                    "SELECT price_cents, stock FROM products WHERE id = ?1",
                    [&order.product],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| OrderError::UnknownProduct(order.product.clone()))?;
            if stock < i64::from(order.quantity) {
                return Err(OrderError::OutOfStock {
                    product: order.product.clone(),
                    requested: order.quantity,
                    available: stock,
                });
            }
            conn.execute(
                "UPDATE products SET stock = stock - ?1 WHERE id = ?2",
                (order.quantity, &order.product),
            )?;
            Ok(price)
        })
    }

    /// Records the order for the user bound to this thread.
    fn insert_order(&self, order: &Order, price: i64) -> Result<Receipt, OrderError> {
        // Read again, as an audit column reads the security context: this is
        // who the order is recorded for.
        let user = self.authorize()?;
        let total_cents = price * i64::from(order.quantity);
        let order_id = self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO orders (user_id, product_id, quantity, total_cents) \
                 VALUES (?1, ?2, ?3, ?4)",
                (&user.0, &order.product, order.quantity, total_cents),
            )?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(Receipt {
            order_id,
            user,
            product: order.product.clone(),
            quantity: order.quantity,
            total_cents,
        })
    }

    /// Runs `f` with the connection bound to this thread.
    fn with_conn<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, OrderError>,
    ) -> Result<R, OrderError> {
        self.conn
            .with(|conn| f(conn.ok_or(OrderError::NoConnection)?))
    }
}

/// The user an order ran as although its request named none: `Some` exactly
/// when the request had no user and yet was placed, which only a user left
/// bound on the thread by an earlier request makes possible.
pub fn ran_as_previous_user<'r>(
    request: &OrderRequest,
    result: &'r Result<Receipt, OrderError>,
) -> Option<&'r UserId> {
    match (request.user.as_ref(), result) {
        (None, Ok(receipt)) => Some(&receipt.user),
        _ => None,
    }
}
