//! Key encodings: round-trip and order preservation for every key type,
//! checked with property tests.

use proptest::prelude::*;
use storage::{FromKeyBytes, IntoKeyBytes, KeyError};

fn encode<K: IntoKeyBytes>(key: &K) -> Vec<u8> {
    key.into_key_bytes().as_ref().to_vec()
}

/// `a < b` iff `enc(a) < enc(b)`, and both decode back exactly.
fn check<K: FromKeyBytes + Ord + core::fmt::Debug>(a: &K, b: &K) {
    let (ea, eb) = (encode(a), encode(b));
    assert_eq!(a.cmp(b), ea.cmp(&eb), "order of {a:?} and {b:?}");
    assert_eq!(
        K::from_key_bytes(&ea).as_ref(),
        Ok(a),
        "round trip of {a:?}"
    );
    assert_eq!(
        K::from_key_bytes(&eb).as_ref(),
        Ok(b),
        "round trip of {b:?}"
    );
}

macro_rules! key_properties {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            $(
                #[test]
                fn $name(a in $strategy, b in $strategy) {
                    let (a, b): ($ty, $ty) = (a, b);
                    check(&a, &b);
                    check(&a, &a);
                }
            )*
        }
    };
}

/// Strings biased towards the bytes the escaping treats specially.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c\u{0}\u{7f}\u{ff}]{0,6}", any::<String>(),]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(0xFE), Just(0xFF)],
            0..6
        ),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

key_properties! {
    u8_keys: u8 = any::<u8>();
    u16_keys: u16 = any::<u16>();
    u32_keys: u32 = any::<u32>();
    u64_keys: u64 = any::<u64>();
    u128_keys: u128 = any::<u128>();
    usize_keys: usize = any::<usize>();
    i8_keys: i8 = any::<i8>();
    i16_keys: i16 = any::<i16>();
    i32_keys: i32 = any::<i32>();
    i64_keys: i64 = any::<i64>();
    i128_keys: i128 = any::<i128>();
    isize_keys: isize = any::<isize>();
    bool_keys: bool = any::<bool>();
    array_keys: [u8; 4] = any::<[u8; 4]>();
    string_keys: String = text();
    byte_keys: Vec<u8> = bytes();
    string_u64_keys: (String, u64) = (text(), any::<u64>());
    i64_string_keys: (i64, String) = (any::<i64>(), text());
    string_string_keys: (String, String) = (text(), text());
    bytes_bool_keys: (Vec<u8>, bool) = (bytes(), any::<bool>());
    one_tuple_keys: (String,) = (text(),);
    triple_keys: (u8, String, i32) = (0u8..3, text(), any::<i32>());
    quad_keys: (String, i16, Vec<u8>, u128) = (text(), any::<i16>(), bytes(), any::<u128>());
    nested_keys: ((String, u8), String) = ((text(), any::<u8>()), text());
}

proptest! {
    #[test]
    fn borrowed_forms_encode_like_owned(s in text(), b in bytes(), n in any::<u64>()) {
        prop_assert_eq!(encode(&s.as_str()), encode(&s));
        prop_assert_eq!(encode(&&s), encode(&s));
        prop_assert_eq!(encode(&b.as_slice()), encode(&b));
        prop_assert_eq!(encode(&(s.as_str(), &n)), encode(&(s.clone(), n)));
    }

    #[test]
    fn leading_parts_are_byte_prefixes(s in text(), n in any::<u32>(), t in text()) {
        let whole = encode(&(s.clone(), n, t.clone()));
        prop_assert!(whole.starts_with(&encode(&(s.clone(),))));
        prop_assert!(whole.starts_with(&encode(&(s.clone(), n))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        // Either a key or a typed error, whatever the bytes.
        let _ = <(String, u64)>::from_key_bytes(&bytes);
        let _ = <(Vec<u8>, bool, i16)>::from_key_bytes(&bytes);
        let _ = String::from_key_bytes(&bytes);
        let _ = u64::from_key_bytes(&bytes);
    }
}

#[test]
fn integers_are_big_endian_with_the_sign_flipped() {
    assert_eq!(encode(&0x0102u16), [1, 2]);
    assert_eq!(encode(&-1i8), [0x7F]);
    assert_eq!(encode(&0i8), [0x80]);
    assert_eq!(encode(&42usize), encode(&42u64));
    assert_eq!(encode(&true), [1]);
}

#[test]
fn strings_are_stored_as_is_and_escaped_inside_tuples() {
    assert_eq!(encode(&"a\0b"), b"a\0b");
    assert_eq!(encode(&("a\0b",)), b"a\0\xFFb\0\0");
}

#[test]
fn bad_bytes_give_typed_errors() {
    assert!(matches!(
        u32::from_key_bytes(&[1, 2]),
        Err(KeyError::Length {
            expected: 4,
            found: 2,
            ..
        })
    ));
    assert_eq!(String::from_key_bytes(&[0xFF]), Err(KeyError::Utf8));
    assert_eq!(
        <(u8, u8)>::from_key_bytes(&[1, 2, 3]),
        Err(KeyError::Trailing(1))
    );
    assert_eq!(
        <(String, u8)>::from_key_bytes(b"abc"),
        Err(KeyError::Escape)
    );
}
