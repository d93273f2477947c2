//! Errors of the fallible accessors.

use core::fmt;

/// Why a thread-local could not be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccessError {
    /// This thread's thread-locals were already destroyed: the access comes
    /// from a destructor running while the thread exits.
    ThreadExiting,
    /// The value is borrowed by an enclosing `with`/`with_mut` on this thread,
    /// so it cannot be replaced or removed (or, for `with_mut`, borrowed again).
    Borrowed,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ThreadExiting => {
                "the thread's thread-locals were already destroyed (thread exit)"
            }
            Self::Borrowed => {
                "the thread-local's value is borrowed by an enclosing `with` or `with_mut`"
            }
        })
    }
}

impl std::error::Error for AccessError {}

/// A failed [`try_set`](crate::ThreadLocal::try_set): the value comes back untouched.
pub struct SetError<T> {
    /// The value that was not stored.
    pub value: T,
    /// Why it was not stored.
    pub kind: AccessError,
}

impl<T> fmt::Debug for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value not stored: {}", self.kind)
    }
}

impl<T> std::error::Error for SetError<T> {}
