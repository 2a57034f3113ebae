//! A fan-out index over a `Vec` and indexes computed by methods compile, and
//! answer.
use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(by = domain -> String), index(by = nick -> Option<u32>), index(by = words -> Vec<String>, each))]
struct Post {
    #[key]
    id: u64,
    email: String,
    title: String,
    #[index(each)]
    tags: Vec<String>,
    #[index(each)]
    scores: Vec<u16>,
    #[index(each)]
    blobs: Vec<Vec<u8>>,
    nick: Option<u32>,
}

impl Post {
    fn domain(&self) -> String {
        self.email.rsplit('@').next().unwrap_or_default().to_owned()
    }
    fn nick(&self) -> Option<u32> {
        self.nick
    }
    fn words(&self) -> Vec<String> {
        self.title.split(' ').map(str::to_owned).collect()
    }
}

fn main() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let posts = storage.records::<Post>();
    posts.insert(&Post {
        id: 1,
        email: "a@x.org".into(),
        title: "hello world".into(),
        tags: vec!["rust".into(), "db".into()],
        scores: vec![3, 3, 9],
        blobs: vec![vec![1, 2]],
        nick: Some(7),
    })?;
    assert_eq!(posts.by_tags("db", |id, _| Some(*id))?, [1]);
    assert_eq!(posts.by_scores(3, |id, _| Some(*id))?, [1]);
    assert_eq!(posts.by_blobs(&[1u8, 2][..], |id, _| Some(*id))?, [1]);
    assert_eq!(posts.by_domain("x.org", |id, _| Some(*id))?, [1]);
    assert_eq!(posts.by_nick(7, |id, _| Some(*id))?, [1]);
    assert_eq!(posts.by_words("world", |id, _| Some(*id))?, [1]);
    assert_eq!(posts.count_by_words("hello")?, 1);
    Ok(())
}
