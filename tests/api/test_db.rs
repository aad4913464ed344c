//! One fresh PostgreSQL database per test, cloned from a migrated template.
//!
//! The server is found at `TEST_DATABASE_URL`, then `DATABASE_URL`, then the
//! default URL; when none answers and a Docker engine is reachable,
//! `postgres:16-alpine` is started once with testcontainers.
//! `TESSERA_TEST_CONTAINER=1` skips the URLs and always starts the container.
//!
//! A container we started is removed when the test process exits, failed
//! tests included (an `atexit` hook; testcontainers' own reaper is not used).
//! A process that is killed instead (Ctrl-C, SIGKILL) cannot run that hook:
//! each container is labelled with its owner, and the next start removes the
//! ones whose owner is gone.

use std::io::Write;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::SyncRunner;
use testcontainers_modules::testcontainers::{Container, ImageExt};

/// Prefix of the migrated template's name; the rest is a digest of
/// `migrations/`, so checkouts with other migrations (branches, worktrees)
/// sharing one server never reuse each other's template.
const TEMPLATE_PREFIX: &str = "tessera_test_template";
/// Arbitrary key for the advisory lock that serialises template builds.
const TEMPLATE_LOCK_KEY: i64 = 0x7e55_e7a0;
/// `1`: always use a testcontainers PostgreSQL, never a local server.
const CONTAINER_SWITCH: &str = "TESSERA_TEST_CONTAINER";
/// Label on every container we start: `<hostname>/<pid>` of the test process.
const OWNER_LABEL: &str = "tessera.test-db.owner";

/// A URL of the test PostgreSQL server whose path we replace with each
/// database name, or why there is none (kept, so that the other tests fail
/// at once instead of each trying to start a container again).
static SERVER: OnceLock<Result<url::Url, String>> = OnceLock::new();
/// The container we started, if any; taken and removed at process exit.
static CONTAINER: Mutex<Option<Container<Postgres>>> = Mutex::new(None);

fn server() -> &'static url::Url {
    let located = SERVER.get_or_init(|| {
        // Testcontainers' sync runner starts its own runtime, which cannot
        // nest inside the test's, so resolve on a plain thread.
        std::thread::spawn(locate_server).join().map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "locating PostgreSQL panicked".to_owned())
        })
    });
    match located {
        Ok(url) => url,
        Err(why) => panic!("{why}"),
    }
}

fn locate_server() -> url::Url {
    // Before the first connection: no OpenSSL cleanup at exit under the
    // pools' threads (a SIGSEGV at exit against SCRAM-authenticated servers).
    tessera::db::init_crypto();
    match std::env::var(CONTAINER_SWITCH).as_deref() {
        Ok("1") => return start_container(&format!("{CONTAINER_SWITCH}=1")),
        Ok("" | "0") | Err(_) => {}
        Ok(other) => panic!("{CONTAINER_SWITCH}: expected 1 or 0, got {other:?}"),
    }
    if let Some(url) = crate::local_postgres::reachable_server() {
        return url;
    }
    start_container("no PostgreSQL at TEST_DATABASE_URL, DATABASE_URL or the default URL")
}

/// Starts `postgres:16-alpine` and arranges for its removal at exit;
/// `reason` says why, in the log and in the panic if it cannot start.
fn start_container(reason: &str) -> url::Url {
    let host = hostname();
    remove_orphaned_containers(&host);
    let owner = format!("{host}/{}", std::process::id());
    let container = Postgres::default()
        .with_tag("16-alpine")
        .with_label(OWNER_LABEL, &owner)
        // On a loaded 2-core CI machine a start overran testcontainers'
        // default 60 s, with initdb still syncing: skip that sync (the data
        // is thrown away; the server already runs with fsync=off) and allow
        // more time.
        .with_env_var("POSTGRES_INITDB_ARGS", "--no-sync")
        .with_startup_timeout(Duration::from_secs(300))
        .start()
        .unwrap_or_else(|err| {
            panic!("{reason}, and testcontainers could not start postgres:16-alpine: {err}")
        });
    let host = container.get_host().expect("container host");
    let port = container.get_host_port_ipv4(5432).expect("container port");
    // Written to stderr directly, past the test harness's capture, so that
    // the CI log shows which server the tests ran against.
    let _ = writeln!(
        std::io::stderr(),
        "test_db: {reason}: started postgres:16-alpine container {} on {host}:{port}",
        short_id(container.id())
    );
    spawn_reaper(container.id());
    *CONTAINER.lock().unwrap_or_else(|e| e.into_inner()) = Some(container);
    // SAFETY: registers a plain function with no arguments.
    if unsafe { libc::atexit(remove_container_at_exit) } != 0 {
        let _ = writeln!(
            std::io::stderr(),
            "test_db: atexit failed; the container is removed by the next run"
        );
    }
    url::Url::parse(&format!(
        // No TLS to a throwaway local container: at exit, r2d2 threads of
        // apps still alive may reconnect after the container is gone, and a
        // TLS handshake then races OpenSSL's exit handler (a SIGSEGV).
        "postgres://postgres:postgres@{host}:{port}/postgres?sslmode=disable&gssencmode=disable"
    ))
    .expect("container URL")
}

/// A detached watcher that removes the container once this process is gone,
/// however it ends (an exit handler cannot run after a crash or SIGKILL).
/// Its own session, so a Ctrl-C to the test's process group spares it.
fn spawn_reaper(container_id: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; docker rm --force --volumes {container_id} >/dev/null 2>&1",
        pid = std::process::id()
    );
    let spawned = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = spawned {
        let _ = writeln!(std::io::stderr(), "test_db: no reaper ({err}); atexit only");
    }
}

/// Runs at process exit, also when libtest exits 101 after failed tests.
extern "C" fn remove_container_at_exit() {
    let Some(container) = CONTAINER.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let full_id = container.id().to_owned();
    let id = short_id(&full_id).to_owned();
    // Not testcontainers' own client: at exit, libraries with exit handlers
    // of their own (OpenSSL's, linked for passkeys) may already be torn
    // down, and a client that starts a runtime and a connection then
    // crashes the process. The docker CLI runs in its own process.
    std::mem::forget(container);
    let outcome = match Command::new("docker")
        .args(["rm", "--force", "--volumes", &full_id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) if status.success() => "removed".to_owned(),
        Ok(status) => format!("could not remove: docker rm exited with {status}"),
        Err(err) => format!("could not remove: {err}"),
    };
    let _ = writeln!(std::io::stderr(), "test_db: container {id} {outcome}");
}

/// This machine's name, the first half of [`OWNER_LABEL`]'s value.
fn hostname() -> String {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; on error it stays zeroed.
    unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// Removes containers left by test processes of this host that were killed
/// before their exit hook ran. Containers of live processes (another
/// `cargo test` running at the same time) and of other hosts are kept.
/// Uses the `docker` CLI; without it, nothing is swept.
fn remove_orphaned_containers(host: &str) {
    let Ok(listed) = Command::new("docker")
        .args(["ps", "-a", "--filter", &format!("label={OWNER_LABEL}")])
        .args([
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"),
        ])
        .output()
    else {
        return;
    };
    let orphans: Vec<&str> = std::str::from_utf8(&listed.stdout)
        .unwrap_or("")
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, owner)| {
            owner
                .rsplit_once('/')
                .and_then(|(h, pid)| Some((h, pid.parse::<libc::pid_t>().ok()?)))
                .is_some_and(|(h, pid)| h == host && !process_alive(pid))
        })
        .map(|(id, _)| id)
        .collect();
    if orphans.is_empty() {
        return;
    }
    let removed = Command::new("docker")
        .args(["rm", "--force", "--volumes"])
        .args(&orphans)
        .output()
        .is_ok_and(|out| out.status.success());
    let _ = writeln!(
        std::io::stderr(),
        "test_db: {} container(s) left by killed test processes: {}",
        if removed {
            "removed"
        } else {
            "could not remove"
        },
        orphans.join(" ")
    );
}

/// Whether a process with this id runs on this machine.
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The 12-character container id that `docker ps` shows.
fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn url_for(database: &str) -> String {
    let mut url = server().clone();
    url.set_path(&format!("/{database}"));
    url.to_string()
}

fn admin_connection() -> PgConnection {
    PgConnection::establish(server().as_str()).expect("connect to the postgres database")
}

static TEMPLATE_READY: OnceLock<()> = OnceLock::new();

/// The template's name: the prefix and a digest of every file under
/// `migrations/` (names and contents).
fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
            .expect("read migrations/")
            .flatten()
            .flat_map(|dir| {
                std::fs::read_dir(dir.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|entry| entry.path())
            .collect();
        files.sort();
        let mut digest = Sha256::new();
        for file in files {
            digest.update(
                file.strip_prefix(&root)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .as_bytes(),
            );
            digest.update(std::fs::read(&file).unwrap_or_default());
        }
        let hex: String = digest.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{TEMPLATE_PREFIX}_{hex}")
    })
}

/// Creates (or brings up to date) the migrated template, once per process,
/// under an advisory lock so parallel test processes do not collide.
fn ensure_template() {
    TEMPLATE_READY.get_or_init(|| {
        let mut admin = admin_connection();
        diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
            .execute(&mut admin)
            .expect("advisory lock");
        let exists = diesel::sql_query(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{}'",
            template_name()
        ))
        .execute(&mut admin)
        .expect("inspect pg_database")
            > 0;
        if !exists {
            diesel::sql_query(format!("CREATE DATABASE {}", template_name()))
                .execute(&mut admin)
                .expect("create template database");
        }
        {
            let mut template = PgConnection::establish(&url_for(template_name()))
                .expect("connect to the template");
            template
                .run_pending_migrations(tessera::db::MIGRATIONS)
                .expect("migrate the template");
        }
        diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
            .execute(&mut admin)
            .expect("advisory unlock");
    });
}

/// A database that exists for one test and is dropped after it.
pub struct TestDatabase {
    name: String,
    url: String,
    /// False for a [`TestDatabase::share`]d handle, which drops nothing.
    owner: bool,
}

impl TestDatabase {
    /// Clones the template into a new uniquely named database.
    pub fn create() -> Self {
        ensure_template();
        let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection();
        // The template may briefly have a connection from a concurrent
        // migration check; retry a few times.
        let mut attempts = 0;
        loop {
            // WAL_LOG, not FILE_COPY: FILE_COPY forces a checkpoint on every
            // create; measured here at 1.34 s vs 0.55 s per database.
            let result = diesel::sql_query(format!(
                "CREATE DATABASE {name} TEMPLATE {} STRATEGY = WAL_LOG",
                template_name()
            ))
            .execute(&mut admin);
            match result {
                Ok(_) => break,
                Err(err) if attempts < 20 => {
                    attempts += 1;
                    let _ = err;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(err) => panic!("cannot create test database: {err}"),
            }
        }
        let url = url_for(&name);
        Self {
            name,
            url,
            owner: true,
        }
    }

    /// Another handle on the same database (for a second app instance);
    /// only the original drops the database.
    pub fn share(&self) -> Self {
        Self {
            name: self.name.clone(),
            url: self.url.clone(),
            owner: false,
        }
    }

    /// The same as [`TestDatabase::share`].
    pub fn shared(&self) -> Self {
        self.share()
    }

    /// A second handle on a database another handle owns, by URL (a second
    /// app on the same database); dropping it leaves the database alone.
    pub fn borrowed(url: &str) -> Self {
        Self {
            name: url.rsplit('/').next().unwrap_or_default().to_owned(),
            url: url.to_owned(),
            owner: false,
        }
    }

    /// Connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Makes the database unreachable: new connections are refused and the
    /// open ones (the app's pool) are terminated.
    pub fn cut_off(&self) {
        let mut admin = admin_connection();
        diesel::sql_query(format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            self.name
        ))
        .execute(&mut admin)
        .expect("disallow connections");
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ))
        .execute(&mut admin)
        .expect("terminate connections");
    }

    /// A direct connection, for arranging or inspecting rows.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let name = self.name.clone();
        // Dropping may run inside the test's runtime; a plain thread keeps
        // any blocking work out of it.
        let _ = std::thread::spawn(move || {
            let mut admin = admin_connection();
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        })
        .join();
    }
}
