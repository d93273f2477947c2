//! Spawning threads that inherit inheritable thread-locals: a thin wrapper
//! over [`std::thread::Builder`].

use std::io;
use std::thread::{JoinHandle, Scope, ScopedJoinHandle};

use crate::inherit;

/// Like [`std::thread::spawn`], and the child starts with the parent's
/// inheritable values (see [`ThreadLocal::inheritable`](crate::ThreadLocal::inheritable)).
///
/// # Panics
/// If the OS fails to create the thread, like `std::thread::spawn`; use
/// [`Builder::spawn`] to handle that error.
#[track_caller]
pub fn spawn<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// Like [`std::thread::Builder`], with inheritance of inheritable values.
#[derive(Debug)]
pub struct Builder {
    inner: std::thread::Builder,
}

impl Builder {
    /// A builder with std's defaults.
    pub fn new() -> Self {
        Self {
            inner: std::thread::Builder::new(),
        }
    }

    /// Names the thread (shown in leak reports).
    #[must_use]
    pub fn name(self, name: String) -> Self {
        Self {
            inner: self.inner.name(name),
        }
    }

    /// Sets the stack size in bytes.
    #[must_use]
    pub fn stack_size(self, size: usize) -> Self {
        Self {
            inner: self.inner.stack_size(size),
        }
    }

    /// Spawns the thread; the parent's inheritable values are captured now and
    /// bound on the child before `f` runs.
    ///
    /// # Errors
    /// If the OS fails to create the thread.
    #[track_caller]
    pub fn spawn<F, R>(self, f: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let inherited = inherit::capture();
        self.inner.spawn(move || {
            inherited.install();
            f()
        })
    }

    /// Like [`spawn`](Self::spawn), for a scoped thread.
    ///
    /// # Errors
    /// If the OS fails to create the thread.
    #[track_caller]
    pub fn spawn_scoped<'scope, F, R>(
        self,
        scope: &'scope Scope<'scope, '_>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, R>>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: Send + 'scope,
    {
        let inherited = inherit::capture();
        self.inner.spawn_scoped(scope, move || {
            inherited.install();
            f()
        })
    }
}
