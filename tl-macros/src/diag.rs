//! Diagnostics: the one canonical message for each mistake, and an error
//! accumulator so that every mistake in an item is reported at once.
//!
//! Every message names what to write instead. Each is raised on the user's
//! own token, never on the whole item.

use core::fmt::Display;

/// Errors collected across an item, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }

    /// `ok` if nothing was pushed, the combined errors otherwise.
    pub(crate) fn finish<T>(self, ok: T) -> Result<T, syn::Error> {
        self.0.map_or(Ok(ok), Err)
    }
}

// === the attribute's arguments ===

pub(crate) const NOT_A_KEY: &str = "expected a `static` thread-local, `self.field` or `self`, \
     as in `#[thread_local_scoped(CURRENT_USER, self.conn)]`";

pub(crate) fn duplicate_key(key: impl Display) -> String {
    format!("duplicate thread-local `{key}`")
}

pub(crate) const DUPLICATE_TASK: &str = "duplicate `task`";

pub(crate) const TASK_NOT_A_STRING: &str =
    "expected a string literal, as in `task = \"place_order\"`";

pub(crate) fn unknown_keyword(keyword: impl Display) -> String {
    format!("unknown keyword `{keyword}`: the only keyword is `task = \"...\"`")
}

// === the item under the attribute ===

pub(crate) const NOT_A_FUNCTION: &str = "`#[thread_local_scoped]` goes on a function or method \
     with a body; on a service struct, use `#[derive(ThreadLocalScoped)]` and mark its \
     `ThreadLocal` fields `#[thread_local_scoped]`";

pub(crate) const NO_BODY: &str = "`#[thread_local_scoped]` needs a body to guard: \
     put it on the method's implementation, not on its declaration";

pub(crate) const CONST_FN: &str =
    "`#[thread_local_scoped]` cannot guard a `const fn`: its guards run at run time";

pub(crate) const RETURNS_FUTURE: &str = "`#[thread_local_scoped]` cannot guard a function \
     that returns a future: its guards would run when the function returns the future, \
     before the future runs; make it an `async fn` (the attribute then carries the values \
     with the future across `.await`), or bind the value with `ThreadLocal::scope_future`";

pub(crate) const SELF_WITHOUT_RECEIVER: &str =
    "`self` here needs a method that takes `self`, `&self` or `&mut self`";

pub(crate) const NOTHING_TO_GUARD: &str = "`#[thread_local_scoped]` without arguments \
     cleans up the `#[thread_local_scoped]` fields of `self`, and this function takes no `self`: \
     list the thread-locals to clean up, as in `#[thread_local_scoped(CURRENT_USER)]`";

// === #[derive(ThreadLocalScoped)] ===

pub(crate) const DERIVE_NOT_A_STRUCT: &str = "`#[derive(ThreadLocalScoped)]` works on structs: \
     mark their `ThreadLocal` fields `#[thread_local_scoped]`";

pub(crate) const FIELD_ATTRIBUTE_ARGS: &str =
    "expected `#[thread_local_scoped]` on a field, without arguments";

pub(crate) const DUPLICATE_FIELD_ATTRIBUTE: &str = "duplicate `#[thread_local_scoped]`";

pub(crate) const FIELD_NOT_THREAD_LOCAL: &str = "`#[thread_local_scoped]` marks a field of type \
     `ThreadLocal<T>` (or a `Box`, `Rc` or `Arc` of one)";

pub(crate) const NO_SCOPED_FIELDS: &str =
    "`#[derive(ThreadLocalScoped)]` found no field marked `#[thread_local_scoped]`";
