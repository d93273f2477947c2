//! A future that yields once, and polling by hand: for tests that move a
//! task between polls. Its own file, so that the loom models (which do not
//! build the rest of `common`) can include it too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Pending once, then ready: an `.await` after which the task may resume on
/// another thread.
pub struct Pending(bool);

impl Pending {
    pub fn once() -> Self {
        Self(false)
    }
}

impl Future for Pending {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Polls `future` once, with a waker that does nothing.
pub fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}
