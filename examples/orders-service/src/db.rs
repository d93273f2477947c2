//! The database: a real SQLite file, created and seeded in a temporary
//! directory at start, and an r2d2 pool of connections to it.
//!
//! SQLite is compiled in (rusqlite's `bundled` feature), so nothing needs
//! installing. The file is in WAL mode and every connection waits for the
//! write lock (`busy_timeout`) instead of failing: concurrent requests
//! serialize their short write transactions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r2d2::ManageConnection as _;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tempfile::TempDir;

use crate::error::Error;

/// The pool of connections to the orders database.
pub type DbPool = r2d2::Pool<SqliteConnectionManager>;
/// A connection checked out of [`DbPool`]: back in the pool when dropped.
pub type DbConnection = r2d2::PooledConnection<SqliteConnectionManager>;

/// How long a connection waits for another one's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`TempDatabase::pool`] waits for the pool's connections to open:
/// generous, unlike the checkout timeout, because a loaded CI machine may be
/// slow to open files and this wait happens once.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The seeded products.
pub mod catalog {
    /// Products with more stock than any run can order: good orders use them.
    pub const IN_STOCK: [&str; 3] = ["espresso-beans", "pour-over-kettle", "burr-grinder"];
    /// A product with [`SCARCE_STOCK`] units: ordering more fails with
    /// "insufficient stock", the error path of the story.
    pub const SCARCE: &str = "limited-edition-roast";
    /// Units of [`SCARCE`] in stock; no order ever succeeds in taking them
    /// because the load generator always asks for more.
    pub const SCARCE_STOCK: u32 = 3;

    /// `(id, price in cents, stock)` of every product.
    pub(crate) const PRODUCTS: [(&str, i64, i64); 4] = [
        (IN_STOCK[0], 1_450, 1_000_000_000),
        (IN_STOCK[1], 3_900, 1_000_000_000),
        (IN_STOCK[2], 12_900, 1_000_000_000),
        (SCARCE, 2_400, SCARCE_STOCK as i64),
    ];
}

const SCHEMA: &str = "
    CREATE TABLE products (
        id          TEXT PRIMARY KEY,
        price_cents INTEGER NOT NULL,
        stock       INTEGER NOT NULL CHECK (stock >= 0)
    );
    CREATE TABLE orders (
        id          INTEGER PRIMARY KEY,
        user_id     TEXT NOT NULL,
        product_id  TEXT NOT NULL REFERENCES products (id),
        quantity    INTEGER NOT NULL CHECK (quantity > 0),
        total_cents INTEGER NOT NULL
    );
";

/// The pool's shape.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections in the pool (all opened at start).
    pub size: u32,
    /// How long a checkout waits for a free connection before failing with
    /// [`OrderError::PoolExhausted`](crate::order::OrderError::PoolExhausted).
    pub checkout_timeout: Duration,
}

/// A seeded database file in a temporary directory, deleted on drop.
#[derive(Debug)]
pub struct TempDatabase {
    /// Owns the directory: dropping it deletes the file.
    dir: TempDir,
    path: PathBuf,
}

impl TempDatabase {
    /// Creates the directory, the schema and the catalogue.
    ///
    /// # Errors
    /// If the directory cannot be created or SQLite fails.
    pub fn create() -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("orders-service-")
            .tempdir()
            .map_err(|e| Error::Io("creating the database directory", e))?;
        let path = dir.path().join("orders.sqlite3");
        let seed = || -> rusqlite::Result<()> {
            let mut conn = Connection::open(&path)?;
            // Persistent: every later connection to the file uses WAL.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let tx = conn.transaction()?;
            tx.execute_batch(SCHEMA)?;
            for (id, price, stock) in catalog::PRODUCTS {
                tx.execute(
                    "INSERT INTO products (id, price_cents, stock) VALUES (?1, ?2, ?3)",
                    (id, price, stock),
                )?;
            }
            tx.commit()
        };
        seed().map_err(|e| Error::Database("creating and seeding the database", e))?;
        Ok(Self { dir, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding it (deleted on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A pool of `settings.size` connections, all opened before it returns.
    ///
    /// # Errors
    /// If a connection cannot be opened, or the pool's connections are not
    /// all open within 30 s.
    pub fn pool(&self, settings: PoolSettings) -> Result<DbPool, Error> {
        let manager = SqliteConnectionManager::file(&self.path).with_init(|conn| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            // WAL's default: commits reach the log without an fsync each.
            conn.pragma_update(None, "synchronous", "NORMAL")
        });
        // One connection opened here reports a broken setup as an error;
        // the pool's background openers would only log and retry.
        manager
            .connect()
            .map_err(|e| Error::Database("opening a connection", e))?;
        let pool = r2d2::Pool::builder()
            .max_size(settings.size)
            .min_idle(Some(settings.size))
            .connection_timeout(settings.checkout_timeout)
            // Not `build`: it would wait for the connections only as long as
            // the (deliberately short) checkout timeout.
            .build_unchecked(manager);
        let start = Instant::now();
        // Opened up front, so that no request waits for a connect and a
        // checkout fails only when every connection is taken.
        while pool.state().idle_connections < settings.size {
            if start.elapsed() > OPEN_TIMEOUT {
                return Err(Error::PoolNotReady {
                    open: pool.state().connections,
                    wanted: settings.size,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(pool)
    }
}
