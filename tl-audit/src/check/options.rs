//! [`CheckOptions`]: how to read the input.

/// Longest line read by default: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How to read the input.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Accept an input with no event at all (default false: an empty log is
    /// more likely a misconfigured job than a clean run).
    pub allow_empty: bool,
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            allow_empty: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl CheckOptions {
    /// Sets [`allow_empty`](Self::allow_empty).
    #[must_use]
    pub fn allow_empty(mut self, yes: bool) -> Self {
        self.allow_empty = yes;
        self
    }

    /// Sets [`max_line_bytes`](Self::max_line_bytes).
    #[must_use]
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }
}
