//! The rules a record must follow, one function each.

use quote::ToTokens;

use crate::ast::{Container, Contents, Field, Index, Record};
use crate::ctxt::Ctxt;
use crate::types::{self, Shape};

/// The most `#[key]` fields one composite key can have.
pub const MAX_KEY_FIELDS: usize = 4;

pub fn check(cx: &Ctxt, record: &Record<'_>) {
    not_generic(cx, record);
    one_key_definition(cx, record);
    for field in record.keys() {
        key_type(cx, field);
    }
    if let Some((method, ty)) = &record.attrs.key_by
        && let Some(problem) = key_type_problem(&format!("`{method}()`"), ty)
    {
        cx.error_spanned_by(ty.to_token_stream(), problem);
    }
    table_name(cx, record);
    for index in &record.indexes {
        index_not_on_key(cx, record, index);
        index_fields(cx, record, index);
        each_index(cx, index);
        method_index(cx, index);
    }
    index_names(cx, record);
    indexes_need_own_archive(cx, record);
    index_count(cx, record);
    migration_has_a_version(cx, record);
}

/// The rules of a type deriving `StoredType`.
pub fn check_container(cx: &Ctxt, container: &Container<'_>) {
    if let Contents::Enum(variants) = &container.data {
        enum_tags(cx, variants);
    }
}

/// The most indexes one record type can have: their state is kept in a `u64`.
pub const MAX_INDEXES: usize = 64;

/// A record has at most [`MAX_INDEXES`] indexes.
fn index_count(cx: &Ctxt, record: &Record<'_>) {
    if let Some(index) = record.indexes.get(MAX_INDEXES) {
        cx.error_spanned_by(
            &index.tokens,
            format!("a record type has at most {MAX_INDEXES} indexes; this is one more"),
        );
    }
}

/// A type that migrates from another replaces a version: it says which.
fn migration_has_a_version(cx: &Ctxt, record: &Record<'_>) {
    let Some(from) = &record.attrs.migrate_from else {
        return;
    };
    if record.attrs.version.is_none() {
        cx.error_spanned_by(
            from,
            format!(
                "`migrate_from` needs `version = ..`: `{}` replaces the version of `{}`, so give it a greater one",
                record.ident,
                from.segments.last().map_or_else(String::new, |s| s.ident.to_string())
            ),
        );
    }
}

/// Enum tags are the variants' discriminants: integer literals from 0 to
/// 255, each once (rkyv archives the tag in one byte).
fn enum_tags(cx: &Ctxt, variants: &[crate::ast::Variant<'_>]) {
    let mut next = 0u64;
    let mut seen = Vec::new();
    for variant in variants {
        let tag = match variant.discriminant {
            None => next,
            Some(syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(int),
                ..
            })) => int.base10_parse::<u64>().unwrap_or(u64::MAX),
            Some(other) => {
                cx.error_spanned_by(
                    other,
                    "a stored enum's discriminants are integer literals, so that its tags are known",
                );
                next
            }
        };
        if tag > 255 {
            cx.error_spanned_by(
                variant.ident,
                format!("variant `{}` has tag {tag}; rkyv archives an enum's tag in one byte (0 to 255)", variant.ident),
            );
        }
        if seen.contains(&tag) {
            cx.error_spanned_by(variant.ident, format!("tag {tag} is given twice"));
        }
        seen.push(tag);
        next = tag.saturating_add(1);
    }
}

/// The tag of each variant: its discriminant, or one more than the last.
pub fn tags(variants: &[crate::ast::Variant<'_>]) -> Vec<u8> {
    let mut next = 0u64;
    variants
        .iter()
        .map(|variant| {
            let tag = match variant.discriminant {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(int),
                    ..
                })) => int.base10_parse::<u64>().unwrap_or(0),
                _ => next,
            };
            next = tag.saturating_add(1);
            u8::try_from(tag).unwrap_or(u8::MAX)
        })
        .collect()
}

/// The leading key field is found and ordered by the key already; an index
/// on it is redundant.
fn index_not_on_key(cx: &Ctxt, record: &Record<'_>, index: &Index) {
    if index.composite || index.method.is_some() {
        return;
    }
    let field = &record.fields[index.fields[0]];
    let leading = record
        .keys()
        .next()
        .is_some_and(|key| key.ident == field.ident);
    if leading {
        cx.error_spanned_by(
            &index.tokens,
            format!(
                "`#[index]` on key field `{}`: records are already found and ordered by their key; remove `#[index]` (or `#[key]`)",
                field.ident
            ),
        );
    }
}

/// Index values need an order-preserving encoding; an index covers one to four fields, each once.
fn index_fields(cx: &Ctxt, record: &Record<'_>, index: &Index) {
    if index.composite && index.fields.is_empty() {
        cx.error_spanned_by(
            &index.tokens,
            "an index needs at least one field: `fields(a, b)`",
        );
    }
    if index.fields.len() > MAX_KEY_FIELDS {
        cx.error_spanned_by(
            &index.tokens,
            format!(
                "an index covers at most {MAX_KEY_FIELDS} fields; this one has {}",
                index.fields.len()
            ),
        );
    }
    for (i, position) in index.fields.iter().enumerate() {
        let field = &record.fields[*position];
        if index.fields[..i].contains(position) {
            cx.error_spanned_by(
                &index.tokens,
                format!(
                    "field `{}` is listed twice in index `{}`",
                    field.ident, index.name
                ),
            );
        }
        let problem = if index.each {
            each_type_problem(&format!("field `{}`", field.ident), field.ty)
        } else {
            index_type_problem(&format!("field `{}`", field.ident), field.ty)
        };
        if let Some(problem) = problem {
            cx.error_spanned_by(field.ty.to_token_stream(), problem);
        }
        if let Some(rkyv) = &field.attrs.rkyv {
            cx.error_spanned_by(
                rkyv,
                format!(
                    "field `{}` is archived through `#[rkyv(..)]`, so its archived value is not its type's: it cannot be indexed",
                    field.ident
                ),
            );
        }
    }
}

/// `each` fans out one field (or method) into one entry per element: it
/// needs a `Vec`, and cannot be unique (one record may repeat a value, and
/// two records sharing one element would be refused for all of them).
fn each_index(cx: &Ctxt, index: &Index) {
    if !index.each {
        return;
    }
    if index.unique {
        cx.error_spanned_by(
            &index.tokens,
            format!(
                "index `{}` is `each` and `unique`: an `each` index has one entry per element, and a unique one at most one record per value; drop `unique` (or check uniqueness of elements in your code)",
                index.name
            ),
        );
    }
    if index.composite {
        cx.error_spanned_by(
            &index.tokens,
            format!(
                "index `{}`: `each` fans out one `Vec` field: write `#[index(each)]` on the field, or `by = method -> Vec<T>` for a computed one",
                index.name
            ),
        );
    }
}

/// The value type of an index computed by a method.
fn method_index(cx: &Ctxt, index: &Index) {
    let Some((method, ty)) = &index.method else {
        return;
    };
    let problem = if index.each {
        each_type_problem(&format!("`{method}()`"), ty)
    } else {
        index_type_problem(&format!("`{method}()`"), ty)
    };
    if let Some(problem) = problem {
        cx.error_spanned_by(ty.to_token_stream(), problem);
    }
}

/// Why the type of an `each` index cannot be one, if it cannot. `what` is
/// "field `tags`" or "`method()`".
fn each_type_problem(what: &str, ty: &syn::Type) -> Option<String> {
    let Shape::Vec(element) = types::shape(ty) else {
        return Some(format!(
            "`#[index(each)]` {what} has type `{}`; `each` makes one entry per element of a `Vec<T>`",
            types::describe(ty)
        ));
    };
    if types::optional(element).is_some() {
        return Some(format!(
            "`#[index(each)]` {what} has elements of type `{}`; index the values themselves: a `Vec` of integers, `bool`, `String`, `Vec<u8>` or `[u8; N]`",
            types::describe(element)
        ));
    }
    index_type_problem(&format!("{what} (each element)"), element)
}

/// Why a value of type `ty` cannot be indexed, if it cannot. `what` is
/// "field `email`" or "`method()`".
fn index_type_problem(what: &str, ty: &syn::Type) -> Option<String> {
    let shown = types::describe(ty);
    let value = types::indexed(ty);
    if let Shape::PointerSized(ident) = types::shape(value) {
        return Some(pointer_sized_problem("#[index]", what, ident));
    }
    let supported = match types::shape(value) {
        Shape::Plain(_) | Shape::String => true,
        Shape::Native(ident) => *ident != "f32" && *ident != "f64" && *ident != "char",
        Shape::Vec(inner) | Shape::Array(inner) => is_u8(inner),
        _ => false,
    };
    if supported {
        return None;
    }
    let why = if types::shape(value).is_float() {
        "floats have no total order".to_owned()
    } else {
        format!("`{}` has no index encoding", types::describe(value))
    };
    Some(format!(
        "`#[index]` {what} has type `{shown}`; {why} - index values are integers, `bool`, `String`, `Vec<u8>` or `[u8; N]`, or an `Option` of one (only `Some` values are indexed)"
    ))
}

/// Index names are distinct identifiers: each names a table of its own, and
/// the query methods made from them (`by_a`, `by_a_range`, ..) do not collide.
fn index_names(cx: &Ctxt, record: &Record<'_>) {
    let methods = |index: &Index| {
        let mut names = vec![
            format!("by_{}", index.name),
            format!("by_{}_range", index.name),
        ];
        if index.composite {
            names.push(format!("by_{}_prefix", index.name));
        }
        names
    };
    for (i, index) in record.indexes.iter().enumerate() {
        let clash = record.indexes[..i].iter().find(|other| {
            other.name != index.name && methods(other).iter().any(|m| methods(index).contains(m))
        });
        if let Some(other) = clash {
            cx.error_spanned_by(
                &index.tokens,
                format!(
                    "the queries of index `{}` would have the same names as those of index `{}`; rename one with `name = \"..\"`",
                    index.name, other.name
                ),
            );
        }
        let valid = !index.name.is_empty()
            && index
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error_spanned_by(
                &index.tokens,
                format!(
                    "index name `{}` must be made of letters, digits and `_`",
                    index.name
                ),
            );
        } else if record.indexes[..i]
            .iter()
            .any(|other| other.name == index.name)
        {
            cx.error_spanned_by(
                &index.tokens,
                format!(
                    "duplicate index name `{}`; give one of them another with `name = \"..\"`",
                    index.name
                ),
            );
        }
    }
}

/// Index values of stored records are read from rkyv's archived struct.
fn indexes_need_own_archive(cx: &Ctxt, record: &Record<'_>) {
    if record.attrs.archived_as_other && !record.indexes.is_empty() {
        cx.error_spanned_by(
            &record.indexes[0].tokens,
            "indexes read the fields of rkyv's archived struct, which `#[rkyv(as = ..)]` replaces; remove one of them",
        );
    }
}

/// A table stores one concrete type, so a record has no generic parameters.
fn not_generic(cx: &Ctxt, record: &Record<'_>) {
    let generics = &record.input.generics;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "a record cannot be generic: its table stores one concrete type; derive `StoredRecord` on a concrete struct (or wrap the generic one in a field)",
        );
    }
}

/// Exactly one key: one `#[key]` field, or up to four forming a composite key.
fn one_key_definition(cx: &Ctxt, record: &Record<'_>) {
    let keys: Vec<_> = record.keys().collect();
    if record.attrs.key_by.is_some() {
        if let Some(field) = keys.first() {
            cx.error_spanned_by(
                field.attrs.key,
                "the key is computed by `#[stored(key(by = ..))]`: remove `#[key]` here (or the computed key)",
            );
        }
        return;
    }
    if keys.is_empty() {
        cx.error_spanned_by(
            record.ident,
            format!(
                "`{}` has no `#[key]` field; mark the field that identifies a record with `#[key]`, e.g. `#[key] id: u64`, or compute the key: `#[stored(key(by = method -> Type))]`",
                record.ident
            ),
        );
    } else if keys.len() > MAX_KEY_FIELDS {
        for field in &keys[MAX_KEY_FIELDS..] {
            cx.error_spanned_by(
                field.attrs.key,
                format!(
                    "a composite key has at most {MAX_KEY_FIELDS} `#[key]` fields; this is one more"
                ),
            );
        }
    }
}

/// Key fields need a total order and an order-preserving encoding.
fn key_type(cx: &Ctxt, field: &Field<'_>) {
    if let Some(problem) = key_type_problem(&format!("field `{}`", field.ident), field.ty) {
        cx.error_spanned_by(field.ty.to_token_stream(), problem);
    }
}

/// Why the type of a `#[key]` field can never be a key, if the syntax shows it.
///
/// Everything else is left to the compiler: the type must implement
/// `FromKeyBytes` (the expansion asserts it at the field's span).
pub fn key_type_problem(what: &str, ty: &syn::Type) -> Option<String> {
    let shown = types::describe(ty);
    let problem = match types::shape(ty) {
        shape if shape.is_float() => format!(
            "`#[key]` {what} has type `{shown}`; floats have no total order - use an integer or a string key"
        ),
        Shape::Option(_) => format!(
            "`#[key]` {what} has type `{shown}`; a key must always be present - make the field required, or index it instead of keying by it"
        ),
        Shape::Vec(inner) if !is_u8(inner) => format!(
            "`#[key]` {what} has type `{shown}`; only `Vec<u8>` byte strings can be keys - for several values make several `#[key]` fields (a composite key)"
        ),
        Shape::Collection(kind) => format!(
            "`#[key]` {what} has type `{shown}`; a `{kind}` has no key encoding - use an integer, string or byte key"
        ),
        Shape::Borrowed => format!(
            "`#[key]` {what} has type `{shown}`; records own their data - use `String` or `Vec<u8>`"
        ),
        Shape::PointerSized(ident) => pointer_sized_problem("#[key]", what, ident),
        _ => return None,
    };
    Some(problem)
}

/// rkyv archives `usize`/`isize` in 32 bits by default and truncates larger
/// values, so the stored record would disagree with its key or index entry.
fn pointer_sized_problem(attribute: &str, what: &str, ty: &syn::Ident) -> String {
    let wide = if *ty == "usize" { "u64" } else { "i64" };
    format!(
        "`{attribute}` {what} has type `{ty}`, which rkyv archives in 32 bits (truncating larger values) - use `{wide}`"
    )
}

fn is_u8(ty: &syn::Type) -> bool {
    matches!(types::shape(ty), Shape::Plain(ident) if *ident == "u8")
}

/// Table names are not empty and stay out of the reserved `__` namespace.
fn table_name(cx: &Ctxt, record: &Record<'_>) {
    let Some(table) = &record.attrs.table else {
        return;
    };
    let value = table.value();
    if value.chars().any(char::is_control) {
        cx.error_spanned_by(
            table,
            "the table name contains a control character; use printable characters",
        );
    } else if value.is_empty() {
        cx.error_spanned_by(
            table,
            "the table name is empty; give a name, e.g. `#[stored(table = \"users\")]`",
        );
    } else if value.starts_with("__") {
        cx.error_spanned_by(
            table,
            format!("table name `{value}` starts with `__`, which is reserved for storage's own tables; choose another name"),
        );
    }
}
