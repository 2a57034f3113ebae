//! The web service of `examples/web`: tasks over HTTP with axum, on an
//! [`AsyncStorage`] in the router's state. Shared with `tests/web.rs`,
//! which runs it on loopback and talks HTTP to it.
//!
//! - `POST /tasks` `{"title": .., "status": ..}`: a new task, 201 with it;
//! - `GET /tasks/{id}`, `PUT /tasks/{id}` (the previous task back),
//!   `DELETE /tasks/{id}` (the removed task back); 404 for a missing one;
//! - `GET /tasks?limit=N&after=CURSOR`: a page and the cursor of the next;
//! - `GET /tasks?status=open&limit=N&after=ID`: the tasks with that status
//!   (an index), paged by task id;
//! - `GET /events`: server-sent events, one per committed change, with the
//!   change log's sequence number as the event id; a client reconnecting
//!   with `Last-Event-ID` first gets what it missed, from the durable log.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use storage::{AsyncStorage, ChangeKind, Commit, Cursor, Notice, StoredRecord};

/// A task, stored with a durable change log.
#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "tasks", changes)]
pub struct Task {
    #[key]
    pub id: u64,
    #[index]
    pub status: String,
    pub title: String,
}

/// A task as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskJson {
    pub id: u64,
    pub status: String,
    pub title: String,
}

impl From<&ArchivedTask> for TaskJson {
    fn from(task: &ArchivedTask) -> Self {
        TaskJson {
            id: task.id(),
            status: task.status().to_owned(),
            title: task.title().to_owned(),
        }
    }
}

impl From<Task> for TaskJson {
    fn from(task: Task) -> Self {
        TaskJson {
            id: task.id,
            status: task.status,
            title: task.title,
        }
    }
}

/// What a client sends to create or replace a task.
#[derive(Debug, Deserialize, Serialize)]
pub struct NewTask {
    pub title: String,
    pub status: String,
}

/// `GET /tasks` parameters.
#[derive(Debug, Deserialize)]
pub struct Listing {
    pub limit: Option<usize>,
    pub after: Option<String>,
    pub status: Option<String>,
}

/// A page of tasks.
#[derive(Debug, Serialize, Deserialize)]
pub struct TaskPage {
    pub items: Vec<TaskJson>,
    pub next: Option<String>,
}

/// A storage error as an HTTP answer: the request's fault or ours.
pub struct Failure(storage::Error);

/// A request the service cannot take, with why.
fn bad_request(why: impl Into<String>) -> Failure {
    Failure(storage::Error::abort(why.into()))
}

impl From<storage::Error> for Failure {
    fn from(error: storage::Error) -> Self {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match self.0 {
            storage::Error::BadCursor { .. } | storage::Error::Aborted(_) => {
                StatusCode::BAD_REQUEST
            }
            storage::Error::KeyExists { .. } | storage::Error::UniqueViolation { .. } => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.0.to_string()).into_response()
    }
}

/// The router, on `storage`.
pub fn router(storage: AsyncStorage) -> Router {
    Router::new()
        .route("/tasks", get(list).post(create))
        .route("/tasks/{id}", get(read).put(replace).delete(remove))
        .route("/events", get(events))
        .with_state(storage)
}

async fn create(
    State(storage): State<AsyncStorage>,
    Json(new): Json<NewTask>,
) -> Result<(StatusCode, Json<TaskJson>), Failure> {
    // The next id (never reused) and the insert in one transaction.
    let task = storage
        .write(move |tx| {
            let mut counter = tx.table::<&str, u64>("counters");
            let mut id = counter.get("task", |n| n.to_native())?.unwrap_or(0) + 1;
            let mut tasks = tx.records::<Task>();
            // `PUT` may have created tasks under ids of its choosing.
            while tasks.contains_key(id)? {
                id += 1;
            }
            counter.put("task", &id)?;
            let task = Task {
                id,
                status: new.status.clone(),
                title: new.title.clone(),
            };
            tasks.insert_new(&task)?;
            Ok(task)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(task.into())))
}

async fn read(
    State(storage): State<AsyncStorage>,
    Path(id): Path<u64>,
) -> Result<Response, Failure> {
    let task = storage
        .records::<Task>()
        .get(id, |t| TaskJson::from(t))
        .await?;
    Ok(match task {
        Some(task) => Json(task).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

async fn replace(
    State(storage): State<AsyncStorage>,
    Path(id): Path<u64>,
    Json(new): Json<NewTask>,
) -> Result<Response, Failure> {
    let task = Task {
        id,
        status: new.status,
        title: new.title,
    };
    let previous = storage.records::<Task>().upsert(task).await?;
    Ok(match previous {
        Some(previous) => Json(TaskJson::from(previous)).into_response(),
        None => StatusCode::CREATED.into_response(),
    })
}

async fn remove(
    State(storage): State<AsyncStorage>,
    Path(id): Path<u64>,
) -> Result<Response, Failure> {
    Ok(match storage.records::<Task>().take(id).await? {
        Some(task) => Json(TaskJson::from(task)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

async fn list(
    State(storage): State<AsyncStorage>,
    Query(listing): Query<Listing>,
) -> Result<Json<TaskPage>, Failure> {
    let tasks = storage.records::<Task>();
    let limit = listing.limit.unwrap_or(50).clamp(1, 1000);
    if let Some(status) = listing.status {
        // Tasks of one status come in id order: page by the last id.
        let after = match listing.after {
            Some(after) => Some(after.parse::<u64>().map_err(|_| {
                bad_request(format!("`after` is a task id with `status`, not {after:?}"))
            })?),
            None => None,
        };
        let mut items = tasks
            .with(move |t| {
                t.by_status(status.as_str(), |id, task| {
                    (after < Some(*id)).then(|| TaskJson::from(task))
                })
            })
            .await?;
        let next = (items.len() > limit).then(|| items[limit - 1].id.to_string());
        items.truncate(limit);
        return Ok(Json(TaskPage { items, next }));
    }
    let after = listing.after.map(|a| a.parse::<Cursor>()).transpose()?;
    let page = tasks
        .page(after, limit, |_, task| TaskJson::from(task))
        .await?;
    Ok(Json(TaskPage {
        items: page.items,
        next: page.next.map(|c| c.to_string()),
    }))
}

/// One change as an event's JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangeJson {
    pub kind: String,
    pub id: u64,
    pub before: Option<TaskJson>,
    pub after: Option<TaskJson>,
}

/// The events of one commit, each with the commit's sequence number.
fn commit_events(commit: &Commit<Task>) -> Vec<Event> {
    let seq = commit.seq();
    commit
        .changes()
        .iter()
        .map(|change| {
            let kind = match change.kind() {
                ChangeKind::Insert => "insert",
                ChangeKind::Update => "update",
                ChangeKind::Delete => "delete",
            };
            let json = ChangeJson {
                kind: kind.to_owned(),
                id: *change.key(),
                before: change.before().map(|t| TaskJson::from(t.get())),
                after: change.after().map(|t| TaskJson::from(t.get())),
            };
            let event = Event::default()
                .event(kind)
                .data(serde_json::to_string(&json).unwrap_or_default());
            match seq {
                Some(seq) => event.id(seq.to_string()),
                None => event,
            }
        })
        .collect()
}

/// The events of the commits after `seq` in the durable log, and the last
/// sequence number they reach.
fn missed_events(storage: &storage::Storage, mut seq: u64) -> (Vec<Event>, u64) {
    let log = storage.changes::<Task>();
    let mut events = Vec::new();
    loop {
        match log.since(seq, 256) {
            Ok(commits) if commits.is_empty() => return (events, seq),
            Ok(commits) => {
                for commit in &commits {
                    events.extend(commit_events(commit));
                    seq = commit.seq().unwrap_or(seq);
                }
            }
            // Trimmed past the client's position, or unreadable: say so.
            Err(error) => {
                events.push(Event::default().event("error").data(error.to_string()));
                return (events, seq);
            }
        }
    }
}

async fn events(
    State(storage): State<AsyncStorage>,
    headers: HeaderMap,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    // Subscribe first, then read the log: no commit falls between the two,
    // and commits in both are sent once (by sequence number).
    let live = storage.watch::<Task>();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (missed, sent) = match resume {
        Some(seq) => {
            let blocking = storage.blocking().clone();
            tokio::task::spawn_blocking(move || missed_events(&blocking, seq))
                .await
                .unwrap_or_else(|_| (Vec::new(), seq))
        }
        None => (Vec::new(), 0),
    };
    let live = live.flat_map(move |notice| {
        let events: Vec<Event> = match notice {
            Ok(Notice::Commit(commit)) if commit.seq().is_some_and(|seq| seq <= sent) => Vec::new(),
            Ok(Notice::Commit(commit)) => commit_events(&commit),
            Ok(Notice::Lagged { missed }) => {
                vec![Event::default().event("lagged").data(missed.to_string())]
            }
            Err(error) => vec![Event::default().event("error").data(error.to_string())],
        };
        futures_util::stream::iter(events.into_iter().map(Ok))
    });
    let stream = futures_util::stream::iter(missed.into_iter().map(Ok)).chain(live);
    Sse::new(stream).keep_alive(KeepAlive::default())
}
