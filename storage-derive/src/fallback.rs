//! What the derives emit beside their errors when the input is invalid: the
//! impls and the key type the rest of the program refers to, with no
//! behaviour, so that the user sees the real problem and not its echoes.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};

use crate::ast::{Container, Field, Record};
use crate::check;
use crate::expand;

/// The stub of `#[derive(StoredRecord)]`.
pub fn record(record: &Record<'_>) -> TokenStream {
    let krate = record.krate();
    let ident = record.ident;
    let keys: Vec<&Field<'_>> = record.keys().collect();
    let usable = (1..=check::MAX_KEY_FIELDS).contains(&keys.len())
        && keys
            .iter()
            .all(|f| check::key_type_problem("", f.ty).is_none());
    let key_ident = record.key_ident();
    let key_alias = if usable {
        expand::key_alias(record, &keys)
    } else {
        let vis = record.vis;
        quote!(#vis type #key_ident = u64;)
    };
    let accessors = expand::accessors(record, &krate);
    let unreachable =
        quote_spanned!(Span::call_site()=> ::core::unreachable!("`StoredRecord` derive failed"));
    let table = record.table();
    let ident_tokens = ident.to_token_stream();
    quote! {
        #key_alias

        const _: () = {
            fn __layout() -> &'static #krate::Layout { #unreachable }

            #[automatically_derived]
            impl #krate::StoredType for #ident_tokens {
                fn layout(_: &mut #krate::layout::Describer) -> #krate::Layout {
                    #krate::Layout::Unit
                }
            }

            #[automatically_derived]
            impl #krate::StoredRecord for #ident_tokens {
                type Key = #key_ident;
                type KeyRef<'__a> = #key_ident where Self: '__a;
                const SCHEMA: &'static #krate::Schema = &#krate::Schema {
                    table: #table,
                    record: "",
                    version: 0,
                    key: &[],
                    indexes: &[],
                    layout: __layout,
                    key_layout: ::core::option::Option::None,
                    previous: ::core::option::Option::None,
                    changes: false,
                };
                fn key_ref(&self) -> <Self as #krate::StoredRecord>::KeyRef<'_> { #unreachable }
                fn key(&self) -> <Self as #krate::StoredRecord>::Key { #unreachable }
            }
        };

        #accessors
    }
}

/// The stub of `#[derive(StoredType)]`.
pub fn stored_type(container: &Container<'_>) -> TokenStream {
    let krate = container.krate();
    let ident = container.ident;
    let (impl_generics, ty_generics, where_clause) = container.input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::StoredType for #ident #ty_generics #where_clause {
            fn layout(_: &mut #krate::layout::Describer) -> #krate::Layout {
                #krate::Layout::Unit
            }
        }
    }
}
