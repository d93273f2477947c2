//! The leak the JDK documents, reproduced on a thread pool, and its cure.
//!
//! A service keeps a per-request "bound connection" in a `ThreadLocal` field,
//! as Spring's transaction manager does. One code path forgets to remove it.
//! The pooled threads never exit, so:
//!
//! 1. the next request on the same thread sees the previous request's value;
//! 2. when the service is replaced (a configuration reload), its key dies,
//!    but idle pooled threads keep the values: stranded, visible only through
//!    the registry, until each thread touches a thread-local again;
//! 3. with `guard()` (what `#[thread_local_scoped]` generates) nothing is left.
//!
//! Run with `cargo run -p tl-core --example pooled_leak`.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;

use tl_core::{ThreadLocal, registry};

/// A pooled database connection, as far as this example cares.
#[derive(Debug)]
struct Connection {
    id: u32,
}

/// A service whose handler binds the request's connection to the thread.
struct OrderService {
    conn: ThreadLocal<Connection>,
}

impl OrderService {
    fn new() -> Self {
        Self {
            conn: ThreadLocal::new().named("OrderService.conn"),
        }
    }

    /// The buggy handler: the error path returns before unbinding.
    fn handle_buggy(&self, request: u32) -> Result<(), String> {
        if let Some(stale) = self.conn.with(|c| c.map(|c| c.id)) {
            println!(
                "  request {request:>2} on {} sees connection #{stale} of an earlier request",
                thread_name()
            );
        }
        self.conn.set(Connection { id: request });
        if request % 2 == 0 {
            return Err(format!("request {request} failed"));
        }
        self.conn.remove();
        Ok(())
    }

    /// The fixed handler: the guard unbinds on every way out.
    fn handle_fixed(&self, request: u32) -> Result<(), String> {
        let _conn = self.conn.guard();
        assert!(
            !self.conn.is_set(),
            "a previous request leaked its connection"
        );
        self.conn.set(Connection { id: request });
        if request % 2 == 0 {
            return Err(format!("request {request} failed"));
        }
        Ok(())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of named worker threads that never exit until dropped.
struct Pool {
    senders: Vec<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(size: usize) -> Self {
        let (senders, workers) = (0..size)
            .map(|i| {
                let (tx, rx): (Sender<Job>, Receiver<Job>) = channel();
                let worker = std::thread::Builder::new()
                    .name(format!("pool-worker-{i}"))
                    .spawn(move || rx.into_iter().for_each(|job| job()))
                    .expect("spawn worker");
                (tx, worker)
            })
            .unzip();
        Self { senders, workers }
    }

    /// Runs `job(i)` once on every worker and waits for all of them.
    fn on_each(&self, job: impl Fn(usize) + Send + Sync + 'static) {
        let job = Arc::new(job);
        let done = Arc::new(Barrier::new(self.senders.len() + 1));
        for (i, sender) in self.senders.iter().enumerate() {
            let (job, done) = (Arc::clone(&job), Arc::clone(&done));
            sender
                .send(Box::new(move || {
                    job(i);
                    done.wait();
                }))
                .expect("worker alive");
        }
        done.wait();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.senders.clear();
        for worker in self.workers.drain(..) {
            worker.join().expect("worker panicked");
        }
    }
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// Prints every value still bound on the pool's threads.
fn print_registry(title: &str) -> usize {
    println!("{title}");
    let mut count = 0;
    for thread in registry::snapshot_all() {
        for entry in thread.bound() {
            count += 1;
            println!(
                "  {:<14} {:<20} {:<9} {} bytes, set at {}, declared at {}",
                thread.thread.display_name(),
                entry.key.display_name(),
                if entry.is_stale() {
                    "STRANDED"
                } else {
                    "bound"
                },
                entry.bytes,
                entry
                    .set_site
                    .map_or_else(|| "?".to_owned(), ToString::to_string),
                entry.key.declared_at,
            );
        }
    }
    if count == 0 {
        println!("  (nothing)");
    }
    count
}

fn run(title: &str, fixed: bool) -> usize {
    println!("\n=== {title} ===");
    let pool = Pool::new(4);
    let service = Arc::new(Mutex::new(Some(OrderService::new())));
    for round in 0..3u32 {
        let service = Arc::clone(&service);
        pool.on_each(move |i| {
            let request = round * 4 + i as u32;
            let guard = service.lock().expect("service lock");
            let service = guard.as_ref().expect("service present");
            let result = if fixed {
                service.handle_fixed(request)
            } else {
                service.handle_buggy(request)
            };
            if let Err(error) = result {
                println!("  {error} on {}", thread_name());
            }
        });
    }
    print_registry("values bound on pooled threads after the requests:");

    // A configuration reload replaces the service: its key dies now.
    service.lock().expect("service lock").take();
    let stranded =
        print_registry("after the reload (the old service's key is dead; the workers are idle):");

    // The next task on each worker (one that lists what is bound, as a task
    // start or any bind would) drops the stale values.
    pool.on_each(|_| {
        let _ = tl_core::checkpoint::bound();
    });
    print_registry("after each worker ran one more task:");
    stranded
}

fn main() {
    let stranded_buggy = run("buggy handler: the error path forgets remove()", false);
    let stranded_fixed = run("fixed handler: guard() cleans up on every path", true);
    println!("\nstranded values after the reload: buggy {stranded_buggy}, fixed {stranded_fixed}");
    assert!(stranded_buggy > 0 && stranded_fixed == 0);
}
