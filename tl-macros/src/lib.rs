//! `#[thread_local_scoped]`: guards that remove thread-local values on every
//! way out of a scope. The attribute itself lands with its own issue; this
//! crate exists now so the workspace layout is final.
