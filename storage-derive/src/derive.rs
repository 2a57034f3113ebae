//! The drivers: read the input, check it, then generate the code — or, if
//! anything is wrong, every error at its place plus the fallback stub.

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ast::{Container, Record};
use crate::ctxt::Ctxt;
use crate::{check, expand, fallback};

/// `#[derive(StoredRecord)]`.
pub fn stored_record(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let record = Record::from_ast(&cx, input);
    if let Some(record) = &record {
        check::check(&cx, record);
    }
    match (cx.check(), record) {
        (Ok(()), Some(record)) => expand::record(&record),
        (Err(errors), Some(record)) => {
            let mut out = errors.to_compile_error();
            out.extend(fallback::record(&record));
            out
        }
        (Err(errors), None) => errors.to_compile_error(),
        (Ok(()), None) => TokenStream::new(),
    }
}

/// `#[derive(StoredType)]`.
pub fn stored_type(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let container = Container::from_ast(&cx, input);
    if let Some(container) = &container {
        check::check_container(&cx, container);
    }
    match (cx.check(), container) {
        (Ok(()), Some(container)) => expand::stored_type(&container),
        (Err(errors), Some(container)) => {
            let mut out = errors.to_compile_error();
            out.extend(fallback::stored_type(&container));
            out
        }
        (Err(errors), None) => errors.to_compile_error(),
        (Ok(()), None) => TokenStream::new(),
    }
}
