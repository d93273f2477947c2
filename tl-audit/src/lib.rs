//! Finds thread-local values that outlive their keys or their tasks and
//! reports them through `tracing`. The auditor lands with its own issue; this
//! crate exists now so the workspace layout is final.
