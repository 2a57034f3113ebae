//! `#[derive(StoredRecord)]` and `#[derive(StoredType)]` for the `storage`
//! crate.
//!
//! Use them through the `storage` facade: `use storage::{StoredRecord,
//! StoredType};`. The attributes and what the derives generate are
//! documented on the re-exports there. This crate only holds the macros:
//! `lib.rs` is the door, `derive` the drivers, and the stages are `ast` (the
//! input as the macro sees it), `attr` (attribute parsing), `check` (the
//! rules), `expand` (code generation) and `fallback` (the stubs emitted
//! beside errors).

mod ast;
mod attr;
mod check;
mod ctxt;
mod derive;
mod expand;
mod fallback;
mod types;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `storage::StoredRecord`; see the documentation of the re-export in
/// the `storage` crate.
#[proc_macro_derive(StoredRecord, attributes(stored, key, index))]
pub fn derive_stored_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive::stored_record(&input).into()
}

/// Derives `storage::StoredType` for a struct or enum held in records; see
/// the documentation of the re-export in the `storage` crate.
#[proc_macro_derive(StoredType, attributes(stored))]
pub fn derive_stored_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive::stored_type(&input).into()
}
