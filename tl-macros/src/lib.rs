//! `#[thread_local_scoped]`: the `finally { tl.remove(); }` that cannot be
//! forgotten.
//!
//! A thread-local bound while handling a request leaks on a pooled thread
//! unless it is removed on every way out of the handler: the thread is not
//! going to exit, so the value stays, holds its memory (or a pooled
//! connection), and is visible to the next request on that thread. Java's
//! cure is discipline, a `try { ... } finally { tl.remove(); }` in every
//! handler; its tools either cover only local variables (Lombok's
//! `@Cleanup`) or only check that `remove()` appears somewhere in the class
//! (Sonar's rule S5164). Here one attribute writes the guard, and every way
//! out of the function cleans up: its end, an early `return`, `?`, and a
//! panic that unwinds.
//!
//! The attribute and the derive generate calls into
//! [`tl_core`](https://docs.rs/tl-core), which the crate using them must
//! depend on; `tl_core` re-exports both (its default `macros` feature).
//!
//! # Java's `try/finally`, and the attribute
//!
//! ```java
//! private static final ThreadLocal<UserId> CURRENT_USER = new ThreadLocal<>();
//!
//! Receipt placeOrder(Order order) throws OrderException {
//!     CURRENT_USER.set(order.user());
//!     try {
//!         return orders.place(order);   // reads CURRENT_USER.get() deep in the call chain
//!     } finally {
//!         CURRENT_USER.remove();        // forget this and the pooled thread keeps it
//!     }
//! }
//! ```
//!
//! ```
//! use tl_core::ThreadLocal;
//! use tl_core::thread_local_scoped;
//! # #[derive(Clone, Copy)] struct UserId(u64);
//! # struct Order { user: UserId }
//! # struct Receipt;
//! # #[derive(Debug)] struct OrderError;
//! # mod orders { pub fn place(_: &super::Order) -> Result<super::Receipt, super::OrderError> { Ok(super::Receipt) } }
//!
//! static CURRENT_USER: ThreadLocal<UserId> = ThreadLocal::new();
//!
//! #[thread_local_scoped(CURRENT_USER)]
//! fn place_order(order: Order) -> Result<Receipt, OrderError> {
//!     CURRENT_USER.set(order.user);
//!     orders::place(&order)             // `?`, `return` and panics clean up too
//! }
//! # fn main() {
//! #     place_order(Order { user: UserId(1) }).unwrap();
//! #     assert!(!CURRENT_USER.is_set());
//! # }
//! ```
//!
//! "Cleaned up" means removed or, when the handler runs nested inside a
//! scope that had bound a value (an outer handler, or a
//! `ThreadLocal::scope`), that value restored: the attribute is Java's
//! `finally`, made safe to nest.
//!
//! # The forms
//!
//! ## On a function or method: listed thread-locals
//!
//! `#[thread_local_scoped(a, b, ..)]` cleans up each listed thread-local: a
//! path to a `static` (`CURRENT_USER`, `crate::auth::CURRENT_USER`) or a
//! field of the receiver (`self.conn`; a `Box`, `Rc` or `Arc` of a
//! `ThreadLocal` works too). The function keeps its signature, visibility,
//! docs and other attributes as written: generics, lifetimes, `where`
//! clauses, `impl Trait` returns, any receiver, `unsafe fn` and `extern fn`
//! all work.
//!
//! ```
//! use tl_core::ThreadLocal;
//! use tl_core::thread_local_scoped;
//!
//! static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
//!
//! struct Repository {
//!     conn: ThreadLocal<String>,
//! }
//!
//! impl Repository {
//!     #[thread_local_scoped(REQUEST_ID, self.conn)]
//!     fn save(&mut self, request: u64) -> Result<u64, String> {
//!         REQUEST_ID.set(request);
//!         self.conn.set(format!("connection for {request}"));
//!         if request == 0 {
//!             return Err("no request".to_owned()); // cleaned up
//!         }
//!         Ok(request)
//!     }
//! }
//!
//! let mut repository = Repository { conn: ThreadLocal::new() };
//! repository.save(0).unwrap_err();
//! repository.save(7).unwrap();
//! assert!(!REQUEST_ID.is_set() && !repository.conn.is_set());
//! ```
//!
//! An unnamed static is given its own name (`REQUEST_ID`) for leak
//! reports; a name given with `ThreadLocal::named` is kept.
//!
//! ## On a service: `#[derive(ThreadLocalScoped)]`
//!
//! Mark the thread-local fields of a service `#[thread_local_scoped]` and
//! derive `ThreadLocalScoped`; `#[thread_local_scoped]` without arguments on
//! a method of the service then cleans up all of them. Each field's key is
//! named `Service.field` in leak reports and declared at the field, when a
//! `#[thread_local_scoped]` method of the service first runs. (A code path
//! that binds the fields but never runs one, like a handler not yet
//! annotated, reports them by type and constructor line; name them in the
//! constructor with `ThreadLocal::new().named("Service.field")` to cover it.)
//!
//! ```
//! use tl_core::ThreadLocal;
//! use tl_core::{ThreadLocalScoped, thread_local_scoped};
//! # #[derive(Clone, Copy)] struct UserId(u64);
//! # struct PooledConnection;
//! # #[derive(Clone)] struct Pool;
//! # impl Pool { fn get(&self) -> PooledConnection { PooledConnection } }
//!
//! #[derive(ThreadLocalScoped)]
//! struct OrderService {
//!     #[thread_local_scoped]
//!     current_user: ThreadLocal<UserId>,
//!     #[thread_local_scoped]
//!     conn: ThreadLocal<PooledConnection>,
//!     pool: Pool,
//! }
//!
//! impl OrderService {
//!     #[thread_local_scoped]
//!     fn place_order(&self, user: UserId) {
//!         self.current_user.set(user);
//!         self.conn.set(self.pool.get());
//!         // ...
//!     }
//! }
//!
//! let service = OrderService {
//!     current_user: ThreadLocal::new(),
//!     conn: ThreadLocal::new(),
//!     pool: Pool,
//! };
//! service.place_order(UserId(7));
//! assert!(!service.current_user.is_set() && !service.conn.is_set());
//! assert_eq!(service.current_user.info().name, Some("OrderService.current_user"));
//! ```
//!
//! The field attribute is the derive's helper: it only means something under
//! `#[derive(ThreadLocalScoped)]` (without it, rustc rejects the field
//! attribute). The derive rather than an attribute on the struct, because a
//! derive leaves the struct exactly as written and only adds an `impl`.
//!
//! The field's type must be written as `ThreadLocal<T>` (under any path), or
//! `Box`, `Rc` or `Arc` of one: the derive reads types as written, so a type
//! alias is rejected.
//!
//! ## Mixing, and naming the task
//!
//! `self` in the list stands for every scoped field (what no arguments
//! means), so a handler can clean up its service's fields and statics
//! together; `task = ".."` names the task for the auditor (by default, the
//! function's module path and name).
//!
//! ```
//! # use tl_core::ThreadLocal;
//! # use tl_core::{ThreadLocalScoped, thread_local_scoped};
//! # static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
//! # #[derive(ThreadLocalScoped)]
//! # struct OrderService { #[thread_local_scoped] conn: ThreadLocal<u64> }
//! impl OrderService {
//!     #[thread_local_scoped(self, REQUEST_ID, task = "orders::checkout")]
//!     fn checkout(&self, request: u64) {
//!         REQUEST_ID.set(request);
//!         self.conn.set(request);
//!     }
//! }
//! # let service = OrderService { conn: ThreadLocal::new() };
//! # service.checkout(1);
//! # assert!(!REQUEST_ID.is_set() && !service.conn.is_set());
//! ```
//!
//! # What it generates
//!
//! The guards a careful human writes by hand: no closure, no allocation, the
//! body unchanged. The only addition is naming each static, once per call
//! site (after the first call, one relaxed load of a flag):
//!
//! ```text
//! fn save(&mut self, request: u64) -> Result<u64, String> {
//!     let __tl_task = ::tl_core::__private::TaskScope::enter("shop::save");
//!     let __tl_guard_0 = {
//!         static __TL_LABELLED: AtomicBool = AtomicBool::new(false);
//!         let key: &::tl_core::__private::ThreadLocal<_> = &REQUEST_ID;
//!         if !__TL_LABELLED.load(Relaxed) {
//!             __TL_LABELLED.store(true, Relaxed);
//!             ::tl_core::__private::label(key, "REQUEST_ID", None);
//!         }
//!         ::tl_core::__private::guard(key)
//!     };
//!     let __tl_guard_1 = {
//!         let key: &::tl_core::__private::ThreadLocal<_> = &self.conn;
//!         ::tl_core::__private::guard(key)
//!     };
//!     { /* the body, as written */ }
//! }
//! ```
//!
//! (The default task name is the module path and the function's name; a
//! method's type is not part of it.) Locals drop in reverse order: on every
//! way out, the body's own locals drop first, then the guards in reverse
//! order, then the task scope. A guard holds a key id, not a borrow, so
//! `&mut self` and `self` by value still compile. For the no-argument form,
//! the derive implements a hidden trait whose method,
//! `__thread_local_scoped_guards(&self)`, returns the fields' guards as a
//! tuple (in reverse order, since a tuple drops first to last), and the
//! attribute calls it through a `Self: ScopedFields` bound: on a type
//! without the derive, the error says to add it. (So the bound is on
//! `Self`: a handle that derefs to a service lists the fields it cleans up,
//! `#[thread_local_scoped(self.conn)]`, instead of using `self`.) It names each field's key on every call: once a key
//! has a name, `ThreadLocal::label` costs two loads and keeps the name.
//!
//! # Beyond the listed keys
//!
//! The guards clean up the keys they name. Any *other* task-scoped
//! thread-local bound during the handler and still bound when it exits is a
//! leak in the making: the task scope the attribute opens first (so that it
//! closes last, after the guards) hands those to the task-end hook that an
//! auditor installs with `tl_core::checkpoint::set_task_end_hook`. This
//! crate and `tl_core` never depend on the auditor; with no hook installed
//! the task scope costs a thread-local read and an atomic load.
//!
//! # `async fn`
//!
//! On an `async fn` the listed thread-locals travel with the task. A
//! multi-threaded executor moves a task between worker threads at every
//! `.await`, so a value bound with a plain `set` would stay behind on the
//! first worker (seen by the next task there) while the task resumes
//! elsewhere and sees another task's value, or none. Instead, the values
//! that the body binds for the listed keys are taken off the worker after
//! every poll, kept in the future, and bound again on whichever worker polls
//! it next; between polls nothing is bound. When the future completes
//! (its end, `return`, `?`), panics, or is dropped (cancelled), the values
//! are dropped, once, and the binding the worker had is restored. Until the
//! body binds its own value, it sees the enclosing one (an outer handler's,
//! or a `ThreadLocal::scope_future`'s), as a nested synchronous handler does.
//!
//! ```
//! use tl_core::ThreadLocal;
//! use tl_core::thread_local_scoped;
//!
//! static REQUEST_ID: ThreadLocal<u64> = ThreadLocal::new();
//!
//! #[thread_local_scoped(REQUEST_ID)]
//! async fn lookup(request: u64) -> Option<u64> {
//!     REQUEST_ID.set(request);
//!     tokio::task::yield_now().await; // may resume on another worker
//!     REQUEST_ID.get()                // still this task's value
//! }
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
//! let found = runtime.block_on(async {
//!     let tasks: Vec<_> = (0..100).map(|id| tokio::spawn(lookup(id))).collect();
//!     let mut found = Vec::new();
//!     for task in tasks {
//!         found.push(task.await.unwrap());
//!     }
//!     found
//! });
//! assert_eq!(found, (0..100).map(Some).collect::<Vec<_>>());
//! ```
//!
//! Every form works: listed statics, `self.field`, the derive's `self`,
//! any receiver (the future holds a pin on each key, not a borrow of
//! `self`), generics, and `async fn` in traits. The future is `Send` when
//! the values and the body are. The body becomes an `async move` block
//! inside a future that wraps every poll:
//!
//! ```text
//! async fn lookup(request: u64, (from, to): (Day, Day)) -> Option<u64> {
//!     ::tl_core::__private::task_future(
//!         "shop::lookup",                                 // the task, per poll
//!         ::tl_core::__private::here(),
//!         ({ /* name REQUEST_ID */ ::tl_core::__private::carried(&REQUEST_ID) }, ()),
//!         async move {
//!             let request = request;                      // every parameter, moved in
//!             let __tl_arg1 = __tl_arg1;                  // (the signature's `(from, to)`)
//!             let (from, to) = __tl_arg1;
//!             { /* the body, as written */ }
//!         },
//!     )
//!     .await
//! }
//! ```
//!
//! Each poll is a task for the auditor (a task scope around it), so a value
//! of another key that the body binds and leaves bound is reported at the end
//! of the poll that bound it. A poll allocates nothing.
//!
//! The parameters are moved into the block and rebound there, as rustc does
//! for any `async fn` (a receiver is moved in by `let _ = &self;`), so every
//! one of them, named by the body or not, `_: T` too, drops at the end of the
//! body in the same order as without the attribute, but inside the task:
//! their destructors see the task's values. A cancelled future drops the
//! body's locals and parameters inside the task as well.
//!
//! A plain `fn` that returns a future (`impl Future`, `Pin<Box<dyn
//! Future>>`, `BoxFuture`) is rejected: its guards would run when it returns
//! the future, before the future runs. Make it an `async fn`, or bind the
//! value for the future with `ThreadLocal::scope_future`.
//!
//! ```compile_fail
//! # use core::future::Future;
//! # use tl_core::ThreadLocal;
//! # use tl_core::thread_local_scoped;
//! # static CURRENT_USER: ThreadLocal<u64> = ThreadLocal::new();
//! #[thread_local_scoped(CURRENT_USER)] // error: cannot guard a function that returns a future
//! fn place_order(user: u64) -> impl Future<Output = ()> {
//!     async move { CURRENT_USER.set(user); }
//! }
//! ```
//!
//! # Mistakes
//!
//! Every misuse is one compile error, on the offending token, and the item is
//! still emitted as written so that nothing else fails because of it:
//!
//! | Mistake | Error |
//! |---|---|
//! | an argument that is not a path, `self.field` or `self` | expected a `static` thread-local, `self.field` or `self` |
//! | the same thread-local twice, or `task` twice | duplicate thread-local `..` / duplicate `task` |
//! | `name = ..` for any name but `task`; `task = ..` not a string | unknown keyword `name` / expected a string literal |
//! | on a `struct`, `enum`, `const`, `static`, `impl` or other item | goes on a function or method with a body |
//! | on a trait method without a body | needs a body to guard |
//! | on a `const fn` | cannot guard a `const fn` |
//! | on a plain `fn` returning `impl Future`, `Pin<Box<dyn Future>>` or `BoxFuture` | cannot guard a function that returns a future (on the return type) |
//! | `self` in a function without a receiver | `self` here needs a method that takes `self` |
//! | no arguments on a function without `self` | list the thread-locals to clean up |
//! | a listed static or field that is not a `ThreadLocal` | rustc's mismatched types, on the argument |
//! | the derive on an `enum` or `union` | works on structs |
//! | a marked field that is not a `ThreadLocal` | marks a field of type `ThreadLocal<T>` |
//! | `#[thread_local_scoped(..)]` with arguments on a field, or twice | without arguments / duplicate |
//! | the derive with no marked field | found no field marked `#[thread_local_scoped]` |
//! | a field attribute without the derive | rustc: expected non-macro attribute (or cannot find attribute) |
//!
//! The UI tests in `tests/ui/fail` show each message in full.

#![warn(missing_docs)]

// Layers, bottom up: a module uses only modules listed above it (checked
// by scripts/check-layers in CI).
// - diag: the error messages and how they are spanned
// - args: the attribute's arguments, parsed
// - validate: what the arguments and the function may be
// - expand: the guard code for sync and async functions
// - fields: the derive's field attributes
// - derive: `#[derive(ThreadLocalScoped)]`

mod args;
mod derive;
mod diag;
mod expand;
mod fields;
mod validate;

use proc_macro::TokenStream;

/// Cleans up the listed thread-locals on every way out of a function:
/// `#[thread_local_scoped(STATIC, self.field, ..)]`, or without arguments
/// on a method of a `#[derive(ThreadLocalScoped)]` service, every field it
/// marks.
///
/// Cleaning up means removing whatever the body bound, or restoring the
/// value an enclosing scope had bound. A task scope around the guards hands
/// any other task-scoped value left bound to the auditor's task-end hook.
/// Arguments: paths to `static`s, `self.field`, `self` (every scoped field),
/// and `task = "name"`. On an `async fn`, the values travel with the
/// future across `.await`. See the [crate docs](crate) for every form and
/// the expansions.
///
/// ```
/// use tl_core::ThreadLocal;
/// use tl_core::thread_local_scoped;
///
/// static CURRENT_USER: ThreadLocal<String> = ThreadLocal::new();
///
/// #[thread_local_scoped(CURRENT_USER)]
/// fn handle(user: &str) -> Result<usize, std::num::ParseIntError> {
///     CURRENT_USER.set(user.to_owned());
///     let id: usize = user.parse()?; // removed on this way out too
///     Ok(id)
/// }
///
/// handle("alice").unwrap_err();
/// assert!(!CURRENT_USER.is_set());
/// ```
#[proc_macro_attribute]
pub fn thread_local_scoped(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, arg_errors) = args::parse(args.into());
    match validate::handler(args, arg_errors, item.into()) {
        Ok(handler) => expand::handler(handler).into(),
        Err((error, item)) => {
            let error = error.into_compile_error();
            quote::quote!(#item #error).into()
        }
    }
}

/// Makes a service's `#[thread_local_scoped]` fields cleanable at once: by
/// `#[thread_local_scoped]` (no arguments) on its methods, or `self` in the
/// attribute's list. Names each field's key `Service.field` in leak reports,
/// declared at the field.
///
/// Marked fields must be `ThreadLocal<T>`, or a `Box`, `Rc` or `Arc` of one.
/// Implements one hidden trait, with a method `__thread_local_scoped_guards`;
/// see the [crate docs](crate).
///
/// ```
/// use tl_core::ThreadLocal;
/// use tl_core::{ThreadLocalScoped, thread_local_scoped};
///
/// #[derive(ThreadLocalScoped)]
/// struct Service {
///     #[thread_local_scoped]
///     tenant: ThreadLocal<String>,
///     requests: u64,
/// }
///
/// impl Service {
///     #[thread_local_scoped]
///     fn handle(&mut self, tenant: &str) {
///         self.tenant.set(tenant.to_owned());
///         self.requests += 1;
///     }
/// }
///
/// let mut service = Service { tenant: ThreadLocal::new(), requests: 0 };
/// service.handle("acme");
/// assert!(!service.tenant.is_set());
/// ```
#[proc_macro_derive(ThreadLocalScoped, attributes(thread_local_scoped))]
pub fn derive_thread_local_scoped(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    let (fields, errors) = fields::scoped_fields(&input);
    let expanded = derive::expand(&input, &fields);
    let errors = errors.map(syn::Error::into_compile_error);
    quote::quote!(#expanded #errors).into()
}
