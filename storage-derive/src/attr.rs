//! Parsing `#[stored(..)]` on the struct and `#[key]` on fields.

use proc_macro2::TokenTree;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitInt, LitStr, Meta, Path, Token};

use crate::ctxt::Ctxt;

pub const STORED: &str = "stored";
pub const KEY: &str = "key";
pub const INDEX: &str = "index";
pub const TABLE: &str = "table";
pub const VERSION: &str = "version";
pub const CRATE: &str = "crate";
pub const UNIQUE: &str = "unique";
pub const NAME: &str = "name";
pub const FIELDS: &str = "fields";
pub const EACH: &str = "each";
pub const BY: &str = "by";
pub const MIGRATE_FROM: &str = "migrate_from";
pub const CHANGES: &str = "changes";

/// Arguments `#[stored(..)]` accepts on a record.
const STORED_ARGUMENTS: &[&str] = &[TABLE, VERSION, CRATE, KEY, INDEX, MIGRATE_FROM, CHANGES];
/// Arguments `#[stored(..)]` accepts on a type deriving `StoredType`.
const TYPE_ARGUMENTS: &[&str] = &[CRATE];
/// Options `#[index(..)]` on a field accepts.
const FIELD_INDEX_OPTIONS: &[&str] = &[UNIQUE, NAME, EACH];
/// Options `#[stored(index(..))]` accepts.
const RECORD_INDEX_OPTIONS: &[&str] = &[FIELDS, BY, UNIQUE, NAME, EACH];

/// `#[index]` or `#[index(unique, name = "..")]` on a field, or
/// `#[stored(index(fields(a, b), unique, name = ".."))]` on the struct.
pub struct IndexAttr {
    /// The attribute's tokens, for errors about the index as a whole.
    pub tokens: proc_macro2::TokenStream,
    pub unique: bool,
    pub name: Option<LitStr>,
    /// The fields of a struct-level index, in order; empty on a field.
    pub fields: Vec<Ident>,
    /// `each`: one entry per element.
    pub each: bool,
    /// `by = method -> Type` on the struct: computed by a method.
    pub method: Option<(Ident, syn::Type)>,
}

/// What `#[stored(..)]` and `#[rkyv(..)]` say about the struct.
#[derive(Default)]
pub struct RecordAttrs {
    pub table: Option<LitStr>,
    pub version: Option<(u32, LitInt)>,
    pub krate: Option<Path>,
    /// rkyv's name for the archived type, if renamed with `#[rkyv(archived = ..)]`.
    pub archived: Option<Ident>,
    /// `#[rkyv(as = ..)]`: the archived type is some other type.
    pub archived_as_other: bool,
    /// `#[stored(index(..))]`: indexes over several fields.
    pub indexes: Vec<IndexAttr>,
    /// `#[stored(migrate_from = Type)]`: the record type this one replaces.
    pub migrate_from: Option<Path>,
    /// `#[stored(changes)]`: the record type keeps a durable change log.
    pub changes: bool,
    /// `#[stored(key(by = method -> Type))]`: the key computed by a method.
    pub key_by: Option<(Ident, syn::Type)>,
}

/// What the attributes of one field say.
#[derive(Default)]
pub struct FieldAttrs<'a> {
    /// The `#[key]` attribute, if the field has one.
    pub key: Option<&'a Attribute>,
    /// The `#[index]` attribute, if the field has one.
    pub index: Option<IndexAttr>,
    /// The field's `#[rkyv(..)]` arguments: its archived form may differ
    /// from its type's.
    pub rkyv: Option<proc_macro2::TokenStream>,
    /// `#[rkyv(with = ..)]`: the wrapper the field is archived through.
    pub with: Option<syn::Type>,
}

/// Reports an argument nobody knows, suggesting the closest known one, and
/// skips its value so the remaining arguments are still read.
fn unknown_argument(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    attribute: &str,
    known: &[&str],
) -> syn::Result<()> {
    let name = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| {
            let path = &meta.path;
            quote::quote!(#path).to_string().replace(' ', "")
        });
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(&name, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let expected = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = match closest {
        Some((_, k)) => format!(
            "unknown `{attribute}` argument `{name}`; did you mean `{k}`? (expected one of {expected})"
        ),
        None => format!("unknown `{attribute}` argument `{name}`; expected one of {expected}"),
    };
    cx.error_spanned_by(&meta.path, message);
    skip_value(meta)
}

/// Consumes `= value` or `(..)` after an argument name, if present.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
    }
    Ok(())
}

pub fn record(cx: &Ctxt, attrs: &[Attribute]) -> RecordAttrs {
    let mut out = RecordAttrs::default();
    for attr in attrs {
        if attr.path().is_ident(KEY) {
            cx.error_spanned_by(
                attr,
                "`#[key]` goes on a field: the field that identifies a record",
            );
        } else if attr.path().is_ident(INDEX) {
            cx.error_spanned_by(
                attr,
                "`#[index]` goes on a field; for an index over several fields write `#[stored(index(fields(a, b)))]` on the struct",
            );
        } else if attr.path().is_ident(STORED) {
            let parsed = attr.parse_nested_meta(|meta| stored_argument(cx, &meta, &mut out));
            if let Err(error) = parsed {
                cx.syn_error(error);
            }
        } else if attr.path().is_ident("rkyv") {
            rkyv_names(attr, &mut out);
        }
    }
    out
}

fn stored_argument(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    out: &mut RecordAttrs,
) -> syn::Result<()> {
    let duplicate = |what: &str| {
        cx.error_spanned_by(
            &meta.path,
            format!("duplicate `{what}` argument; give it once"),
        );
    };
    if meta.path.is_ident(KEY) {
        meta.parse_nested_meta(|option| {
            if option.path.is_ident(BY) {
                computed_by(cx, &option, &mut out.key_by)
            } else {
                unknown_argument(cx, &option, "stored(key(..))", &[BY])
            }
        })?;
        if out.key_by.is_none() {
            cx.error_spanned_by(
                &meta.path,
                "a computed key names its method and type: `#[stored(key(by = method -> Type))]`; for a key stored in a field write `#[key]` on the field",
            );
        }
    } else if meta.path.is_ident(TABLE) {
        let table: LitStr = meta.value()?.parse()?;
        match out.table {
            Some(_) => duplicate(TABLE),
            None => out.table = Some(table),
        }
    } else if meta.path.is_ident(VERSION) {
        let literal: LitInt = meta.value()?.parse()?;
        let version = literal.base10_parse::<u32>().map_err(|_| {
            syn::Error::new(
                literal.span(),
                "`version` must be a whole number from 0 to 4294967295",
            )
        })?;
        match out.version {
            Some(_) => duplicate(VERSION),
            None => out.version = Some((version, literal)),
        }
    } else if meta.path.is_ident(CRATE) {
        let literal: LitStr = meta.value()?.parse()?;
        let path = literal.parse::<Path>().map_err(|_| {
            syn::Error::new(
                literal.span(),
                "`crate` must name a path, e.g. `crate = \"my_storage\"`",
            )
        })?;
        match out.krate {
            Some(_) => duplicate(CRATE),
            None => out.krate = Some(path),
        }
    } else if meta.path.is_ident(CHANGES) {
        if out.changes {
            duplicate(CHANGES);
        }
        out.changes = true;
    } else if meta.path.is_ident(MIGRATE_FROM) {
        let literal: Path = meta.value()?.parse()?;
        match out.migrate_from {
            Some(_) => duplicate(MIGRATE_FROM),
            None => out.migrate_from = Some(literal),
        }
    } else if meta.path.is_ident(INDEX) {
        let path = &meta.path;
        let mut index = IndexAttr {
            tokens: quote::quote!(#path),
            unique: false,
            name: None,
            fields: Vec::new(),
            each: false,
            method: None,
        };
        let mut has_fields = false;
        meta.parse_nested_meta(|option| {
            if option.path.is_ident(BY) {
                computed_by(cx, &option, &mut index.method)
            } else if option.path.is_ident(FIELDS) {
                has_fields = true;
                option.parse_nested_meta(|field| {
                    match field.path.get_ident() {
                        Some(ident) => index.fields.push(ident.clone()),
                        None => cx.error_spanned_by(&field.path, "expected a field name"),
                    }
                    Ok(())
                })
            } else {
                index_option(
                    cx,
                    &option,
                    &mut index,
                    "stored(index(..))",
                    RECORD_INDEX_OPTIONS,
                )
            }
        })?;
        if has_fields && index.method.is_some() {
            cx.error_spanned_by(
                &index.tokens,
                "an index is over `fields(..)` or computed `by = method -> Type`, not both",
            );
        } else if !has_fields && index.method.is_none() {
            cx.error_spanned_by(
                &index.tokens,
                "a struct-level index names its fields: `#[stored(index(fields(a, b)))]`, or the method computing it: `#[stored(index(by = method -> Type))]`; for one field write `#[index]` on the field",
            );
        }
        out.indexes.push(index);
    } else {
        return unknown_argument(cx, meta, STORED, STORED_ARGUMENTS);
    }
    Ok(())
}

/// `by = method -> Type` of a computed key or index, into `out`; a second
/// one is reported and the first kept.
fn computed_by(
    cx: &Ctxt,
    option: &ParseNestedMeta<'_>,
    out: &mut Option<(Ident, syn::Type)>,
) -> syn::Result<()> {
    let input = option.value()?;
    let method: Ident = input.parse()?;
    input.parse::<Token![->]>()?;
    let ty: syn::Type = input.parse()?;
    match out {
        Some(_) => cx.error_spanned_by(&option.path, "duplicate `by`; give it once"),
        None => *out = Some((method, ty)),
    }
    Ok(())
}

/// `unique`, `each` or `name = ".."` inside an index attribute.
fn index_option(
    cx: &Ctxt,
    option: &ParseNestedMeta<'_>,
    index: &mut IndexAttr,
    attribute: &str,
    known: &[&str],
) -> syn::Result<()> {
    if option.path.is_ident(UNIQUE) {
        if index.unique {
            cx.error_spanned_by(&option.path, "duplicate `unique`; give it once");
        }
        index.unique = true;
    } else if option.path.is_ident(EACH) {
        if index.each {
            cx.error_spanned_by(&option.path, "duplicate `each`; give it once");
        }
        index.each = true;
    } else if option.path.is_ident(NAME) {
        let name: LitStr = option.value()?.parse()?;
        match index.name {
            Some(_) => cx.error_spanned_by(&option.path, "duplicate `name` argument; give it once"),
            None => index.name = Some(name),
        }
    } else {
        return unknown_argument(cx, option, attribute, known);
    }
    Ok(())
}

/// Reads `archived = Name` and `as = Type` out of `#[rkyv(..)]`, ignoring the rest.
fn rkyv_names(attr: &Attribute, out: &mut RecordAttrs) {
    let Meta::List(list) = &attr.meta else { return };
    let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
    for window in tokens.windows(3) {
        let [TokenTree::Ident(name), TokenTree::Punct(eq), value] = window else {
            continue;
        };
        if eq.as_char() != '=' {
            continue;
        }
        if name == "archived" {
            if let TokenTree::Ident(archived) = value {
                out.archived = Some(archived.clone());
            }
        } else if name == "as" {
            out.archived_as_other = true;
        }
    }
}

/// The type in `with = ..` of a field's `#[rkyv(..)]`, if there is one.
fn rkyv_with(attr: &Attribute) -> Option<syn::Type> {
    let mut with = None;
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("with") {
            with = Some(meta.value()?.parse::<syn::Type>()?);
        } else {
            skip_value(&meta)?;
        }
        Ok(())
    });
    with
}

/// `#[stored(crate = "..")]` on a type deriving `StoredType`: the only
/// argument that applies to it.
pub fn stored_type(cx: &Ctxt, attrs: &[Attribute]) -> Option<Path> {
    let mut krate = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(STORED)) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(CRATE) {
                let literal: LitStr = meta.value()?.parse()?;
                let path = literal.parse::<Path>().map_err(|_| {
                    syn::Error::new(
                        literal.span(),
                        "`crate` must name a path, e.g. `crate = \"my_storage\"`",
                    )
                })?;
                if krate.replace(path).is_some() {
                    cx.error_spanned_by(&meta.path, "duplicate `crate` argument; give it once");
                }
                Ok(())
            } else {
                unknown_argument(cx, &meta, STORED, TYPE_ARGUMENTS)
            }
        });
        if let Err(error) = parsed {
            cx.syn_error(error);
        }
    }
    krate
}

/// Field attributes of a type deriving `StoredType`: `#[rkyv(with = ..)]`,
/// and none of a record's.
pub fn member_with(cx: &Ctxt, attrs: &[Attribute]) -> Option<syn::Type> {
    let mut with = None;
    for attr in attrs {
        if attr.path().is_ident(KEY) || attr.path().is_ident(INDEX) || attr.path().is_ident(STORED)
        {
            cx.error_spanned_by(
                attr,
                "`#[key]`, `#[index]` and `#[stored]` belong on the fields of a `#[derive(StoredRecord)]` struct",
            );
        } else if attr.path().is_ident("rkyv") && with.is_none() {
            with = rkyv_with(attr);
        }
    }
    with
}

pub fn field<'a>(cx: &Ctxt, field: &'a syn::Field) -> FieldAttrs<'a> {
    let mut out = FieldAttrs::default();
    for attr in &field.attrs {
        if attr.path().is_ident(KEY) {
            if !matches!(attr.meta, Meta::Path(_)) {
                cx.error_spanned_by(
                    &attr.meta,
                    "`#[key]` takes no arguments; write `#[key]` on each key field (several make one composite key, in field order)",
                );
            }
            match out.key {
                Some(_) => cx.error_spanned_by(attr, "duplicate `#[key]` on one field"),
                None => out.key = Some(attr),
            }
        } else if attr.path().is_ident(STORED) {
            cx.error_spanned_by(
                attr,
                "`#[stored(..)]` goes on the struct; on a field use `#[key]` or `#[index]`",
            );
        } else if attr.path().is_ident("rkyv") {
            let meta = &attr.meta;
            out.rkyv = Some(quote::quote!(#meta));
            out.with = out.with.take().or_else(|| rkyv_with(attr));
        } else if attr.path().is_ident(INDEX) {
            let mut index = IndexAttr {
                tokens: quote::quote!(#attr),
                unique: false,
                name: None,
                fields: Vec::new(),
                each: false,
                method: None,
            };
            if let Meta::List(_) = attr.meta {
                let parsed = attr.parse_nested_meta(|option| {
                    index_option(cx, &option, &mut index, INDEX, FIELD_INDEX_OPTIONS)
                });
                if let Err(error) = parsed {
                    cx.syn_error(error);
                }
            } else if let Meta::NameValue(_) = attr.meta {
                cx.error_spanned_by(&attr.meta, "write `#[index]` or `#[index(unique)]`");
            }
            match out.index {
                Some(_) => cx.error_spanned_by(attr, "duplicate `#[index]` on one field; one index per field, or name several with `#[stored(index(..))]`"),
                None => out.index = Some(index),
            }
        }
    }
    out
}
