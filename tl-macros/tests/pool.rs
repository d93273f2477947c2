//! The same handler run 10,000 times on a 4-thread pool leaves no value
//! behind on any worker, whichever way each run exits.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use tl_core::ThreadLocal;
use tl_core::{ThreadLocalScoped, thread_local_scoped};

const WORKERS: usize = 4;
const RUNS: usize = if cfg!(miri) { 40 } else { 10_000 };

static REQUEST_ID: ThreadLocal<usize> = ThreadLocal::new();

#[derive(ThreadLocalScoped)]
struct Service {
    #[thread_local_scoped]
    current_user: ThreadLocal<String>,
    #[thread_local_scoped]
    conn: ThreadLocal<Vec<u8>>,
}

impl Service {
    /// Exits by its end, an early return, `?` or a panic, by `run % 4`.
    #[thread_local_scoped(self, REQUEST_ID)]
    fn handle(&self, run: usize) -> Result<usize, String> {
        REQUEST_ID.set(run);
        self.current_user.set(format!("user {run}"));
        match run % 4 {
            0 => return Ok(0),
            1 => Err(format!("run {run} rejected"))?,
            2 => panic!("run {run} failed"),
            _ => {}
        }
        self.conn.set(vec![0; 16]);
        Ok(run)
    }

    fn bound_here(&self) -> bool {
        REQUEST_ID.is_set() || self.current_user.is_set() || self.conn.is_set()
    }
}

#[test]
fn ten_thousand_runs_on_four_threads_leave_nothing_behind() {
    // Keep the handler's expected panics out of the test output; any other
    // (a failed assertion) is printed by the default hook.
    let default_hook = Arc::new(std::panic::take_hook());
    let hook = Arc::clone(&default_hook);
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>();
        if !message.is_some_and(|m| m.starts_with("run ") && m.ends_with(" failed")) {
            hook(info);
        }
    }));

    let service = Arc::new(Service {
        current_user: ThreadLocal::new(),
        conn: ThreadLocal::new(),
    });
    let (jobs, queue) = mpsc::channel::<usize>();
    let queue = Arc::new(Mutex::new(queue));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (service, queue) = (Arc::clone(&service), Arc::clone(&queue));
            thread::spawn(move || {
                let mut handled = 0;
                loop {
                    let job = queue.lock().unwrap().recv();
                    let Ok(run) = job else { break };
                    let _ = catch_unwind(AssertUnwindSafe(|| service.handle(run)));
                    assert!(!service.bound_here(), "run {run} left a value behind");
                    handled += 1;
                }
                // Nothing task-scoped is bound on the pooled thread at all.
                assert!(tl_core::checkpoint::bound().is_empty());
                handled
            })
        })
        .collect();
    for run in 0..RUNS {
        jobs.send(run).unwrap();
    }
    drop(jobs);
    let handled: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();

    drop(std::panic::take_hook());
    if let Ok(default_hook) = Arc::try_unwrap(default_hook) {
        std::panic::set_hook(default_hook);
    }
    assert_eq!(handled, RUNS);
}
