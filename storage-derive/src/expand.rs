//! Code generation. Validation is done by the time anything here runs.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Path, Type};

use crate::ast::{Container, Contents, Field, Index, Member, Record};
use crate::check;
use crate::types::{self, Shape};

/// Everything `#[derive(StoredRecord)]` generates for a valid record.
pub fn record(record: &Record<'_>) -> TokenStream {
    let krate = record.krate();
    let ident = record.ident;
    let keys: Vec<&Field<'_>> = record.keys().collect();
    let key_alias = key_alias(record, &keys);
    let key_types = keys.iter().map(|f| f.ty);
    let key_names = keys.iter().map(|f| f.ident);
    let (key_ref_type, key_ref, key) = match (&record.attrs.key_by, keys.as_slice()) {
        (Some((method, ty)), _) => (
            quote!(#ty),
            quote!(Self::#method(self)),
            quote!(Self::#method(self)),
        ),
        (None, [field]) => {
            let (name, ty) = (field.ident, field.ty);
            (
                quote!(&'__a #ty),
                quote!(&self.#name),
                quote!(::core::clone::Clone::clone(&self.#name)),
            )
        }
        (None, _) => (
            quote!((#(&'__a #key_types,)*)),
            quote!((#(&self.#key_names,)*)),
            {
                let names = keys.iter().map(|f| f.ident);
                quote!((#(::core::clone::Clone::clone(&self.#names),)*))
            },
        ),
    };
    let key_ident = record.key_ident();
    let table = record.table();
    let version = record.version();
    let type_name = ident.to_string();
    let key_fields: Vec<String> = match &record.attrs.key_by {
        Some((method, _)) => vec![format!("{}()", method.unraw())],
        None => keys.iter().map(|f| f.ident.unraw().to_string()).collect(),
    };
    let (key_layout, key_layout_fn) = match &record.attrs.key_by {
        Some((_, ty)) => (
            quote!(::core::option::Option::Some(__key_layout)),
            quote! {
                /// The computed key's layout, described once.
                fn __key_layout() -> &'static #krate::Layout {
                    static LAYOUT: #krate::__private::OnceLock<#krate::Layout> = #krate::__private::OnceLock::new();
                    LAYOUT.get_or_init(#krate::layout::Describer::layout_of::<#ty>)
                }
            },
        ),
        None => (quote!(::core::option::Option::None), TokenStream::new()),
    };
    let layout = struct_layout(&krate, &type_name, &record.members());
    let (previous, upgrade, migration) = migration(record, &krate);
    let changes = record.attrs.changes;
    let keeps_changes = if changes {
        quote! {
            #[automatically_derived]
            impl #krate::KeepsChanges for #ident {}
        }
    } else {
        TokenStream::new()
    };
    let assertions = assertions(record, &krate, &keys);
    let accessors = accessors(record, &krate);
    let index_defs = index_defs(record, &krate);
    let index_values = index_values(record, &krate);
    let index_queries = index_queries(record, &krate);

    quote! {
        #key_alias

        const _: () = {
            #assertions

            #[automatically_derived]
            impl #krate::StoredType for #ident {
                fn layout(__d: &mut #krate::layout::Describer) -> #krate::Layout {
                    #layout
                }
            }

            /// The record's layout, described once.
            fn __layout() -> &'static #krate::Layout {
                static LAYOUT: #krate::__private::OnceLock<#krate::Layout> = #krate::__private::OnceLock::new();
                LAYOUT.get_or_init(#krate::layout::Describer::layout_of::<#ident>)
            }

            #key_layout_fn

            #migration

            #keeps_changes

            #[automatically_derived]
            impl #krate::StoredRecord for #ident {
                type Key = #key_ident;
                type KeyRef<'__a> = #key_ref_type where Self: '__a;
                const SCHEMA: &'static #krate::Schema = &#krate::Schema {
                    table: #table,
                    record: ::core::concat!(::core::module_path!(), "::", #type_name),
                    version: #version,
                    key: &[#(#key_fields),*],
                    indexes: #index_defs,
                    layout: __layout,
                    key_layout: #key_layout,
                    previous: #previous,
                    changes: #changes,
                };

                #upgrade

                #[inline]
                fn key_ref(&self) -> <Self as #krate::StoredRecord>::KeyRef<'_> {
                    #key_ref
                }

                #[inline]
                fn key(&self) -> <Self as #krate::StoredRecord>::Key {
                    #key
                }

                #index_values
            }
        };

        #accessors

        #index_queries
    }
}

/// `&[IndexDef { .. }, ..]`: the index definitions in the schema.
fn index_defs(record: &Record<'_>, krate: &Path) -> TokenStream {
    let defs = record.indexes.iter().map(|index| {
        let name = &index.name;
        let unique = index.unique;
        let fields = index
            .fields
            .iter()
            .map(|&i| record.fields[i].ident.unraw().to_string());
        let each = index.each;
        let method = match &index.method {
            Some((method, _)) => {
                let method = method.unraw().to_string();
                quote!(::core::option::Option::Some(#method))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #krate::IndexDef {
                name: #name,
                unique: #unique,
                fields: &[#(#fields),*],
                each: #each,
                method: #method,
            }
        }
    });
    quote!(&[#(#defs),*])
}

/// `index_value` and `archived_index_value`: the indexed fields' values,
/// key-encoded, from a record and from its archive.
fn index_values(record: &Record<'_>, krate: &Path) -> TokenStream {
    if record.indexes.is_empty() {
        return TokenStream::new();
    }
    let rkyv = quote!(#krate::__private::rkyv);
    let write = quote!(#krate::IntoKeyBytes::write_key_part);
    let arms = |archived: bool| -> Vec<TokenStream> {
        record
            .indexes
            .iter()
            .enumerate()
            .map(|(number, index)| {
                let body = match &index.method {
                    Some((method, ty)) => {
                        let value = if archived {
                            quote! {
                                let ::core::result::Result::Ok(__owned) =
                                    #krate::__private::deserialize_record::<Self>(archived)
                                else {
                                    return;
                                };
                                let __value: #ty = Self::#method(&__owned);
                            }
                        } else {
                            quote!(let __value: #ty = Self::#method(self);)
                        };
                        let push = if index.each {
                            quote! {
                                for __e in #krate::__private::Vec::as_slice(&__value) {
                                    out.push(|out| #write(__e, out));
                                }
                            }
                        } else if types::optional(ty).is_some() {
                            quote! {
                                if let ::core::option::Option::Some(__part0) = ::core::option::Option::as_ref(&__value) {
                                    out.push(|out| #write(__part0, out));
                                }
                            }
                        } else {
                            quote!(out.push(|out| #write(&__value, out));)
                        };
                        quote!(#value #push)
                    }
                    None if index.each => {
                        let field = &record.fields[index.fields[0]];
                        let name = field.ident;
                        if archived {
                            let element = match types::shape(field.ty) {
                                Shape::Vec(element) => element,
                                _ => field.ty,
                            };
                            let view = view(element, quote!(v), &rkyv).body;
                            quote! {
                                for v in <[_]>::iter(#rkyv::vec::ArchivedVec::as_slice(&archived.#name)) {
                                    let __e = #view;
                                    out.push(|out| #write(&__e, out));
                                }
                            }
                        } else {
                            quote! {
                                for __e in #krate::__private::Vec::as_slice(&self.#name) {
                                    out.push(|out| #write(__e, out));
                                }
                            }
                        }
                    }
                    None => {
                        let bindings = index.fields.iter().enumerate().map(|(part, &i)| {
                            let field = &record.fields[i];
                            let name = field.ident;
                            let binding = quote::format_ident!("__part{}", part);
                            let optional = types::optional(field.ty).is_some();
                            let value = if archived {
                                let view = view(field.ty, quote!(&archived.#name), &rkyv);
                                let body = view.body;
                                quote!(#body)
                            } else if optional {
                                quote!(::core::option::Option::as_ref(&self.#name))
                            } else {
                                quote!(&self.#name)
                            };
                            if optional {
                                quote! {
                                    let ::core::option::Option::Some(#binding) = #value else {
                                        return;
                                    };
                                }
                            } else {
                                quote!(let #binding = #value;)
                            }
                        });
                        let writes = (0..index.fields.len()).map(|part| {
                            let binding = quote::format_ident!("__part{}", part);
                            quote!(#write(&#binding, out);)
                        });
                        quote! {
                            #(#bindings)*
                            out.push(|out| { #(#writes)* });
                        }
                    }
                };
                quote! {
                    #number => {
                        #body
                    }
                }
            })
            .collect()
    };
    let own = arms(false);
    let stored = arms(true);
    let shown = record.indexes.iter().enumerate().map(|(number, index)| {
        let value_type = index_value_type(record, index);
        quote!(#number => #krate::__private::show_part::<#value_type>(bytes),)
    });
    let entries = record.indexes.iter().enumerate().map(|(number, index)| {
        let value_type = index_value_type(record, index);
        if index.unique {
            quote!(#number => #krate::__private::show_part::<#value_type>(bytes),)
        } else {
            quote!(#number => #krate::__private::show_entry::<#value_type, <Self as #krate::StoredRecord>::Key>(bytes),)
        }
    });
    quote! {
        fn show_index_value(index: usize, bytes: &[u8]) -> ::std::string::String {
            match index {
                #(#shown)*
                _ => #krate::__private::show_part::<#krate::__private::Vec<u8>>(bytes),
            }
        }

        fn show_index_entry(index: usize, bytes: &[u8]) -> ::std::string::String {
            match index {
                #(#entries)*
                _ => #krate::__private::show_part::<#krate::__private::Vec<u8>>(bytes),
            }
        }

        fn index_values(&self, index: usize, out: &mut #krate::IndexValues) {
            match index {
                #(#own)*
                _ => {}
            }
        }

        fn archived_index_values(
            archived: &<Self as #rkyv::Archive>::Archived,
            index: usize,
            out: &mut #krate::IndexValues,
        ) {
            match index {
                #(#stored)*
                _ => {}
            }
        }
    }
}

/// The value type queries of `index` take: the field's type (without its
/// `Option`), or a tuple of the fields' types.
fn index_value_type(record: &Record<'_>, index: &Index) -> TokenStream {
    let element = |ty: &'_ Type| -> Type {
        match types::shape(ty) {
            Shape::Vec(element) if index.each => element.clone(),
            _ => types::indexed(ty).clone(),
        }
    };
    if let Some((_, ty)) = &index.method {
        let ty = element(ty);
        return quote!(#ty);
    }
    if index.each {
        let ty = element(record.fields[index.fields[0]].ty);
        return quote!(#ty);
    }
    let types = index
        .fields
        .iter()
        .map(|&i| types::indexed(record.fields[i].ty));
    if index.composite {
        quote!((#(#types,)*))
    } else {
        quote!(#(#types)*)
    }
}

/// The `{Name}Indexes` trait: typed `by_..` queries on every table handle.
fn index_queries(record: &Record<'_>, krate: &Path) -> TokenStream {
    if record.indexes.is_empty() {
        return TokenStream::new();
    }
    let ident = record.ident;
    let vis = record.vis;
    let key = record.key_ident();
    let archived = record.archived_ident();
    let trait_ident = quote::format_ident!("{}Indexes", ident);
    let one = quote!(::core::result::Result<::core::option::Option<__O>, #krate::Error>);
    let many = quote!(::core::result::Result<#krate::__private::Vec<__O>, #krate::Error>);
    let each = quote!(impl ::core::ops::FnMut(&#key, &#archived) -> ::core::option::Option<__O>);

    let mut signatures = Vec::new();
    let mut bodies = Vec::new();
    for (number, index) in record.indexes.iter().enumerate() {
        let value_type = index_value_type(record, index);
        let name = &index.name;
        let by = quote::format_ident!("by_{}", name);
        let by_range = quote::format_ident!("by_{}_range", name);
        let by_prefix = quote::format_ident!("by_{}_prefix", name);
        let (doc_by, sig_by, body_by) = if index.unique {
            (
                format!("The record whose `{name}` is `value` (unique index), through `f`."),
                quote! {
                    fn #by<__O>(
                        self,
                        value: impl #krate::AsKey<#value_type>,
                        f: impl ::core::ops::FnOnce(&#archived) -> __O,
                    ) -> #one
                },
                quote!(self.__get_by_index(#number, value, f)),
            )
        } else {
            (
                if index.each {
                    format!(
                        "Records with `value` among their `{name}` (one entry per distinct element), in key order, through `f` (kept where it returns `Some`)."
                    )
                } else {
                    format!(
                        "Records whose `{name}` is `value`, in key order, through `f` (kept where it returns `Some`)."
                    )
                },
                quote! {
                    fn #by<__O>(
                        self,
                        value: impl #krate::AsKey<#value_type>,
                        f: #each,
                    ) -> #many
                },
                quote!(self.__find_by_index(#number, #krate::__private::prefix_bounds(value), f)),
            )
        };
        signatures.push(quote! { #[doc = #doc_by] #sig_by; });
        bodies.push(quote! { #sig_by { #body_by } });

        let doc_range = if index.each {
            format!(
                "Records with an element of `{name}` in `bounds`, in element order (then key order), through `f` (kept where it returns `Some`): a record with several such elements comes once for each."
            )
        } else {
            format!(
                "Records whose `{name}` lies in `bounds`, in `{name}` order (then key order), through `f` (kept where it returns `Some`)."
            )
        };
        let sig_range = quote! {
            fn #by_range<__Q: #krate::AsKey<#value_type>, __O>(
                self,
                bounds: impl ::core::ops::RangeBounds<__Q>,
                f: #each,
            ) -> #many
        };
        signatures.push(quote! { #[doc = #doc_range] #sig_range; });
        bodies.push(quote! { #sig_range { self.__find_by_index(#number, #krate::__private::value_bounds(bounds), f) } });

        let by_count = quote::format_ident!("count_by_{}", name);
        let doc_count = format!(
            "The number of records whose `{name}` is `value`, counted in the index without reading them."
        );
        let sig_count = quote! {
            fn #by_count(self, value: impl #krate::AsKey<#value_type>) -> ::core::result::Result<u64, #krate::Error>
        };
        signatures.push(quote! { #[doc = #doc_count] #sig_count; });
        bodies.push(quote! { #sig_count { self.__count_by_index(#number, #krate::__private::prefix_bounds(value)) } });

        if !index.composite && types::is_string(&value_type) {
            let doc_prefix = format!(
                "Records whose `{name}` starts with the text `prefix`, in `{name}` order, through `f` (kept where it returns `Some`)."
            );
            let sig_prefix = quote! {
                fn #by_prefix<__O>(self, prefix: &str, f: #each) -> #many
            };
            signatures.push(quote! { #[doc = #doc_prefix] #sig_prefix; });
            bodies.push(quote! { #sig_prefix { self.__find_by_index(#number, #krate::__private::str_prefix_bounds(prefix), f) } });
        }
        if index.composite {
            let doc_prefix = format!(
                "Records whose `{name}` starts with `prefix` (its leading fields), in index order, through `f` (kept where it returns `Some`)."
            );
            let sig_prefix = quote! {
                fn #by_prefix<__P: #krate::KeyPrefix<#value_type>, __O>(
                    self,
                    prefix: impl #krate::AsKey<__P>,
                    f: #each,
                ) -> #many
            };
            signatures.push(quote! { #[doc = #doc_prefix] #sig_prefix; });
            bodies.push(quote! { #sig_prefix { self.__find_by_index(#number, #krate::__private::prefix_bounds(prefix), f) } });
        }
    }
    let watch = watch_trait(record, krate);
    let doc = format!(
        "Queries by the secondary indexes of [`{ident}`], on `storage.records::<{ident}>()` and on \
         `tx.records::<{ident}>()` in transactions. Generated by `#[derive(StoredRecord)]`; \
         import it to call them.\n\n\
         On `storage.records::<{ident}>()`, the first query after the record type's indexes \
         changed builds them in a write transaction of its own; inside a write closure, query \
         through `tx.records::<{ident}>()` instead."
    );
    let handles = [
        quote!(&'__a #krate::Table<#key, #ident>),
        quote!(&'__a #krate::ReadTable<'__tx, #key, #ident>),
        quote!(&'__a mut #krate::WriteTable<'__tx, #key, #ident>),
    ];
    let impls = handles.iter().map(|handle| {
        quote! {
            #[automatically_derived]
            impl<'__a, '__tx> #trait_ident for #handle {
                #(#bodies)*
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis trait #trait_ident: ::core::marker::Sized {
            #(#signatures)*
        }

        #(#impls)*

        #watch
    }
}

/// The `{Name}Watch` trait: subscriptions narrowed to index values, on
/// `storage.watch::<Name>()`.
fn watch_trait(record: &Record<'_>, krate: &Path) -> TokenStream {
    let ident = record.ident;
    let vis = record.vis;
    let trait_ident = quote::format_ident!("{}Watch", ident);
    let mut signatures = Vec::new();
    let mut bodies = Vec::new();
    for (number, index) in record.indexes.iter().enumerate() {
        let value_type = index_value_type(record, index);
        let name = &index.name;
        let by = quote::format_ident!("by_{}", name);
        let by_range = quote::format_ident!("by_{}_range", name);
        let by_prefix = quote::format_ident!("by_{}_prefix", name);
        let doc = format!(
            "Only changes of records whose `{name}` is `value`, before or after the change."
        );
        let sig = quote!(fn #by(self, value: impl #krate::AsKey<#value_type>) -> Self);
        signatures.push(quote! { #[doc = #doc] #sig; });
        bodies.push(quote! { #sig { self.__index_prefix(#number, #krate::__private::prefix_bounds(value)) } });
        let doc = format!(
            "Only changes of records whose `{name}` lies in `bounds`, before or after the change."
        );
        let sig = quote! {
            fn #by_range<__Q: #krate::AsKey<#value_type>>(self, bounds: impl ::core::ops::RangeBounds<__Q>) -> Self
        };
        signatures.push(quote! { #[doc = #doc] #sig; });
        bodies.push(quote! { #sig { self.__index_range(#number, #krate::__private::value_bounds(bounds)) } });
        if index.composite {
            let doc = format!(
                "Only changes of records whose `{name}` starts with `prefix`, before or after the change."
            );
            let sig = quote! {
                fn #by_prefix<__P: #krate::KeyPrefix<#value_type>>(self, prefix: impl #krate::AsKey<__P>) -> Self
            };
            signatures.push(quote! { #[doc = #doc] #sig; });
            bodies.push(quote! { #sig { self.__index_prefix(#number, #krate::__private::prefix_bounds(prefix)) } });
        }
    }
    let doc = format!(
        "Subscriptions to changes of [`{ident}`] narrowed by its secondary indexes: \
         `storage.watch::<{ident}>().by_..(value)`. Generated by `#[derive(StoredRecord)]`; \
         import it to call them."
    );
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis trait #trait_ident: ::core::marker::Sized {
            #(#signatures)*
        }

        #[automatically_derived]
        impl #trait_ident for #krate::Subscription<#ident> {
            #(#bodies)*
        }
    }
}

/// `pub type UserKey = u64;` or a tuple of the key fields' types.
pub fn key_alias(record: &Record<'_>, keys: &[&Field<'_>]) -> TokenStream {
    let vis = record.vis;
    let key_ident = record.key_ident();
    let ident = record.ident;
    let (ty, doc) = match (&record.attrs.key_by, keys) {
        (Some((method, ty)), _) => (
            quote!(#ty),
            format!("The key of [`{ident}`] records: what its `{method}()` method returns."),
        ),
        (None, [field]) => {
            let ty = field.ty;
            (
                quote!(#ty),
                format!(
                    "The key of [`{ident}`] records: its `{}` field.",
                    field.ident
                ),
            )
        }
        (None, _) => {
            let types = keys.iter().map(|f| f.ty);
            let names: Vec<String> = keys.iter().map(|f| f.ident.to_string()).collect();
            (
                quote!((#(#types,)*)),
                format!(
                    "The key of [`{ident}`] records: its `({})` fields, in this order. Prefix queries take the leading parts, e.g. `({},)`.",
                    names.join(", "),
                    names[0]
                ),
            )
        }
    };
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis type #key_ident = #ty;
    }
}

/// Compile-time checks the macro cannot do itself, each failing at the span
/// of what is wrong: the record must have the rkyv derives, and every key
/// field's type must be a key type.
fn assertions(record: &Record<'_>, krate: &Path, keys: &[&Field<'_>]) -> TokenStream {
    let ident = record.ident;
    let value = quote_spanned! {ident.span()=>
        let _ = __assert_stored_value::<#ident>;
    };
    let computed = record.attrs.key_by.as_ref().map(|(_, ty)| ty);
    let keys = keys.iter().map(|field| field.ty).chain(computed).map(|ty| {
        quote_spanned! {ty.span()=>
            let _ = __assert_key::<#ty>;
        }
    });
    quote! {
        fn __assert_stored_value<T: #krate::StoredValue>() {}
        fn __assert_key<T: #krate::FromKeyBytes + ::core::clone::Clone>() {}
        #value
        #(#keys)*
    }
}

/// What an accessor returns, how it computes it, and how the docs say it.
struct View {
    ty: TokenStream,
    body: TokenStream,
    doc: String,
    /// The view is the archived value itself, unconverted.
    archived: bool,
}

/// The native view of an archived `ty` reached by `expr` (a `&Archived<ty>`).
fn view(ty: &Type, expr: TokenStream, rkyv: &TokenStream) -> View {
    // Every call is spelled out (no method syntax), so that no trait in the
    // user's scope can take it over.
    match types::shape(ty) {
        Shape::Plain(_) => View {
            ty: quote!(#ty),
            body: quote!(*#expr),
            doc: format!("as `{}`", types::describe(ty)),
            archived: false,
        },
        Shape::Native(_) => View {
            ty: quote!(#ty),
            body: quote! {
                <#ty as ::core::convert::From<&<#ty as #rkyv::Archive>::Archived>>::from(#expr)
            },
            doc: format!("as a native `{}`", types::describe(ty)),
            archived: false,
        },
        Shape::PointerSized(ident) => {
            let (fixed, archived) = if ident == "usize" {
                (
                    quote!(#rkyv::primitive::FixedUsize),
                    quote!(#rkyv::primitive::ArchivedUsize),
                )
            } else {
                (
                    quote!(#rkyv::primitive::FixedIsize),
                    quote!(#rkyv::primitive::ArchivedIsize),
                )
            };
            View {
                ty: quote!(#ident),
                body: quote!(<#fixed as ::core::convert::From<&#archived>>::from(#expr) as #ident),
                doc: format!("as a native `{ident}`"),
                archived: false,
            }
        }
        Shape::String => View {
            ty: quote!(&::core::primitive::str),
            body: quote!(#rkyv::string::ArchivedString::as_str(#expr)),
            doc: "as `&str`".to_owned(),
            archived: false,
        },
        Shape::Vec(elem) => {
            let inner = view(elem, quote!(v), rkyv);
            let slice = quote!(#rkyv::vec::ArchivedVec::as_slice(#expr));
            if matches!(types::shape(elem), Shape::Plain(_)) {
                View {
                    ty: quote!(&[#elem]),
                    body: slice,
                    doc: format!("as a slice `&[{}]`", types::describe(elem)),
                    archived: false,
                }
            } else if inner.archived {
                View {
                    ty: quote!(&[<#elem as #rkyv::Archive>::Archived]),
                    body: slice,
                    doc: "as a slice of the archived elements".to_owned(),
                    archived: false,
                }
            } else {
                let (inner_ty, inner_body) = (inner.ty, inner.body);
                View {
                    ty: quote! {
                        impl ::core::iter::ExactSizeIterator<Item = #inner_ty>
                            + ::core::iter::DoubleEndedIterator + '_
                    },
                    body: quote! {
                        ::core::iter::Iterator::map(<[_]>::iter(#slice), |v| #inner_body)
                    },
                    doc: format!("as an iterator over its elements, each {}", inner.doc),
                    archived: false,
                }
            }
        }
        Shape::Option(inner) => {
            let inner = view(inner, quote!(v), rkyv);
            let (inner_ty, inner_body) = (inner.ty, inner.body);
            View {
                ty: quote!(::core::option::Option<#inner_ty>),
                body: quote! {
                    ::core::option::Option::map(#rkyv::option::ArchivedOption::as_ref(#expr), |v| #inner_body)
                },
                doc: format!("as an `Option`, the value {}", inner.doc),
                archived: false,
            }
        }
        Shape::Box(inner) if types::is_sized(inner) => {
            view(inner, quote!(#rkyv::boxed::ArchivedBox::get(#expr)), rkyv)
        }
        Shape::Box(_) | Shape::Array(_) | Shape::Collection(_) | Shape::Borrowed | Shape::Other => {
            View {
                ty: quote!(&<#ty as #rkyv::Archive>::Archived),
                body: expr,
                doc: "as its archived form".to_owned(),
                archived: true,
            }
        }
    }
}

/// One method per field on the archived record, named after the field.
pub fn accessors(record: &Record<'_>, krate: &Path) -> TokenStream {
    if record.attrs.archived_as_other {
        // `#[rkyv(as = ..)]`: the archived type is not ours to extend.
        return TokenStream::new();
    }
    let archived = record.archived_ident();
    let rkyv = quote!(#krate::__private::rkyv);
    // A field with `#[rkyv(..)]` (`with = ..`, `omit_bounds`, ..) may be
    // archived as another type than its own: it gets no accessor.
    let methods = record
        .fields
        .iter()
        .filter(|f| f.attrs.rkyv.is_none())
        .map(|field| {
            let name = field.ident;
            let vis = &field.original.vis;
            let view = view(field.ty, quote!(&self.#name), &rkyv);
            let doc = format!(
                "The `{name}` field (`{}`), read {}.",
                types::describe(field.ty),
                view.doc
            );
            let (ty, body) = (view.ty, view.body);
            let span = name.span();
            quote_spanned! {span=>
                #[doc = #doc]
                #[inline]
                #[allow(dead_code)]
                #vis fn #name(&self) -> #ty {
                    #body
                }
            }
        });
    let ident = record.ident;
    let doc = format!(
        "Accessors generated by `#[derive(StoredRecord)]`: each field of [`{ident}`] as a native view."
    );
    quote! {
        #[doc = #doc]
        #[automatically_derived]
        impl #archived {
            #(#methods)*
        }
    }
}

/// The body of `StoredType::layout` for a struct named `name` with `members`
/// (`Self` being the struct).
pub fn struct_layout(krate: &Path, name: &str, members: &[Member<'_>]) -> TokenStream {
    let rkyv = quote!(#krate::__private::rkyv);
    let fields = fields(krate, members);
    quote! {
        #krate::layout::Describer::named(__d, ::core::any::type_name::<Self>(), #name, |__d| {
            #krate::Layout::Struct {
                name: <::std::string::String as ::core::convert::From<&str>>::from(#name),
                fields: #fields,
                size: ::core::mem::size_of::<<Self as #rkyv::Archive>::Archived>(),
                align: ::core::mem::align_of::<<Self as #rkyv::Archive>::Archived>(),
            }
        })
    }
}

/// `vec![Field::new(..), ..]` for `members`, each field's layout asked of
/// its type at the type's span, so that a type without `StoredType` is
/// reported at the field.
fn fields(krate: &Path, members: &[Member<'_>]) -> TokenStream {
    let rkyv = quote!(#krate::__private::rkyv);
    let fields = members.iter().map(|member| {
        let name = &member.name;
        let ty = member.ty;
        // The describer by a call-site name, so that a derive on an item
        // passed through `macro_rules!` still finds it.
        let d = syn::Ident::new("__d", proc_macro2::Span::call_site());
        let layout = match &member.with {
            Some(with) => {
                let shown = types::compact(&quote!(#with).to_string());
                let field = types::compact(&quote!(#ty).to_string());
                quote! {
                    #krate::Layout::Opaque {
                        name: <::std::string::String as ::core::convert::From<&str>>::from(#shown),
                        field: <::std::string::String as ::core::convert::From<&str>>::from(#field),
                        of: {
                            #[allow(unused_imports)]
                            use #krate::layout::__probe::{Known as _, Unknown as _};
                            (&#krate::layout::__probe::Probe::<#ty>::new()).of(#d)
                        },
                        size: ::core::mem::size_of::<<#with as #rkyv::with::ArchiveWith<#ty>>::Archived>(),
                        align: ::core::mem::align_of::<<#with as #rkyv::with::ArchiveWith<#ty>>::Archived>(),
                    }
                }
            }
            None => quote_spanned!(ty.span()=> <#ty as #krate::StoredType>::layout(#d)),
        };
        quote!(#krate::layout::Field::new(#name, #layout))
    });
    quote!(::std::vec![#(#fields),*])
}

/// `#[derive(StoredType)]`: the layout of a struct or enum nested in records.
pub fn stored_type(container: &Container<'_>) -> TokenStream {
    let krate = container.krate();
    let rkyv = quote!(#krate::__private::rkyv);
    let ident = container.ident;
    let name = ident.to_string();
    let body = match &container.data {
        Contents::Struct(members) => struct_layout(&krate, &name, members),
        Contents::Enum(variants) => {
            let tags = check::tags(variants);
            let variants = variants.iter().zip(tags).map(|(variant, tag)| {
                let vname = variant.ident.unraw().to_string();
                let fields = fields(&krate, &variant.fields);
                quote! {
                    #krate::layout::Variant {
                        name: <::std::string::String as ::core::convert::From<&str>>::from(#vname),
                        tag: #tag,
                        fields: #fields,
                    }
                }
            });
            quote! {
                #krate::layout::Describer::named(__d, ::core::any::type_name::<Self>(), #name, |__d| {
                    #krate::Layout::Enum {
                        name: <::std::string::String as ::core::convert::From<&str>>::from(#name),
                        variants: ::std::vec![#(#variants),*],
                        size: ::core::mem::size_of::<<Self as #rkyv::Archive>::Archived>(),
                        align: ::core::mem::align_of::<<Self as #rkyv::Archive>::Archived>(),
                    }
                })
            }
        }
    };
    let mut generics = container.input.generics.clone();
    let params: Vec<syn::Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    {
        let (_, ty_generics, _) = container.input.generics.split_for_impl();
        let clause = generics.make_where_clause();
        for param in &params {
            clause
                .predicates
                .push(syn::parse_quote!(#param: #krate::StoredType));
        }
        clause
            .predicates
            .push(syn::parse_quote!(#ident #ty_generics: #rkyv::Archive));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::StoredType for #ident #ty_generics #where_clause {
            fn layout(__d: &mut #krate::layout::Describer) -> #krate::Layout {
                #body
            }
        }
    }
}

/// For `#[stored(migrate_from = Older)]`: the `previous` schema, the
/// `__upgrade` that converts through `Older`, and the compile-time checks
/// that `Older` has a smaller version and the same table.
fn migration(record: &Record<'_>, krate: &Path) -> (TokenStream, TokenStream, TokenStream) {
    let Some(from) = &record.attrs.migrate_from else {
        return (
            quote!(::core::option::Option::None),
            TokenStream::new(),
            TokenStream::new(),
        );
    };
    let ident = record.ident;
    let older = from
        .segments
        .last()
        .map_or_else(String::new, |s| s.ident.to_string());
    let version = record.version();
    let rkyv = quote!(#krate::__private::rkyv);
    let previous = quote!(::core::option::Option::Some(<#from as #krate::StoredRecord>::SCHEMA));
    let convert = quote_spanned!(from.span()=> <Self as ::core::convert::From<#from>>::from);
    let upgrade = quote! {
        fn __upgrade(
            version: u32,
            bytes: &[u8],
        ) -> ::core::option::Option<::core::result::Result<Self, #krate::BoxError>>
        where
            <Self as #rkyv::Archive>::Archived: #rkyv::Deserialize<Self, #krate::ValueDeserializer>,
        {
            if version == #version {
                return ::core::option::Option::Some(#krate::__private::read_owned::<Self>(bytes));
            }
            ::core::option::Option::map(
                <#from as #krate::StoredRecord>::__upgrade(version, bytes),
                |older| ::core::result::Result::map(older, #convert),
            )
        }

        fn __show_key(version: u32, bytes: &[u8]) -> ::std::string::String {
            if version == #version {
                return #krate::__private::show_key::<<Self as #krate::StoredRecord>::Key>(bytes);
            }
            <#from as #krate::StoredRecord>::__show_key(version, bytes)
        }
    };
    let newer =
        format!("`{ident}` must have a greater `version` than `{older}`, which it migrates from");
    let same_table = format!(
        "`{ident}` migrates from `{older}`, whose records are in another table: a migration rewrites the records of one table"
    );
    let checks = quote_spanned! {from.span()=>
        const _: () = {
            let this = <#ident as #krate::StoredRecord>::SCHEMA;
            let older = <#from as #krate::StoredRecord>::SCHEMA;
            ::core::assert!(this.version > older.version, #newer);
            ::core::assert!(#krate::__private::str_eq(this.table, older.table), #same_table);
        };
    };
    (previous, upgrade, checks)
}
