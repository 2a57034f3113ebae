//! The web example end to end: its router served on a free loopback port by
//! a real tokio runtime, and spoken to over real HTTP/1.1 from this test:
//! create, read, replace, delete, a paged listing followed to its end with
//! the cursor, an index query, and server-sent events from the change feed.

#[path = "../examples/web/app.rs"]
mod app;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use app::{ChangeJson, NewTask, TaskJson, TaskPage};

/// One request on a fresh connection: (status, body).
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            unchunk(body)
        } else {
            body.to_owned()
        },
    )
}

/// One server-sent event: its name, its id and its data.
type Seen = (String, Option<String>, ChangeJson);

/// Subscribes to `/events` (resuming after `last`, if given) and reads
/// `count` events in a thread.
fn events(addr: &str, last: Option<u64>, count: usize) -> std::thread::JoinHandle<Vec<Seen>> {
    let mut events = TcpStream::connect(addr).unwrap();
    events
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let resume = last.map_or_else(String::new, |seq| format!("last-event-id: {seq}\r\n"));
    write!(
        events,
        "GET /events HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n{resume}\r\n"
    )
    .unwrap();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(events).lines();
        let mut got: Vec<Seen> = Vec::new();
        // Fields until the blank line that ends an event, in any order.
        let (mut event, mut id, mut data) = (String::new(), None, None::<String>);
        while got.len() < count {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
            } else if let Some(seq) = line.strip_prefix("id: ") {
                id = Some(seq.to_owned());
            } else if let Some(text) = line.strip_prefix("data: ") {
                data = Some(text.to_owned());
            } else if line.is_empty()
                && let Some(text) = data.take()
            {
                got.push((core::mem::take(&mut event), id.take(), json(&text)));
            }
        }
        got
    })
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

fn json<T: serde::de::DeserializeOwned>(body: &str) -> T {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn new_task(title: &str, status: &str) -> String {
    serde_json::to_string(&NewTask {
        title: title.into(),
        status: status.into(),
    })
    .unwrap()
}

#[test]
fn the_web_service_over_real_http() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = storage::Storage::new(dir.path().join("tasks.redb")).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    runtime.spawn(async move {
        axum::serve(listener, app::router(storage::AsyncStorage::new(storage)))
            .await
            .unwrap();
    });

    // Server-sent events: subscribe first, read in a thread.
    let reader = events(&addr, None, 4);
    // Let the subscription be made before the first write.
    std::thread::sleep(Duration::from_millis(200));

    let (status, body) = http(
        &addr,
        "POST",
        "/tasks",
        Some(&new_task("write docs", "open")),
    );
    assert_eq!(status, 201, "{body}");
    let created: TaskJson = json(&body);
    assert_eq!(created.id, 1);
    let (status, body) = http(&addr, "GET", "/tasks/1", None);
    assert_eq!((status, json::<TaskJson>(&body)), (200, created.clone()));
    assert_eq!(http(&addr, "GET", "/tasks/99", None).0, 404);
    let (status, body) = http(
        &addr,
        "PUT",
        "/tasks/1",
        Some(&new_task("write docs", "done")),
    );
    assert_eq!((status, json::<TaskJson>(&body)), (200, created));
    let (status, body) = http(&addr, "DELETE", "/tasks/1", None);
    assert_eq!(status, 200);
    assert_eq!(json::<TaskJson>(&body).status, "done");
    assert_eq!(http(&addr, "DELETE", "/tasks/1", None).0, 404);
    let (status, _) = http(&addr, "POST", "/tasks", Some(&new_task("test it", "open")));
    assert_eq!(status, 201);

    let got = reader.join().unwrap();
    let kinds: Vec<&str> = got.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(kinds, ["insert", "update", "delete", "insert"]);
    let ids: Vec<Option<&str>> = got.iter().map(|(_, id, _)| id.as_deref()).collect();
    assert_eq!(
        ids,
        [Some("1"), Some("2"), Some("3"), Some("4")],
        "the log's sequence numbers"
    );
    assert_eq!(
        got[1].2.before.as_ref().map(|t| t.status.as_str()),
        Some("open")
    );
    assert_eq!(
        got[1].2.after.as_ref().map(|t| t.status.as_str()),
        Some("done")
    );
    assert!(got[2].2.after.is_none());

    // A listing, page by page with the cursor.
    for i in 0..12 {
        let status = if i % 3 == 0 { "open" } else { "done" };
        assert_eq!(
            http(
                &addr,
                "POST",
                "/tasks",
                Some(&new_task(&format!("t{i}"), status))
            )
            .0,
            201
        );
    }
    let mut listed = Vec::new();
    let mut path = "/tasks?limit=5".to_owned();
    loop {
        let (status, body) = http(&addr, "GET", &path, None);
        assert_eq!(status, 200, "{body}");
        let page: TaskPage = json(&body);
        listed.extend(page.items.iter().map(|t| t.id));
        match page.next {
            Some(next) => path = format!("/tasks?limit=5&after={next}"),
            None => break,
        }
    }
    assert_eq!(listed, (2..=14).collect::<Vec<u64>>());
    let (_, body) = http(&addr, "GET", "/tasks?status=open", None);
    let open: TaskPage = json(&body);
    assert_eq!(open.items.len(), 5, "{body}");
    assert_eq!(http(&addr, "GET", "/tasks?after=zz", None).0, 400);
    // The index listing pages too, by task id.
    let mut paged = Vec::new();
    let mut path = "/tasks?status=open&limit=2".to_owned();
    loop {
        let (status, body) = http(&addr, "GET", &path, None);
        assert_eq!(status, 200, "{body}");
        let page: TaskPage = json(&body);
        assert!(page.items.len() <= 2);
        paged.extend(page.items.iter().map(|t| t.id));
        match page.next {
            Some(next) => path = format!("/tasks?status=open&limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, open.items.iter().map(|t| t.id).collect::<Vec<_>>());
    assert_eq!(
        http(&addr, "GET", "/tasks?status=open&after=x", None).0,
        400
    );

    // A task `PUT` under an id the counter has not reached does not block
    // later creations.
    let (status, _) = http(&addr, "PUT", "/tasks/15", Some(&new_task("mine", "open")));
    assert_eq!(status, 201);
    let (status, body) = http(&addr, "POST", "/tasks", Some(&new_task("next", "open")));
    assert_eq!(status, 201, "{body}");
    assert_eq!(json::<TaskJson>(&body).id, 16);

    // Reconnecting with `Last-Event-ID` replays what was missed, then
    // goes on live: the 4 first commits were seen, 12 + 2 came since.
    let resumed = events(&addr, Some(4), 15);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = http(&addr, "DELETE", "/tasks/16", None);
    assert_eq!(status, 200);
    let got = resumed.join().unwrap();
    let ids: Vec<u64> = got
        .iter()
        .map(|(_, id, _)| id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (5..=19).collect::<Vec<u64>>(), "each once, in order");
    assert_eq!(got.last().unwrap().0, "delete");
    runtime.shutdown_background();
}
