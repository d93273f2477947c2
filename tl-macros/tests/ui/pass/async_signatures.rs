// `async fn` handlers keep their signatures: `self.field` and the derive's
// `self` form, `&self`, `&mut self` and `self: Arc<Self>` receivers,
// generics, `impl Trait` arguments and returns, lifetimes, `where` clauses,
// `?`, and `async fn` in traits; their futures are `Send` when the values are.
#![deny(missing_docs, unused)]
//! Crate docs.

use std::fmt::Display;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tl_core::ThreadLocal;
use tl_macros::{ThreadLocalScoped, thread_local_scoped};

static KEY: ThreadLocal<String> = ThreadLocal::new();

/// Generics, lifetimes, `impl Trait` in and out, `where`.
#[thread_local_scoped(KEY)]
pub async fn generic<'a, T, const N: usize>(
    items: &'a [T; N],
    label: impl Display,
) -> impl Display + 'a
where
    T: Display + Sync,
{
    KEY.set(format!("{label}"));
    items.iter().map(ToString::to_string).collect::<String>()
}

/// `?` converts the error as in the function's own body.
#[thread_local_scoped(KEY, task = "ui::question_mark")]
pub async fn question_mark(input: &str) -> Result<u64, Box<dyn std::error::Error>> {
    KEY.set(input.to_owned());
    let value: u64 = input.parse()?;
    Ok(value)
}

/// A service with a scoped field.
#[derive(ThreadLocalScoped)]
pub struct Service {
    #[thread_local_scoped]
    conn: ThreadLocal<u64>,
    count: u64,
}

impl Service {
    /// The derive's form.
    #[thread_local_scoped]
    pub async fn handle(&self, conn: u64) -> Option<u64> {
        self.conn.set(conn);
        self.conn.get()
    }

    /// A listed field, with `&mut self`.
    #[thread_local_scoped(self.conn, KEY)]
    pub async fn handle_mut(&mut self) -> u64 {
        self.conn.set(1);
        self.count += 1;
        self.count
    }

    /// `self: Arc<Self>`, the service moved into the body.
    #[thread_local_scoped(self)]
    pub async fn handle_arc(self: Arc<Self>) -> u64 {
        self.conn.set(2);
        self.count
    }
}

/// `async fn` in a trait.
#[allow(async_fn_in_trait)] // no `Send` promised: not the point here
pub trait Handler {
    /// Provided, guarded.
    #[thread_local_scoped(KEY)]
    async fn provided(&self) -> usize {
        KEY.set("provided".to_owned());
        KEY.with(|value| value.map_or(0, String::len))
    }

    /// Implemented, guarded.
    async fn required(&self) -> u64;
}

impl Handler for Service {
    #[thread_local_scoped(self.conn)]
    async fn required(&self) -> u64 {
        self.conn.set(3);
        self.count
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn require_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    assert_eq!(block_on(generic(&[1, 2], "label")).to_string(), "12");
    assert!(block_on(question_mark("x")).is_err());
    let mut service = Service {
        conn: ThreadLocal::new(),
        count: 0,
    };
    assert_eq!(block_on(require_send(service.handle(7))), Some(7));
    assert_eq!(block_on(require_send(service.handle_mut())), 1);
    assert_eq!(block_on(service.provided()), 8);
    assert_eq!(block_on(service.required()), 1);
    let service = Arc::new(service);
    assert_eq!(block_on(require_send(service.clone().handle_arc())), 1);
    assert!(!KEY.is_set() && !service.conn.is_set());
}
