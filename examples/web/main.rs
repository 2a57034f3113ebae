//! A small web service on `storage`: CRUD over HTTP, paged listings, an
//! index query and server-sent events from the change feed.
//!
//! ```text
//! cargo run --example web                 # serves on 127.0.0.1:3000, data in ./tasks.redb
//! curl -X POST localhost:3000/tasks -H 'content-type: application/json' \
//!      -d '{"title":"write docs","status":"open"}'
//! curl localhost:3000/tasks?limit=10
//! curl -N localhost:3000/events           # one event per committed change
//! ```
//!
//! `tests/web.rs` runs the same router on a free port and talks HTTP to it.

mod app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tasks.redb".to_owned());
    let storage = storage::AsyncStorage::new(storage::Storage::new(&path)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "tasks in {path}, serving on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app::router(storage)).await?;
    Ok(())
}
