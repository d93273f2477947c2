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
//!             ::tl_core::__private::label(key, "CURRENT_USER", None);
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
//! async fn lookup(&self, id: u64, (from, to): (Day, Day), _: Permit) -> Option<Order> {
//!     ::tl_core::__private::task_future(
//!         "shop::lookup",
//!         ::tl_core::__private::here(),
//!         ({ /* name CURRENT_USER */ carried(&CURRENT_USER) }, ({ carried(&self.conn) }, ())),
//!         async move {
//!             let _ = &self;
//!             let id = id;
//!             let __tl_arg2 = __tl_arg2;
//!             let (from, to) = __tl_arg2;
//!             let __tl_arg3 = __tl_arg3;
//!             { /* the body, unchanged */ }
//!         },
//!     )
//!     .await
//! }
//! ```
//!
//! (in the signature, `(from, to)` and `_` become `__tl_arg2` and
//! `__tl_arg3`). The block opens as rustc's lowering of an `async fn` body
//! does: every parameter, named by the body or not, is moved into it and
//! rebound, so they all drop at the end of the body, after its locals and
//! in reverse order, as in a plain `async fn`, but inside the task (its
//! last poll, or the drop of a cancelled future): their destructors see the
//! task's values, and what they bind is the task's. Left to the outer
//! `async fn`, a parameter the body never names would drop after `.await`
//! returns, outside the task. A receiver cannot be rebound: `let _ = &self`
//! moves it into the block, whose captures drop after its locals, last, as
//! the first parameter does. The block is of this crate's edition (2024),
//! so the body's tail temporaries drop before the parameters, as rustc's
//! lowering has them, whatever the caller's edition.

use std::mem;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens as _, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{AttrStyle, Attribute, FnArg, Ident, ItemFn, Pat, PatIdent, Path, Signature};

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
        let (sig, params) = params_into_body(sig);
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
        // As rustc lowers an `async fn`: the parameters are rebound first,
        // then the body. This block is of this crate's edition (2024),
        // whose tail expression's temporaries drop before the block's
        // locals: the body's drop before its parameters, as in a plain
        // `async fn`, in a caller's crate of any edition.
        let body = quote! {
            async move {
                #params
                #block
            }
        };
        let future = quote_spanned!(span=>
            ::tl_core::__private::task_future(#task_name, #here, #carry, #body).await);
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

/// Moves every parameter of an `async fn` into the body's `async move`
/// block, as rustc's lowering of an `async fn` moves them into its body:
/// without this, a parameter the body never names stays in the outer
/// `async fn` and drops after the task, outside its scopes.
///
/// Returns the signature with each parameter that is not a plain binding
/// (`(a, b): (A, B)`, `Foo { x, .. }: Foo`, `_: T`, `ref x: T`) renamed to a
/// hidden `__tl_argN`, and the statements that open the block: per
/// parameter in order, `let x = x;` or `let __tl_argN = __tl_argN; let
/// <pat> = __tl_argN;` (for `ref x`, `let x = &__tl_argN;`, which is what
/// it means), so that they drop in reverse order after the body's
/// locals, as in a plain `async fn`. A receiver is named once
/// (`let _ = &self;`), which moves it into the block, whose captures drop
/// after its locals: last, as the first parameter does. A parameter's
/// attributes go on its statements (its `#[cfg]` on every one, so that a
/// removed parameter is not rebound); only `#[cfg]` and `#[cfg_attr]` stay in
/// the signature, where a lint attribute would now see the parameter used.
fn params_into_body(mut sig: Signature) -> (Signature, TokenStream) {
    let mut statements = TokenStream::new();
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        let param = match input {
            FnArg::Receiver(receiver) => {
                let self_token = receiver.self_token;
                let cfg = cfg_attrs(&receiver.attrs);
                statements.extend(quote!(#(#cfg)* let _ = &#self_token;));
                continue;
            }
            FnArg::Typed(param) => param,
        };
        let attrs = mem::take(&mut param.attrs);
        let cfg: Vec<_> = cfg_attrs(&attrs).cloned().collect();
        param.attrs.clone_from(&cfg);
        match &mut *param.pat {
            // A plain binding keeps its name (rustdoc shows it); `mut` moves
            // to the `let`, which is what mutates it.
            Pat::Ident(PatIdent {
                by_ref: None,
                mutability,
                ident,
                subpat: None,
                ..
            }) => {
                let mutability = mutability.take();
                statements.extend(quote!(#(#attrs)* let #mutability #ident = #ident;));
            }
            // `ref x: T` (clippy's `toplevel_ref_arg` would flag its `let`).
            Pat::Ident(PatIdent {
                by_ref: Some(by_ref),
                mutability,
                ident,
                subpat: None,
                ..
            }) => {
                let hidden = format_ident!("__tl_arg{}", index, span = Span::mixed_site());
                let borrow = quote_spanned!(by_ref.span=> &#mutability);
                statements.extend(quote! {
                    #(#cfg)* let #mutability #hidden = #hidden;
                    #(#attrs)* let #ident = #borrow #hidden;
                });
                *param.pat = Pat::Verbatim(hidden.to_token_stream());
            }
            pat => {
                let hidden = format_ident!("__tl_arg{}", index, span = Span::mixed_site());
                let pat = mem::replace(pat, Pat::Verbatim(hidden.to_token_stream()));
                // `mut` only for a pattern that borrows it mutably.
                let mutability = binds_ref_mut(pat.to_token_stream()).then(|| quote!(mut));
                statements.extend(quote!(#(#cfg)* let #mutability #hidden = #hidden;));
                if !matches!(pat, Pat::Wild(_)) {
                    statements.extend(quote!(#(#attrs)* let #pat = #hidden;));
                }
            }
        }
    }
    (sig, statements)
}

/// A parameter's `#[cfg]` and `#[cfg_attr]` attributes.
fn cfg_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr"))
}

/// Whether a pattern binds anything by `ref mut`.
fn binds_ref_mut(tokens: TokenStream) -> bool {
    let mut after_ref = false;
    tokens.into_iter().any(|token| match token {
        TokenTree::Group(group) => {
            after_ref = false;
            binds_ref_mut(group.stream())
        }
        TokenTree::Ident(ident) => {
            let found = after_ref && ident == "mut";
            after_ref = ident == "ref";
            found
        }
        _ => {
            after_ref = false;
            false
        }
    })
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
                ::tl_core::__private::label(#key, #name, ::core::option::Option::None);
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
