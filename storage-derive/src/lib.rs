//! `#[derive(StoredRecord)]` for the `storage` crate.
//!
//! Use it through the `storage` facade: `use storage::StoredRecord;`. The
//! attributes and what the derive generates are documented on the re-export
//! there. This crate only holds the macro: `lib.rs` parses the input and hands
//! it to the stages — `ast` (the struct as the macro sees it), `attr`
//! (attribute parsing), `check` (the rules) and `expand` (code generation).

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod types;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `storage::StoredRecord`; see the documentation of the re-export in
/// the `storage` crate.
#[proc_macro_derive(StoredRecord, attributes(stored, key, index))]
pub fn derive_stored_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
