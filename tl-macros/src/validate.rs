//! Phase 2 of `#[thread_local_scoped(..)]`: checking the arguments against
//! the item they annotate. Every mistake is collected; the caller emits the
//! item unchanged next to the errors, so one mistake reports one error.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens as _;
use syn::spanned::Spanned as _;
use syn::{
    Fields, GenericArgument, Item, ItemFn, LitStr, PathArguments, ReturnType, Token, TraitItemFn,
    Type, TypeParamBound,
};

use crate::args::{Arg, Key};
use crate::diag::{self, Errors};

/// A function the attribute can guard, and what to guard.
pub(crate) struct Handler {
    pub(crate) func: ItemFn,
    /// The thread-locals to clean up, in the order written; never empty.
    pub(crate) keys: Vec<Key>,
    /// `task = ".."`, if given.
    pub(crate) task: Option<LitStr>,
}

/// Checks `args` (already parsed, with `arg_errors` for those that did not
/// parse) against `item`. On error, also returns the item to emit in place
/// of the input.
pub(crate) fn handler(
    args: Vec<Arg>,
    arg_errors: Option<syn::Error>,
    item: TokenStream,
) -> Result<Handler, (syn::Error, TokenStream)> {
    let mut errors = Errors::default();
    // A malformed argument was meant as a key: do not also report "no keys".
    let malformed = arg_errors.is_some();
    if let Some(error) = arg_errors {
        errors.push(error);
    }
    let func = match function(item.clone()) {
        Ok(func) => func,
        Err((error, emit)) => {
            errors.push(error);
            // The item is not a function: the argument errors still stand.
            check_args(args, None, malformed, &mut errors);
            let error = errors.into_error().expect("an error was pushed");
            return Err((error, emit.unwrap_or(item)));
        }
    };
    check_signature(&func, &mut errors);
    let receiver = func.sig.receiver().map(|receiver| receiver.self_token);
    let (keys, task) = check_args(args, Some(receiver), malformed, &mut errors);
    errors
        .finish(Handler { func, keys, task })
        .map_err(|error| (error, item))
}

/// The annotated item as a function with a body, or the error for what it
/// is instead (and, when the input cannot be emitted as is, what to emit).
fn function(item: TokenStream) -> Result<ItemFn, (syn::Error, Option<TokenStream>)> {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => Ok(func),
        Ok(Item::Struct(mut strukt)) => {
            let error = syn::Error::new(strukt.struct_token.span, diag::NOT_A_FUNCTION);
            // Field attributes would each add rustc's "expected non-macro
            // attribute": drop them from the item emitted next to the error.
            strip_field_attributes(&mut strukt.fields);
            Err((error, Some(strukt.into_token_stream())))
        }
        Ok(Item::Verbatim(_)) | Err(_) => match syn::parse2::<TraitItemFn>(item) {
            // `fn f(&self);` in a trait (or an extern block).
            Ok(TraitItemFn {
                default: None,
                semi_token: Some(semi),
                ..
            }) => Err((syn::Error::new(semi.span, diag::NO_BODY), None)),
            _ => Err((
                syn::Error::new(Span::call_site(), diag::NOT_A_FUNCTION),
                None,
            )),
        },
        Ok(other) => Err((
            syn::Error::new(keyword_span(&other), diag::NOT_A_FUNCTION),
            None,
        )),
    }
}

fn strip_field_attributes(fields: &mut Fields) {
    for field in fields.iter_mut() {
        field
            .attrs
            .retain(|attr| !attr.path().is_ident("thread_local_scoped"));
    }
}

/// The token that says what kind of item this is (`enum`, `const`, ...).
fn keyword_span(item: &Item) -> Span {
    match item {
        Item::Const(item) => item.const_token.span,
        Item::Enum(item) => item.enum_token.span,
        Item::ExternCrate(item) => item.extern_token.span,
        Item::ForeignMod(item) => item.abi.extern_token.span,
        Item::Impl(item) => item.impl_token.span,
        Item::Macro(item) => item.mac.path.span(),
        Item::Mod(item) => item.mod_token.span,
        Item::Static(item) => item.static_token.span,
        Item::Trait(item) => item.trait_token.span,
        Item::TraitAlias(item) => item.trait_token.span,
        Item::Type(item) => item.type_token.span,
        Item::Union(item) => item.union_token.span,
        Item::Use(item) => item.use_token.span,
        other => other.span(),
    }
}

fn check_signature(func: &ItemFn, errors: &mut Errors) {
    if let Some(constness) = func.sig.constness {
        errors.push(syn::Error::new(constness.span, diag::CONST_FN));
    }
    if func.sig.asyncness.is_none() {
        if let Some(ty) = returned_future(&func.sig.output) {
            errors.push(syn::Error::new_spanned(ty, diag::RETURNS_FUTURE));
        }
    }
}

/// The return type, if it is a future that a plain `fn` returns: `impl
/// Future` (or `IntoFuture`), `Pin<Box<dyn Future>>`, `Box<dyn Future>`, or
/// futures' `BoxFuture`/`LocalBoxFuture`. Guards would run when the
/// function returns it, before it runs. (A named future type is not seen.)
fn returned_future(output: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    is_future(ty).then_some(&**ty)
}

fn is_future(ty: &Type) -> bool {
    let is_future_bound = |bound: &TypeParamBound| {
        matches!(bound, TypeParamBound::Trait(bound)
            if bound.path.segments.last().is_some_and(|s| s.ident == "Future" || s.ident == "IntoFuture"))
    };
    match ty {
        Type::ImplTrait(ty) => ty.bounds.iter().any(is_future_bound),
        Type::TraitObject(ty) => ty.bounds.iter().any(is_future_bound),
        Type::Paren(ty) => is_future(&ty.elem),
        Type::Group(ty) => is_future(&ty.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return false;
            };
            if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
                return true;
            }
            if last.ident != "Pin" && last.ident != "Box" {
                return false;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return false;
            };
            args.args
                .iter()
                .any(|arg| matches!(arg, GenericArgument::Type(inner) if is_future(inner)))
        }
        _ => false,
    }
}

/// Checks the arguments: duplicates, keywords, and `self` without a
/// receiver. `receiver` is `None` when the item is not a function (only the
/// arguments' own mistakes are reported then), `Some(None)` for a function
/// without `self`. `malformed`: some argument did not parse.
fn check_args(
    args: Vec<Arg>,
    receiver: Option<Option<Token![self]>>,
    malformed: bool,
    errors: &mut Errors,
) -> (Vec<Key>, Option<LitStr>) {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut task = None;
    let mut wrote_keys = malformed;
    for arg in args {
        match arg {
            Arg::Key(key) => {
                wrote_keys = true;
                let shown = show(&key);
                if !seen.insert(shown.clone()) {
                    errors.push(syn::Error::new_spanned(
                        key_tokens(&key),
                        diag::duplicate_key(shown),
                    ));
                } else if let (Some(None), Some(self_token)) = (receiver, key_self(&key)) {
                    errors.push(syn::Error::new(
                        self_token.span,
                        diag::SELF_WITHOUT_RECEIVER,
                    ));
                } else {
                    keys.push(key);
                }
            }
            Arg::Task { keyword, value } => {
                if task.is_some() {
                    errors.push(syn::Error::new(keyword.span, diag::DUPLICATE_TASK));
                } else {
                    match syn::parse2::<LitStr>(value.clone()) {
                        Ok(name) => task = Some(name),
                        Err(_) if value.is_empty() => {
                            errors.push(syn::Error::new(keyword.span, diag::TASK_NOT_A_STRING));
                        }
                        Err(_) => {
                            errors.push(syn::Error::new_spanned(value, diag::TASK_NOT_A_STRING));
                        }
                    }
                }
            }
            Arg::Unknown { keyword } => {
                errors.push(syn::Error::new(
                    keyword.span(),
                    diag::unknown_keyword(&keyword),
                ));
            }
        }
    }
    // No key written (or only `task`): the scoped fields of `self`.
    if !wrote_keys {
        match receiver {
            Some(Some(self_token)) => keys.push(Key::Service(self_token)),
            Some(None) => errors.push(syn::Error::new(Span::call_site(), diag::NOTHING_TO_GUARD)),
            None => {}
        }
    }
    (keys, task)
}

/// The key as the user wrote it, without spaces: what duplicates compare.
fn show(key: &Key) -> String {
    key_tokens(key).to_string().replace(' ', "")
}

fn key_tokens(key: &Key) -> TokenStream {
    match key {
        Key::Static(path) => path.to_token_stream(),
        Key::Field {
            self_token,
            members,
        } => quote::quote!(#self_token #(.#members)*),
        Key::Service(self_token) => self_token.to_token_stream(),
    }
}

fn key_self(key: &Key) -> Option<Token![self]> {
    match key {
        Key::Static(_) => None,
        Key::Field { self_token, .. } | Key::Service(self_token) => Some(*self_token),
    }
}
