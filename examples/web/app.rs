//! The web service of `examples/web`: tasks over HTTP with axum, on an
//! [`AsyncStorage`] in the router's state. Shared with `tests/web.rs`,
//! which runs it on loopback and talks HTTP to it.
//!
//! - `POST /tasks` `{"title": .., "status": ..}`: a new task, 201 with it;
//! - `GET /tasks/{id}`, `PUT /tasks/{id}` (the previous task back),
//!   `DELETE /tasks/{id}` (the removed task back); 404 for a missing one;
//! - `GET /tasks?limit=N&after=CURSOR`: a page and the cursor of the next;
//! - `GET /tasks?status=open`: the tasks with that status (an index);
//! - `GET /events`: server-sent events, one per committed change, with the
//!   change log's sequence number as the event id.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use storage::{AsyncStorage, ChangeKind, Cursor, Notice, StoredRecord};

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

impl From<storage::Error> for Failure {
    fn from(error: storage::Error) -> Self {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match self.0 {
            storage::Error::BadCursor { .. } => StatusCode::BAD_REQUEST,
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
            let id = counter.get("task", |n| n.to_native())?.unwrap_or(0) + 1;
            counter.put("task", &id)?;
            let mut tasks = tx.records::<Task>();
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
    if let Some(status) = listing.status {
        let items = tasks
            .with(move |t| t.by_status(status.as_str(), |_, task| Some(TaskJson::from(task))))
            .await?;
        return Ok(Json(TaskPage { items, next: None }));
    }
    let after = listing.after.map(|a| a.parse::<Cursor>()).transpose()?;
    let limit = listing.limit.unwrap_or(50).clamp(1, 1000);
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

async fn events(
    State(storage): State<AsyncStorage>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = storage.watch::<Task>().flat_map(|notice| {
        let events: Vec<Event> = match notice {
            Ok(Notice::Commit(commit)) => {
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
            Ok(Notice::Lagged { missed }) => {
                vec![Event::default().event("lagged").data(missed.to_string())]
            }
            Err(error) => vec![Event::default().event("error").data(error.to_string())],
        };
        futures_util::stream::iter(events.into_iter().map(Ok))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
