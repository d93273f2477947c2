//! Phase 3 of `#[thread_local_scoped(..)]`: the guarded function.
//!
//! The expansion is what a careful human writes by hand (a task scope, one
//! guard per key), plus naming each static once per call site:
//!
//! ```text
//! fn place_order(&self, req: Order) -> Result<Receipt, Error> {
//!     let __tl_task = ::tl_core::__private::TaskScope::enter("shop::place_order");
//!     let __tl_guard_0 = {
//!         static __TL_LABELLED: AtomicBool = AtomicBool::new(false);
//!         let key: &::tl_core::__private::ThreadLocal<_> = &CURRENT_USER;
//!         if !__TL_LABELLED.load(Relaxed) {
//!             __TL_LABELLED.store(true, Relaxed);
//!             ::tl_core::__private::ThreadLocal::label(key, "CURRENT_USER", None);
//!         }
//!         ::tl_core::__private::guard(key)
//!     };
//!     let __tl_guard_1 = {
//!         let key: &::tl_core::__private::ThreadLocal<_> = &self.conn;
//!         ::tl_core::__private::guard(key)
//!     };
//!     { /* the body, unchanged */ }
//! }
//! ```
//!
//! Locals drop in reverse order, so on every way out of the body (its end,
//! `return`, `?`, a panic that unwinds) the guards clean up first, in
//! reverse order, and the task scope then reports anything else the task
//! left bound. The locals are named with `Span::mixed_site()`, so the body
//! can neither see nor shadow them; the body stays one block, so its own
//! locals drop before the guards run.
//!
//! An `async fn` gets no guards (they would run on whichever thread ends
//! the future): its body becomes an `async move` block inside
//! `__private::task_future`, with each key's carried state, as nested pairs
//! in key order, which guards every poll instead (see `tl_core`'s `carry`):
//!
//! ```text
//! async fn lookup(&self, id: u64) -> Option<Order> {
//!     ::tl_core::__private::task_future(
//!         "shop::lookup",
//!         ::tl_core::__private::here(),
//!         ({ /* name CURRENT_USER */ carried(&CURRENT_USER) }, ({ carried(&self.conn) }, ())),
//!         async move { /* the body, unchanged */ },
//!     )
//!     .await
//! }
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{AttrStyle, Ident, ItemFn, Path};

use crate::args::Key;
use crate::validate::Handler;

/// The method of `ScopedFields` that `#[derive(ThreadLocalScoped)]`
/// implements and the argument `self` (or no argument) calls.
pub(crate) const SERVICE_GUARDS: &str = "__thread_local_scoped_guards";

/// The same for an `async fn`: the fields' carried states.
pub(crate) const SERVICE_CARRIED: &str = "__thread_local_scoped_carried";

pub(crate) fn handler(handler: Handler) -> TokenStream {
    let Handler { func, keys, task } = handler;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let (inner, outer): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));

    let task_name = task.map_or_else(
        || {
            let name = unraw(&sig.ident);
            quote!(::core::concat!(::core::module_path!(), "::", #name))
        },
        |name| quote!(#name),
    );
    if sig.asyncness.is_some() {
        let carry = keys.iter().rev().fold(quote!(()), |rest, key| {
            let state = carried(key);
            quote!((#state, #rest))
        });
        // Spanned on the function's name, like `enter` below.
        let here = quote_spanned!(sig.ident.span()=> ::tl_core::__private::here());
        // A service without the derive is one error on `self`: the future's
        // own `Carry` bound, spanned there too, repeats it word for word,
        // and rustc reports it once.
        let span = keys
            .iter()
            .find_map(|key| match key {
                Key::Service(self_token) => Some(self_token.span),
                _ => None,
            })
            .unwrap_or_else(Span::call_site);
        let future = quote_spanned!(span=>
            ::tl_core::__private::task_future(#task_name, #here, #carry, async move #block).await);
        return quote! {
            #(#outer)*
            #vis #sig {
                #(#inner)*
                #future
            }
        };
    }

    let task_var = Ident::new("__tl_task", Span::mixed_site());
    // `enter` records its caller, the call's span (a `#[track_caller]`
    // location is that of the whole call expression): spanned on the
    // function's name, the task is reported as declared there.
    let enter =
        quote_spanned!(sig.ident.span()=> ::tl_core::__private::TaskScope::enter(#task_name));
    let guards = keys.iter().enumerate().map(|(i, key)| guard(i, key));

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            let #task_var = #enter;
            #(#guards)*
            #block
        }
    }
}

/// The `let` for one key (with, for a static, the statement that names it).
fn guard(index: usize, key: &Key) -> TokenStream {
    let var = format_ident!("__tl_guard_{}", index, span = Span::mixed_site());
    let value = per_key(key, &quote!(guard), SERVICE_GUARDS_FN);
    quote!(let #var = #value;)
}

/// The carried state of one key, for an `async fn`: an expression that
/// borrows the key only while it runs.
fn carried(key: &Key) -> TokenStream {
    per_key(key, &quote!(carried), SERVICE_CARRIED_FN)
}

const SERVICE_GUARDS_FN: &str = "scoped_guards";
const SERVICE_CARRIED_FN: &str = "scoped_carried";

/// `__private::<make>(key)` for one key, or `__private::<service>::<Self>(&self)`.
fn per_key(key: &Key, make: &TokenStream, service: &str) -> TokenStream {
    match key {
        Key::Static(path) => {
            let reference = quote_spanned!(path.span()=> &#path);
            let name = static_name(path);
            typed_key(make, &reference, Some(&name))
        }
        Key::Field {
            self_token,
            members,
        } => {
            let reference = quote_spanned!(self_token.span=> &#self_token #(.#members)*);
            typed_key(make, &reference, None)
        }
        Key::Service(self_token) => {
            // Through a bound, not a method call: a type without the derive
            // is then an unmet bound, and the trait's diagnostic says what
            // to add. `&self` deref-coerces to `&Self` from `&Self`,
            // `&mut Self`, `Box<Self>` and `Arc<Self>` receivers alike.
            let service = Ident::new(service, Span::call_site());
            quote_spanned!(self_token.span=>
                ::tl_core::__private::#service::<Self>(&#self_token))
        }
    }
}

/// `{ ..; make(key) }`, with the key typed once, on the user's tokens: a
/// key that is not a `ThreadLocal` is one error there, not one per use.
///
/// A static is also named after itself, once per call site: a static's key
/// never changes, so after the first call naming costs one relaxed load of
/// a flag (and `label` keeps a name the static was given).
fn typed_key(make: &TokenStream, reference: &TokenStream, name: Option<&str>) -> TokenStream {
    let key = Ident::new("key", Span::mixed_site());
    let (flag, label) = name.map_or_else(Default::default, |name| {
        let flag = quote! {
            static __TL_LABELLED: ::core::sync::atomic::AtomicBool =
                ::core::sync::atomic::AtomicBool::new(false);
        };
        let label = quote! {
            if !__TL_LABELLED.load(::core::sync::atomic::Ordering::Relaxed) {
                __TL_LABELLED.store(true, ::core::sync::atomic::Ordering::Relaxed);
                ::tl_core::__private::ThreadLocal::label(#key, #name, ::core::option::Option::None);
            }
        };
        (flag, label)
    });
    quote! {
        {
            #flag
            let #key: &::tl_core::__private::ThreadLocal<_> = #reference;
            #label
            ::tl_core::__private::#make(#key)
        }
    }
}

/// A static's report name: its own identifier, wherever the path starts
/// (so every handler names it alike).
fn static_name(path: &Path) -> String {
    path.segments
        .last()
        .map_or_else(String::new, |segment| unraw(&segment.ident))
}

/// An identifier without its `r#`.
pub(crate) fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map_or(name.clone(), str::to_owned)
}
