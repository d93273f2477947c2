//! Expansions compile clean under strict lints: every form of the attribute
//! and the derive, checked by `cargo clippy -p tl-macros --all-targets -- -D
//! warnings` (and by rustc's own lints in `cargo test`).

#![deny(warnings, unused_qualifications, clippy::all, clippy::pedantic)]

use std::fmt::Display;
use std::sync::Arc;

use tl_core::ThreadLocal;
use tl_macros::{ThreadLocalScoped, thread_local_scoped};

mod keys {
    use tl_core::ThreadLocal;

    pub static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
}

static CURRENT_USER: ThreadLocal<String> = ThreadLocal::new();

/// Documented, with other attributes kept as written.
#[thread_local_scoped(CURRENT_USER, keys::REQUEST_ID)]
#[inline]
#[must_use]
pub fn free_function(user: &str) -> usize {
    CURRENT_USER.set(user.to_owned());
    keys::REQUEST_ID.set(1);
    user.len()
}

#[thread_local_scoped(CURRENT_USER, task = "lint::generic")]
fn generic<'a, T, const N: usize>(items: &'a [T; N]) -> impl Iterator<Item = &'a T> + 'a
where
    T: Display + 'a,
{
    #![allow(clippy::needless_lifetimes)] // inner attributes stay first
    CURRENT_USER.set(items.iter().map(ToString::to_string).collect());
    items.iter()
}

mod nested {
    /// # Safety
    /// `ptr` must be valid for reads.
    #[tl_macros::thread_local_scoped(crate::keys::REQUEST_ID)]
    pub(crate) unsafe fn unsafe_function(ptr: *const u64) -> u64 {
        // SAFETY: the caller passes a valid pointer.
        let value = unsafe { *ptr };
        crate::keys::REQUEST_ID.set(value);
        value
    }
}

#[thread_local_scoped(CURRENT_USER)]
extern "C" fn extern_function() {
    CURRENT_USER.set(String::new());
}

#[thread_local_scoped(CURRENT_USER)]
fn question_mark(input: &str) -> Result<u64, std::num::ParseIntError> {
    CURRENT_USER.set(input.to_owned());
    input.parse()
}

/// A service with scoped fields.
#[derive(ThreadLocalScoped)]
pub struct Service<T: Clone + 'static> {
    #[thread_local_scoped]
    current: ThreadLocal<T>,
    #[thread_local_scoped]
    shared: Arc<ThreadLocal<u64>>,
    count: u64,
}

impl<T: Clone + 'static> Service<T> {
    #[thread_local_scoped]
    fn handle(&self, value: T) -> Option<T> {
        self.current.set(value);
        self.current.get()
    }

    #[thread_local_scoped]
    fn handle_mut(&mut self) {
        self.count += 1;
        self.shared.set(self.count);
    }

    #[thread_local_scoped(self.shared, keys::REQUEST_ID)]
    fn handle_listed(&self) {
        self.shared.set(1);
    }

    #[thread_local_scoped(self, CURRENT_USER, task = "lint::service")]
    fn handle_all(self: Arc<Self>) -> Arc<Self> {
        CURRENT_USER.set(String::new());
        self
    }

    #[thread_local_scoped]
    fn into_count(self) -> u64 {
        self.count
    }
}

trait Handler {
    fn run(&self) -> u64;

    #[thread_local_scoped(keys::REQUEST_ID)]
    fn provided(&self) -> u64 {
        keys::REQUEST_ID.set(self.run());
        self.run()
    }
}

impl Handler for Service<u8> {
    #[thread_local_scoped(self.shared)]
    fn run(&self) -> u64 {
        self.shared.set(2);
        self.count
    }
}

#[derive(ThreadLocalScoped)]
struct Unit(#[thread_local_scoped] ThreadLocal<()>);

/// `async fn`: a free function with `?`, and every receiver and key form.
#[thread_local_scoped(CURRENT_USER, keys::REQUEST_ID, task = "lint::async")]
pub async fn async_function(input: &str) -> Result<u64, std::num::ParseIntError> {
    CURRENT_USER.set(input.to_owned());
    keys::REQUEST_ID.set(1);
    input.parse()
}

/// Two fields, for a struct pattern.
pub struct Pair {
    left: u64,
    right: u64,
}

/// `async fn` parameters of every kind, each rebound in the body.
#[thread_local_scoped(CURRENT_USER)]
pub async fn async_parameters(
    mut count: u64,
    (first, second): (u64, u64),
    Pair { left, .. }: Pair,
    _: String,
    ref name: String,
    ref mut buffer: Vec<u8>,
    #[allow(unused_variables)] unused: u64,
    #[cfg(any())] removed: u64,
) -> u64 {
    CURRENT_USER.set(name.clone());
    buffer.push(1);
    count += first + second + left;
    count
}

impl<T: Clone + Send + Sync + 'static> Service<T> {
    #[thread_local_scoped]
    async fn handle_async(&self, value: T) -> Option<T> {
        self.current.set(value);
        self.current.get()
    }

    #[thread_local_scoped(self.shared, self, CURRENT_USER)]
    async fn handle_async_mut(&mut self) -> u64 {
        self.count += 1;
        self.shared.set(self.count);
        self.count
    }

    #[thread_local_scoped]
    async fn handle_async_arc(self: Arc<Self>) -> u64 {
        self.shared.set(3);
        self.count
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

#[test]
fn every_async_form_runs() {
    assert_eq!(block_on(async_function("7")), Ok(7));
    let pair = Pair { left: 3, right: 4 };
    assert_eq!(pair.right, 4);
    let parameters = async_parameters(1, (1, 1), pair, String::new(), "a".into(), vec![], 0);
    assert_eq!(block_on(parameters), 6);
    let mut service = Service {
        current: ThreadLocal::new(),
        shared: Arc::new(ThreadLocal::new()),
        count: 0,
    };
    assert_eq!(block_on(service.handle_async(2u8)), Some(2));
    assert_eq!(block_on(service.handle_async_mut()), 1);
    assert_eq!(block_on(Arc::new(service).handle_async_arc()), 1);
    assert!(!CURRENT_USER.is_set() && !keys::REQUEST_ID.is_set());
}

#[test]
fn every_form_runs() {
    assert_eq!(free_function("alice"), 5);
    assert_eq!(generic(&[1, 2]).count(), 2);
    // SAFETY: a reference is a valid pointer.
    assert_eq!(unsafe { nested::unsafe_function(&3) }, 3);
    extern_function();
    question_mark("x").unwrap_err();
    let mut service = Service {
        current: ThreadLocal::new(),
        shared: Arc::new(ThreadLocal::new()),
        count: 0,
    };
    assert_eq!(service.handle(1u8), Some(1));
    service.handle_mut();
    service.handle_listed();
    assert_eq!(service.provided(), 1);
    let service = Arc::new(service).handle_all();
    let service = Arc::try_unwrap(service).unwrap_or_else(|_| unreachable!());
    assert_eq!(service.into_count(), 1);
    drop(Unit(ThreadLocal::new()));
    assert!(!CURRENT_USER.is_set() && !keys::REQUEST_ID.is_set());
}
