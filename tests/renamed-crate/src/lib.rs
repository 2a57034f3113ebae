//! `#[stored(crate = "db")]`: the derive works when `storage` is a renamed
//! dependency and `::storage` does not exist.

/// A record whose derive reaches the runtime as `db`.
#[derive(db::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(crate = "db", table = "notes")]
pub struct Note {
    /// The key.
    #[key]
    pub id: u32,
    /// The text.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_works_through_a_renamed_dependency() -> db::Result<()> {
        let storage = db::Storage::in_memory()?;
        storage.records::<Note>().insert(&Note {
            id: 1,
            text: "hello".into(),
        })?;
        let text = storage.records::<Note>().get(1, |n| n.text().to_owned())?;
        assert_eq!(text.as_deref(), Some("hello"));
        assert_eq!(<Note as db::StoredRecord>::SCHEMA.table, "notes");
        Ok(())
    }
}
