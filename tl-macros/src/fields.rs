//! Validation for `#[derive(ThreadLocalScoped)]`: which fields are scoped,
//! and that each holds a `ThreadLocal`.
//!
//! Fields with a mistake are reported and left out; the others are still
//! returned, so the derive can emit its method and handlers that call it do
//! not fail too.

use syn::spanned::Spanned as _;
use syn::{
    Attribute, Data, DeriveInput, Field, GenericArgument, Member, Meta, PathArguments, Type,
};

use crate::diag::{self, Errors};

/// The name of the helper attribute on fields.
const ATTRIBUTE: &str = "thread_local_scoped";

/// A field marked `#[thread_local_scoped]`.
pub(crate) struct ScopedField<'a> {
    pub(crate) field: &'a Field,
    pub(crate) member: Member,
}

/// The scoped fields of `input`, and the errors found on the way.
pub(crate) fn scoped_fields(input: &DeriveInput) -> (Vec<ScopedField<'_>>, Option<syn::Error>) {
    let mut errors = Errors::default();
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            errors.push(syn::Error::new(
                data.enum_token.span,
                diag::DERIVE_NOT_A_STRUCT,
            ));
            return (Vec::new(), errors.into_error());
        }
        Data::Union(data) => {
            errors.push(syn::Error::new(
                data.union_token.span,
                diag::DERIVE_NOT_A_STRUCT,
            ));
            return (Vec::new(), errors.into_error());
        }
    };
    let mut scoped = Vec::new();
    let mut marked_any = false;
    for (index, field) in fields.iter().enumerate() {
        if !is_marked(&field.attrs, &mut errors) {
            continue;
        }
        marked_any = true;
        if thread_local_value(&field.ty).is_none() {
            errors.push(syn::Error::new_spanned(
                &field.ty,
                diag::FIELD_NOT_THREAD_LOCAL,
            ));
            continue;
        }
        let member = field
            .ident
            .clone()
            .map_or_else(|| Member::from(index), Member::Named);
        scoped.push(ScopedField { field, member });
    }
    if !marked_any {
        errors.push(syn::Error::new(input.ident.span(), diag::NO_SCOPED_FIELDS));
    }
    (scoped, errors.into_error())
}

/// Whether the field carries the helper attribute; reports arguments and
/// repeats. A field with a malformed attribute still counts as marked.
fn is_marked(attrs: &[Attribute], errors: &mut Errors) -> bool {
    let mut marked = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(ATTRIBUTE)) {
        if marked {
            errors.push(syn::Error::new_spanned(
                attr,
                diag::DUPLICATE_FIELD_ATTRIBUTE,
            ));
        } else if !matches!(attr.meta, Meta::Path(_)) {
            let error = match &attr.meta {
                Meta::List(list) => {
                    syn::Error::new(list.delimiter.span().join(), diag::FIELD_ATTRIBUTE_ARGS)
                }
                Meta::NameValue(nv) => {
                    let (eq, value) = (&nv.eq_token, &nv.value);
                    syn::Error::new_spanned(quote::quote!(#eq #value), diag::FIELD_ATTRIBUTE_ARGS)
                }
                Meta::Path(_) => unreachable!("checked above"),
            };
            errors.push(error);
        }
        marked = true;
    }
    marked
}

/// The `T` of `ThreadLocal<T>`, or of `Box`, `Rc` or `Arc` of one (under any
/// path: `tl_core::ThreadLocal<T>`, `std::sync::Arc<..>`).
fn thread_local_value(ty: &Type) -> Option<&Type> {
    let (name, arg) = single_type_argument(ty)?;
    match name.as_str() {
        "ThreadLocal" => Some(arg),
        "Box" | "Rc" | "Arc" => match single_type_argument(arg)? {
            (inner, value) if inner == "ThreadLocal" => Some(value),
            _ => None,
        },
        _ => None,
    }
}

/// `Name<Arg>` as the last segment of a path type.
fn single_type_argument(ty: &Type) -> Option<(String, &Type)> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segment = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    let mut args = args.args.iter();
    match (args.next(), args.next()) {
        (Some(GenericArgument::Type(arg)), None) => Some((segment.ident.to_string(), arg)),
        _ => None,
    }
}

impl ScopedField<'_> {
    /// The span that names the field: its identifier, or its type in a
    /// tuple struct.
    pub(crate) fn name_span(&self) -> proc_macro2::Span {
        self.field
            .ident
            .as_ref()
            .map_or_else(|| self.field.ty.span(), syn::Ident::span)
    }
}
