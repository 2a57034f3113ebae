//! The fuzz targets' bodies, shared by the cargo-fuzz binaries in
//! `fuzz_targets/` and by `tests/fuzz_corpus.rs`, which replays the checked-in
//! corpus on stable Rust.

use storage::FromKeyBytes;

/// Decodes `bytes` as `K`; whatever decodes must encode back to exactly `bytes`.
fn round_trip<K: FromKeyBytes + core::fmt::Debug>(bytes: &[u8]) {
    if let Ok(key) = K::from_key_bytes(bytes) {
        let again = key.into_key_bytes();
        assert_eq!(
            again.as_ref(),
            bytes,
            "{key:?} does not re-encode to its bytes"
        );
    }
}

/// Key decoding of arbitrary bytes: a typed error or an exact round trip.
pub fn key_decoding(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => round_trip::<u64>(bytes),
        1 => round_trip::<i32>(bytes),
        2 => round_trip::<bool>(bytes),
        3 => round_trip::<String>(bytes),
        4 => round_trip::<Vec<u8>>(bytes),
        5 => round_trip::<[u8; 4]>(bytes),
        6 => round_trip::<(String, u64)>(bytes),
        7 => round_trip::<(u16, Vec<u8>, bool)>(bytes),
        8 => round_trip::<(String, String, i64, u8)>(bytes),
        _ => round_trip::<((String, i8), Vec<u8>)>(bytes),
    }
}

/// A record with every kind of field validation has to walk.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Record {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub scores: Vec<u32>,
    pub nickname: Option<String>,
    pub address: Option<Address>,
    pub flags: [u8; 3],
    pub active: bool,
    pub ratio: f64,
    pub initial: char,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Address {
    pub street: String,
    pub zip: u32,
}

/// Validated access to arbitrary bytes, at any alignment: an error or a
/// record whose every field can be read.
pub fn record_access(data: &[u8]) {
    let Some((&shift, bytes)) = data.split_first() else {
        return;
    };
    // Move the bytes to an address `shift` past 16-byte alignment.
    let mut backing = vec![0u8; bytes.len() + 16];
    let offset = usize::from(shift % 16);
    backing[offset..offset + bytes.len()].copy_from_slice(bytes);
    let bytes = &backing[offset..offset + bytes.len()];
    let _ = storage::read_archived::<Record, _>(bytes, |r| {
        // Fields of a valid archive hold any values: add them without overflow.
        let mut total = r.id.to_native().wrapping_add(r.name.len() as u64);
        let mut add = |n: u64| total = total.wrapping_add(n);
        r.tags.iter().for_each(|t| add(t.len() as u64));
        r.scores.iter().for_each(|s| add(u64::from(s.to_native())));
        add(r.nickname.as_ref().map_or(0, |n| n.len() as u64));
        add(r
            .address
            .as_ref()
            .map_or(0, |a| a.street.len() as u64 + u64::from(a.zip.to_native())));
        r.flags.iter().for_each(|&f| add(u64::from(f)));
        add(u64::from(r.active) + u64::from(r.ratio.to_native().is_nan()));
        add(u64::from(r.initial.to_native()));
        total
    });
}
