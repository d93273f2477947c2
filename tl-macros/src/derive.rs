//! Expansion of `#[derive(ThreadLocalScoped)]`: an implementation of the
//! hidden trait `ScopedFields`, whose method names each scoped field's key
//! and returns the fields' guards.
//!
//! ```text
//! impl ScopedFields for OrderService {
//!     // `(Guard<Conn>, Guard<UserId>)`, opaque: `Conn` may be private.
//!     fn __thread_local_scoped_guards(&self) -> impl Sized {
//!         let guard_0 = {
//!             let key: &ThreadLocal<_> = &self.current_user;
//!             ::tl_core::__private::label(key, "OrderService.current_user", Some(here()));
//!             guard(key)
//!         };
//!         let guard_1 = { /* the same for `conn` */ };
//!         (guard_1, guard_0)
//!     }
//! }
//! ```
//!
//! A second method, `__thread_local_scoped_carried`, returns the fields'
//! `Carried` states for `async fn` handlers: nested pairs in field order
//! (`(carried(&self.a), (carried(&self.b), ()))`), also opaque.
//!
//! Each key is named on every call: once a key has a name, `label` is two
//! loads and keeps the first name (a service with several instances names
//! each instance's keys the same way).
//!
//! The tuple lists the guards in reverse order because a tuple drops its
//! elements first to last and guards must drop in reverse order of
//! creation. The guards hold key ids, not borrows, so the tuple does not
//! borrow `self` and `&mut self` handlers compile.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;

use crate::expand::{SERVICE_CARRIED, SERVICE_GUARDS, unraw};
use crate::fields::ScopedField;

pub(crate) fn expand(input: &DeriveInput, fields: &[ScopedField<'_>]) -> TokenStream {
    let service = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let method = syn::Ident::new(SERVICE_GUARDS, Span::call_site());
    let key = syn::Ident::new("key", Span::mixed_site());
    let vars: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("guard_{}", i, span = Span::mixed_site()))
        .collect();
    let lets = fields.iter().zip(&vars).map(|(field, var)| {
        let member = &field.member;
        let name = field_name(service, member);
        // `here` records its caller: spanned on the field's name, the key
        // is reported as declared there.
        let here = quote_spanned!(field.name_span()=> ::tl_core::__private::here());
        // `label` is two loads once the key is named, so naming it on every
        // call costs no more than a per-call-site flag would.
        quote! {
            let #var = {
                let #key: &::tl_core::__private::ThreadLocal<_> = &self.#member;
                ::tl_core::__private::label(
                    #key,
                    #name,
                    ::core::option::Option::Some(#here),
                );
                ::tl_core::__private::guard(#key)
            };
        }
    });
    let rev_vars = vars.iter().rev();
    let carried = carried(service, fields);
    quote! {
        impl #impl_generics ::tl_core::__private::ScopedFields for #service #ty_generics #where_clause {
            #[inline]
            fn #method(&self) -> impl ::core::marker::Sized + 'static {
                #(#lets)*
                (#(#rev_vars,)*)
            }

            #carried
        }
    }
}

/// The method for `async fn` handlers: the fields' carried states, as
/// nested pairs in field order (`(a, (b, ()))`), each key named as above.
fn carried(service: &syn::Ident, fields: &[ScopedField<'_>]) -> TokenStream {
    let method = syn::Ident::new(SERVICE_CARRIED, Span::call_site());
    let key = syn::Ident::new("key", Span::mixed_site());
    let states = fields.iter().rev().fold(quote!(()), |rest, field| {
        let member = &field.member;
        let name = field_name(service, member);
        let here = quote_spanned!(field.name_span()=> ::tl_core::__private::here());
        quote! {
            ({
                let #key: &::tl_core::__private::ThreadLocal<_> = &self.#member;
                ::tl_core::__private::label(
                    #key,
                    #name,
                    ::core::option::Option::Some(#here),
                );
                ::tl_core::__private::carried(#key)
            }, #rest)
        }
    });
    quote! {
        #[inline]
        fn #method(&self) -> impl ::tl_core::__private::Carry + 'static {
            #states
        }
    }
}

/// A field's report name: `Service.field`.
fn field_name(service: &syn::Ident, member: &syn::Member) -> String {
    match member {
        syn::Member::Named(ident) => format!("{}.{}", unraw(service), unraw(ident)),
        syn::Member::Unnamed(index) => format!("{}.{}", unraw(service), index.index),
    }
}
