//! Helpers shared by the integration tests: scoped subscribers that capture
//! findings and JSON output, and parked "pooled" threads.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tl_audit::FindingsLayer;
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Bytes written by a fmt layer, shared with the test.
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn contents(&self) -> String {
        String::from_utf8(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
        .expect("fmt output is UTF-8")
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A subscriber with a findings layer and a JSON fmt layer writing to a buffer.
/// (Without timestamps under Miri, whose isolation hides the real-time clock.)
pub fn capture() -> (Dispatch, FindingsLayer, Buffer) {
    let layer = FindingsLayer::new();
    let buffer = Buffer::default();
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .with_writer(buffer.clone());
    let registry = tracing_subscriber::registry().with(layer.clone());
    let dispatch = if cfg!(miri) {
        Dispatch::new(registry.with(json.without_time()))
    } else {
        Dispatch::new(registry.with(json))
    };
    (dispatch, layer, buffer)
}

/// A named thread that runs jobs sent to it and otherwise sits idle, like a
/// pooled worker.
pub struct Worker {
    jobs: Option<Sender<Box<dyn FnOnce() + Send>>>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn new(name: &str) -> Self {
        let (tx, rx): (Sender<Box<dyn FnOnce() + Send>>, Receiver<_>) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawn worker");
        Self {
            jobs: Some(tx),
            handle: Some(handle),
        }
    }

    /// Runs `f` on the worker and waits for it.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .expect("worker running")
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("worker alive");
        rx.recv().expect("job ran")
    }

    /// Stops the worker and joins it.
    pub fn stop(mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            h.join().expect("worker did not panic");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Polls `what` every 5 ms until it holds, for up to 20 s (a pool's threads
/// report on their own schedule); the caller asserts afterwards.
pub fn wait_for(what: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !what() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// An auditor builder for tests: `full` mode, `TL_AUDIT` ignored, no
/// background thread (tests scan with `scan_now`).
pub fn full_manual() -> tl_audit::AuditorBuilder {
    tl_audit::Auditor::builder()
        .mode(tl_audit::Mode::Full)
        .ignore_env()
        .manual()
}
