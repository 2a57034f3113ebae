//! The record struct as the macro sees it, each part keeping its syntax node
//! so errors can point at it.

use heck::ToSnakeCase;
use syn::{Data, DeriveInput, Fields, Ident, Path, Type, Visibility};

use crate::attr::{self, FieldAttrs, RecordAttrs};
use crate::ctxt::Ctxt;

pub struct Record<'a> {
    pub input: &'a DeriveInput,
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub attrs: RecordAttrs,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub original: &'a syn::Field,
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub attrs: FieldAttrs<'a>,
}

impl<'a> Record<'a> {
    /// Reads the struct; `None` (with errors in `cx`) if it is not a struct
    /// with named fields.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::record(cx, &input.attrs);
        let ident = &input.ident;
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        format!(
                            "`StoredRecord` needs named fields: a tuple struct has no field names for `#[key]` and the accessors; write `struct {ident} {{ id: u64, .. }}`"
                        ),
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        ident,
                        format!("`{ident}` has no fields to store; add named fields, at least one of them `#[key]`"),
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    format!(
                        "`StoredRecord` can only be derived for a struct with named fields; `{ident}` is an enum - store it in a field of a record struct"
                    ),
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    format!("`StoredRecord` can only be derived for a struct with named fields; `{ident}` is a union"),
                );
                return None;
            }
        };
        let fields = fields
            .iter()
            .filter_map(|field| {
                Some(Field {
                    original: field,
                    ident: field.ident.as_ref()?,
                    ty: &field.ty,
                    attrs: attr::field(cx, field),
                })
            })
            .collect();
        Some(Record {
            input,
            ident,
            vis: &input.vis,
            attrs,
            fields,
        })
    }

    /// The `#[key]` fields, in field order.
    pub fn keys(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.attrs.key.is_some())
    }

    /// The table name: `#[stored(table = ..)]`, or the struct name in snake_case.
    pub fn table(&self) -> String {
        match &self.attrs.table {
            Some(table) => table.value(),
            None => self.ident.to_string().to_snake_case(),
        }
    }

    pub fn version(&self) -> u32 {
        self.attrs
            .version
            .as_ref()
            .map_or(1, |(version, _)| *version)
    }

    /// The path of the `storage` crate in generated code.
    pub fn krate(&self) -> Path {
        self.attrs
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::storage))
    }

    /// rkyv's archived type for this struct.
    pub fn archived_ident(&self) -> Ident {
        self.attrs
            .archived
            .clone()
            .unwrap_or_else(|| quote::format_ident!("Archived{}", self.ident))
    }

    /// The generated key type: `UserKey` for `User`.
    pub fn key_ident(&self) -> Ident {
        quote::format_ident!("{}Key", self.ident)
    }
}
