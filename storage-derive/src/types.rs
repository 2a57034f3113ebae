//! What the macro can tell about a field's type from its syntax.

use syn::{GenericArgument, PathArguments, Type};

/// The shape of a field type, as far as the tokens tell.
pub enum Shape<'a> {
    /// `u8`, `i8`, `bool`: archived as themselves.
    Plain(&'a syn::Ident),
    /// Other integers, floats and `char`: archived little-endian, read with `to_native()`.
    Native(&'a syn::Ident),
    /// `usize`/`isize`: archived as 32-bit values.
    PointerSized(&'a syn::Ident),
    /// `String`.
    String,
    /// `Vec<T>`.
    Vec(&'a Type),
    /// `Option<T>`.
    Option(&'a Type),
    /// `Box<T>`.
    Box(&'a Type),
    /// `[T; N]`.
    Array(&'a Type),
    /// `HashMap`, `BTreeMap`, `HashSet`, `BTreeSet` and friends.
    Collection(&'a syn::Ident),
    /// A reference or pointer.
    Borrowed,
    /// Anything else: a nested record, a tuple, a user type.
    Other,
}

impl Shape<'_> {
    pub fn is_float(&self) -> bool {
        matches!(self, Shape::Native(ident) if *ident == "f32" || *ident == "f64")
    }
}

/// The `T` of `Option<T>`, if `ty` is spelled as an option.
pub fn optional(ty: &Type) -> Option<&Type> {
    match shape(ty) {
        Shape::Option(inner) => Some(inner),
        _ => None,
    }
}

/// `ty` without its `Option`: the type an index on the field holds.
pub fn indexed(ty: &Type) -> &Type {
    optional(ty).unwrap_or(ty)
}

/// Whether `ty` is sized, as far as the syntax tells: not `str`, a slice or a
/// trait object.
pub fn is_sized(ty: &Type) -> bool {
    match ty {
        Type::Slice(_) | Type::TraitObject(_) => false,
        Type::Path(path) => !path.path.is_ident("str"),
        Type::Group(group) => is_sized(&group.elem),
        Type::Paren(paren) => is_sized(&paren.elem),
        _ => true,
    }
}

/// The last path segment of `ty`, with its generic arguments.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// The single type argument of `Name<T>`.
fn only_type_argument(segment: &syn::PathSegment) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let first = types.next()?;
    types.next().is_none().then_some(first)
}

pub fn shape(ty: &Type) -> Shape<'_> {
    match ty {
        Type::Reference(_) | Type::Ptr(_) => return Shape::Borrowed,
        Type::Array(array) => return Shape::Array(&array.elem),
        Type::Group(group) => return shape(&group.elem),
        Type::Paren(paren) => return shape(&paren.elem),
        _ => {}
    }
    let Some(segment) = last_segment(ty) else {
        return Shape::Other;
    };
    let ident = &segment.ident;
    let bare = segment.arguments.is_empty();
    let name = ident.to_string();
    match name.as_str() {
        "u8" | "i8" | "bool" if bare => Shape::Plain(ident),
        "u16" | "u32" | "u64" | "u128" | "i16" | "i32" | "i64" | "i128" | "f32" | "f64"
        | "char"
            if bare =>
        {
            Shape::Native(ident)
        }
        "usize" | "isize" if bare => Shape::PointerSized(ident),
        "String" if bare => Shape::String,
        "Vec" => only_type_argument(segment).map_or(Shape::Other, Shape::Vec),
        "Option" => only_type_argument(segment).map_or(Shape::Other, Shape::Option),
        "Box" => only_type_argument(segment).map_or(Shape::Other, Shape::Box),
        "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" | "IndexMap" | "IndexSet" | "VecDeque"
        | "BinaryHeap" | "LinkedList" => Shape::Collection(ident),
        _ => Shape::Other,
    }
}

/// `ty` as compact text for schema descriptions: `Vec<String>`, `[u8; 4]`.
pub fn describe(ty: &Type) -> String {
    compact(&quote::quote!(#ty).to_string())
}

/// Token text without the spaces the printer puts between tokens, but for
/// those between two words and after `;`.
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if c == ' ' {
            // Keep a space only where it separates two words (`dyn Trait`)
            // or follows `;` in an array type.
            let next = chars.peek().copied();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if (word(prev) && word(next)) || prev == Some(';') {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Whether `ty` (an index value type) is a string type, whose index takes
/// text prefixes.
pub fn is_string(ty: &proc_macro2::TokenStream) -> bool {
    let text = ty.to_string().replace(' ', "");
    matches!(
        text.as_str(),
        "String"
            | "std::string::String"
            | "alloc::string::String"
            | "::std::string::String"
            | "Box<str>"
            | "&str"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_compact() {
        let ty: Type = syn::parse_quote!(::std::vec::Vec<Option<[u8; 4]>>);
        assert_eq!(describe(&ty), "::std::vec::Vec<Option<[u8; 4]>>");
        let ty: Type = syn::parse_quote!(Box<dyn Fn(u8) -> u8>);
        assert_eq!(describe(&ty), "Box<dyn Fn(u8)->u8>");
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            shape(&syn::parse_quote!(std::string::String)),
            Shape::String
        ));
        assert!(matches!(shape(&syn::parse_quote!(Vec<u8>)), Shape::Vec(_)));
        assert!(shape(&syn::parse_quote!(f64)).is_float());
        assert!(matches!(shape(&syn::parse_quote!(&str)), Shape::Borrowed));
        assert!(matches!(shape(&syn::parse_quote!(MyType)), Shape::Other));
    }
}
