//! Real etcd clusters for the tests: members started from the `etcd` binary
//! on free loopback ports, in a temporary directory, killed when the test
//! process ends (each member runs under a small shell watchdog that kills
//! it once its parent is gone).
//!
//! The members run with `--max-txn-ops 100000` and `--max-request-bytes`
//! 32 MiB, above etcd's defaults (128 and 1.5 MiB), so that the suites'
//! batches fit in one transaction; the limit tests start their own cluster
//! with the defaults.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use storage::Storage;

/// Whether the `etcd` binary is installed; prints the skip line once if not.
pub fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let found = Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!(
                "note: etcd tests skipped: no `etcd` binary on the PATH (Debian: apt-get install etcd-server; .ci/run installs it)"
            );
        }
        found
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Member {
    args: Vec<String>,
    /// The etcd process's id, while it runs.
    pid: Option<u32>,
    watchdog: Option<Child>,
}

/// A cluster of etcd members on loopback.
pub struct Cluster {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
    pub endpoints: Vec<String>,
}

impl Cluster {
    /// Starts `size` members (with `extra` flags), or `None` if etcd is not
    /// installed.
    pub fn start(size: usize, extra: &[&str]) -> Option<Cluster> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let token = format!("storage-test-{}-{}", std::process::id(), ports[0].0);
        let mut members = Vec::new();
        let mut endpoints = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let data: PathBuf = dir.path().join(format!("m{i}"));
            let mut args: Vec<String> = [
                "--name".to_owned(),
                format!("m{i}"),
                "--data-dir".into(),
                data.display().to_string(),
                "--listen-client-urls".into(),
                format!("http://127.0.0.1:{client}"),
                "--advertise-client-urls".into(),
                format!("http://127.0.0.1:{client}"),
                "--listen-peer-urls".into(),
                format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls".into(),
                format!("http://127.0.0.1:{peer}"),
                "--initial-cluster".into(),
                initial.join(","),
                "--initial-cluster-state".into(),
                "new".into(),
                "--initial-cluster-token".into(),
                token.clone(),
                "--heartbeat-interval".into(),
                "10".into(),
                "--election-timeout".into(),
                "100".into(),
                "--unsafe-no-fsync".into(),
                "--logger".into(),
                "zap".into(),
                "--log-level".into(),
                "error".into(),
                "--max-txn-ops".into(),
                "100000".into(),
                "--max-request-bytes".into(),
                (32 << 20).to_string(),
            ]
            .into();
            // Later flags win: a test may lower the limits again.
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            endpoints.push(format!("http://127.0.0.1:{client}"));
            members.push(Member {
                args,
                pid: None,
                watchdog: None,
            });
        }
        let mut cluster = Cluster {
            _dir: dir,
            members,
            endpoints,
        };
        for i in 0..size {
            cluster.run(i);
        }
        cluster.wait_ready();
        Some(cluster)
    }

    /// A cluster shared by the tests of this process, each in its own namespace.
    pub fn shared() -> Option<&'static Cluster> {
        static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start(3, &[])).as_ref()
    }

    fn run(&mut self, i: usize) {
        let root = self._dir.path().to_path_buf();
        let member = &mut self.members[i];
        // The watchdog starts etcd, prints its pid, and kills it once the
        // test process (its parent) or etcd itself is gone.
        // When the test process is gone it also removes the cluster's
        // directory, which a cluster in a static is never dropped to do.
        let script = r#"root=$1; shift; etcd "$@" >/dev/null 2>&1 & pid=$!; echo $pid; parent=$PPID; while kill -0 $parent 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.2; done; kill -9 $pid 2>/dev/null; kill -0 $parent 2>/dev/null || rm -rf "$root""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&root)
            .args(&member.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("etcd pid");
        member.pid = line.trim().parse().ok();
        member.watchdog = Some(child);
    }

    /// Waits until the cluster answers a write.
    pub fn wait_ready(&self) {
        // Generous: a loaded CI machine starts three members slowly.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let opened = Storage::builder()
                .etcd(self.endpoints.clone())
                .namespace("readiness")
                .timeout(Duration::from_secs(2))
                .open();
            let last = match opened {
                Ok(storage) => match storage.put("ready", 1u64, &1u64) {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "etcd cluster did not become ready in 60 s (is the disk full?): {last}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        let member = &mut self.members[i];
        if let Some(pid) = member.pid.take() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            // Wait for it to be gone, so that its ports are free again.
            while Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(mut watchdog) = member.watchdog.take() {
            let _ = watchdog.wait();
        }
    }

    /// Starts member `i` again, on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.run(i);
    }

    /// A storage on this cluster, in `namespace`.
    pub fn storage(&self, namespace: &str) -> Storage {
        self.storage_with(namespace, Duration::from_secs(5))
    }

    /// A storage on this cluster with another timeout.
    pub fn storage_with(&self, namespace: &str, timeout: Duration) -> Storage {
        Storage::builder()
            .etcd(self.endpoints.clone())
            .namespace(namespace)
            .timeout(timeout)
            .open()
            .expect("open a storage on the cluster")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A namespace no other test of this process uses.
pub fn namespace(test: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
