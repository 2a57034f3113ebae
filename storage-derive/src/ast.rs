//! The record struct as the macro sees it, each part keeping its syntax node
//! so errors can point at it.

use heck::ToSnakeCase;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path, Type, Visibility};

use crate::attr::{self, FieldAttrs, RecordAttrs};
use crate::ctxt::Ctxt;

pub struct Record<'a> {
    pub input: &'a DeriveInput,
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub attrs: RecordAttrs,
    pub fields: Vec<Field<'a>>,
    pub indexes: Vec<Index>,
}

/// A secondary index: on one field, or on several (`#[stored(index(..))]`).
pub struct Index {
    /// Its name: the field's, the fields' joined by `_`, or the one given.
    pub name: String,
    /// Where errors about the index point.
    pub tokens: proc_macro2::TokenStream,
    pub unique: bool,
    /// Positions in [`Record::fields`] of the indexed fields, in order.
    pub fields: Vec<usize>,
    /// Declared on the struct (over a list of fields), not on a field.
    pub composite: bool,
    /// `each`: one entry per element of the field (or of what the method
    /// returns), which is a `Vec`.
    pub each: bool,
    /// `by = method -> Type`: the value is what this method of the record
    /// returns (then `fields` is empty).
    pub method: Option<(Ident, syn::Type)>,
}

pub struct Field<'a> {
    pub original: &'a syn::Field,
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub attrs: FieldAttrs<'a>,
}

/// The indexes in declaration order: field indexes, then struct-level ones.
fn indexes(cx: &Ctxt, fields: &[Field<'_>], attrs: &RecordAttrs) -> Vec<Index> {
    let on_fields = fields.iter().enumerate().filter_map(|(position, field)| {
        let index = field.attrs.index.as_ref()?;
        Some(Index {
            name: index
                .name
                .as_ref()
                .map_or_else(|| field.ident.unraw().to_string(), LitStr::value),
            tokens: index.tokens.clone(),
            unique: index.unique,
            fields: vec![position],
            composite: false,
            each: index.each,
            method: None,
        })
    });
    let on_struct = attrs.indexes.iter().map(|index| {
        let positions: Vec<usize> = index
            .fields
            .iter()
            .filter_map(|name| {
                let position = fields.iter().position(|f| f.ident == name);
                if position.is_none() {
                    cx.error_spanned_by(name, format!("no field `{name}` to index"));
                }
                position
            })
            .collect();
        let joined = match &index.method {
            Some((method, _)) => method.unraw().to_string(),
            None => index
                .fields
                .iter()
                .map(|field| field.unraw().to_string())
                .collect::<Vec<_>>()
                .join("_"),
        };
        Index {
            name: index.name.as_ref().map_or(joined, LitStr::value),
            tokens: index.tokens.clone(),
            unique: index.unique,
            fields: positions,
            composite: index.method.is_none(),
            each: index.each,
            method: index.method.clone(),
        }
    });
    on_fields.chain(on_struct).collect()
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
        let fields: Vec<Field<'a>> = fields
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
        let indexes = indexes(cx, &fields, &attrs);
        Some(Record {
            input,
            ident,
            vis: &input.vis,
            attrs,
            fields,
            indexes,
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

/// A struct or enum deriving `StoredType`: a type nested in records.
pub struct Container<'a> {
    pub input: &'a DeriveInput,
    pub ident: &'a Ident,
    pub krate: Option<Path>,
    pub data: Contents<'a>,
}

/// What a container holds.
pub enum Contents<'a> {
    /// A struct's fields (none for a unit struct).
    Struct(Vec<Member<'a>>),
    /// An enum's variants.
    Enum(Vec<Variant<'a>>),
}

/// A field of a struct or enum variant, named `0`, `1`, .. in tuple form.
pub struct Member<'a> {
    pub name: String,
    pub ty: &'a Type,
    /// `#[rkyv(with = ..)]`: archived through a wrapper.
    pub with: Option<Type>,
}

/// One variant of an enum.
pub struct Variant<'a> {
    pub ident: &'a Ident,
    pub discriminant: Option<&'a syn::Expr>,
    pub fields: Vec<Member<'a>>,
}

fn members<'a>(cx: &Ctxt, fields: &'a Fields) -> Vec<Member<'a>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| Member {
            name: field
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), |ident| ident.unraw().to_string()),
            ty: &field.ty,
            with: attr::member_with(cx, &field.attrs),
        })
        .collect()
}

impl<'a> Container<'a> {
    /// Reads the type; `None` (with an error in `cx`) for a union.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let krate = attr::stored_type(cx, &input.attrs);
        let data = match &input.data {
            Data::Struct(data) => Contents::Struct(members(cx, &data.fields)),
            Data::Enum(data) => Contents::Enum(
                data.variants
                    .iter()
                    .map(|variant| Variant {
                        ident: &variant.ident,
                        discriminant: variant.discriminant.as_ref().map(|(_, expr)| expr),
                        fields: members(cx, &variant.fields),
                    })
                    .collect(),
            ),
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`StoredType` cannot be derived for a union: rkyv archives structs and enums",
                );
                return None;
            }
        };
        Some(Container {
            input,
            ident: &input.ident,
            krate,
            data,
        })
    }

    /// The path of the `storage` crate in generated code.
    pub fn krate(&self) -> Path {
        self.krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::storage))
    }
}

impl<'a> Record<'a> {
    /// The record's fields as members of its layout.
    pub fn members(&self) -> Vec<Member<'a>> {
        self.fields
            .iter()
            .map(|field| Member {
                name: field.ident.unraw().to_string(),
                ty: field.ty,
                with: field.attrs.with.clone(),
            })
            .collect()
    }
}
