//! Phase 1 of `#[thread_local_scoped(..)]`: parsing the attribute's arguments.
//!
//! Arguments are split at top-level commas and each one is parsed on its
//! own, so that every bad argument gets its own error on its own tokens
//! (the caller combines them) instead of the first one hiding the rest.
//! Keyword arguments are parsed loosely (`name = anything`) and judged by
//! the validation phase, which owns the messages.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::{Ident, Member, Path, Token};

use crate::diag::{self, Errors};

pub(crate) mod kw {
    syn::custom_keyword!(task);
}

/// One thread-local, or set of them, to clean up when the body exits.
pub(crate) enum Key {
    /// `CURRENT_USER`, `crate::auth::CURRENT_USER`: a `static`.
    Static(Path),
    /// `self.conn`, `self.inner.conn`: a field reached from the receiver.
    Field {
        self_token: Token![self],
        members: Vec<Member>,
    },
    /// `self`: every `#[thread_local_scoped]` field of a service that derives
    /// `ThreadLocalScoped` (what the attribute means without arguments).
    Service(Token![self]),
}

/// One argument, as written.
pub(crate) enum Arg {
    Key(Key),
    /// `task = "checkout"`: the task name given to the auditor.
    Task {
        keyword: kw::task,
        value: TokenStream,
    },
    /// `something = ...` for any other `something`.
    Unknown {
        keyword: Ident,
    },
}

/// Parses the attribute's arguments; returns those that parsed and the
/// combined errors of those that did not.
pub(crate) fn parse(tokens: TokenStream) -> (Vec<Arg>, Option<syn::Error>) {
    let mut args = Vec::new();
    let mut errors = Errors::default();
    for chunk in split_at_commas(tokens) {
        match chunk {
            Chunk::Arg(tokens) => match Arg::parse.parse2(tokens.clone()) {
                Ok(arg) => args.push(arg),
                // The parser's own "expected ..." would name token kinds;
                // the canonical message names what the user meant to write.
                Err(_) => errors.push(syn::Error::new_spanned(tokens, diag::NOT_A_KEY)),
            },
            Chunk::Empty(comma) => errors.push(syn::Error::new(comma.span(), diag::NOT_A_KEY)),
        }
    }
    (args, errors.into_error())
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let is_assignment = input.peek2(Token![=]) && !input.peek2(Token![==]);
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::task) && is_assignment {
            let keyword = input.parse()?;
            input.parse::<Token![=]>()?;
            let value = input.parse()?;
            Ok(Self::Task { keyword, value })
        } else if input.peek(Ident::peek_any) && is_assignment {
            let keyword = input.call(Ident::parse_any)?;
            input.parse::<Token![=]>()?;
            input.parse::<TokenStream>()?;
            Ok(Self::Unknown { keyword })
        } else if lookahead.peek(Token![self]) && !input.peek2(Token![::]) {
            let self_token = input.parse()?;
            let mut members = Vec::new();
            while input.peek(Token![.]) {
                input.parse::<Token![.]>()?;
                members.push(input.parse()?);
            }
            Ok(Self::Key(if members.is_empty() {
                Key::Service(self_token)
            } else {
                Key::Field {
                    self_token,
                    members,
                }
            }))
        } else if lookahead.peek(Ident::peek_any) || lookahead.peek(Token![::]) {
            Path::parse_mod_style(input).map(|path| Self::Key(Key::Static(path)))
        } else {
            Err(lookahead.error())
        }
    }
}

enum Chunk {
    Arg(TokenStream),
    /// A comma with nothing before it: `(a,, b)` or `(, a)`.
    Empty(TokenTree),
}

/// Splits at top-level commas; one trailing comma is allowed.
fn split_at_commas(tokens: TokenStream) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current = TokenStream::new();
    for tree in tokens {
        match &tree {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                if current.is_empty() {
                    chunks.push(Chunk::Empty(tree));
                } else {
                    chunks.push(Chunk::Arg(core::mem::take(&mut current)));
                }
            }
            _ => current.extend([tree]),
        }
    }
    if !current.is_empty() {
        chunks.push(Chunk::Arg(current));
    }
    chunks
}
