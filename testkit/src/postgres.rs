//! One throwaway PostgreSQL cluster per test process, a fresh database per test.
//!
//! The cluster lives in a temp dir and listens only on a unix socket there, so parallel test
//! processes never collide on a port. A watcher shell stops it and removes the directory when
//! the test process exits. Missing binaries fail loudly: a store test never passes silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The role tests connect as: not a superuser, so row-level security applies to it.
const APP_ROLE: &str = "lineup";
const PORT: u16 = 5432;
const AS_POSTGRES: [&str; 4] = [
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--",
];

struct Cluster {
    socket_dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// A URL for a new, empty database owned by an ordinary (non-superuser) role.
pub async fn fresh_postgres_url() -> String {
    let cluster = CLUSTER.get_or_init(start_cluster);
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&cluster.url("postgres", "postgres"))
        .await
        .expect("connect to the throwaway PostgreSQL as its superuser");
    sqlx::raw_sql(&format!("CREATE DATABASE {name} OWNER {APP_ROLE}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    cluster.url(APP_ROLE, &name)
}

impl Cluster {
    fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{user}@localhost/{database}?host={}&port={PORT}",
            self.socket_dir.display()
        )
    }
}

fn start_cluster() -> Cluster {
    let bin = find_binaries();
    let dir = tempfile::Builder::new()
        .prefix("lineup-pg-")
        .tempdir()
        .expect("create a temp dir for PostgreSQL")
        .keep();
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        // PostgreSQL refuses to run as root; hand the directory to the postgres account.
        run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir));
    }
    let sudo = |program: PathBuf| -> Command {
        if as_root {
            let mut c = Command::new("setpriv");
            c.args(AS_POSTGRES).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    run(sudo(bin.join("initdb")).arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]));

    let postgres = format!(
        "{} -D {} -k {} -p {PORT} -c listen_addresses= -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
         -c shared_buffers=64MB",
        bin.join("postgres").display(),
        data.display(),
        dir.display(),
    );
    let runner = if as_root {
        // setpriv execs in place, so the watcher's signal reaches postgres itself.
        format!("setpriv {} {postgres}", AS_POSTGRES.join(" "))
    } else {
        postgres
    };
    // Stop the server and remove its files once the test process is gone.
    let watcher = format!(
        "{runner} >{log} 2>&1 & pg=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.2; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        log = dir.join("server.log").display(),
        parent = std::process::id(),
        dir = dir.display(),
    );
    // The watcher outlives this process by design (it cleans up after us), so it is never
    // waited for.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watcher])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watcher shell");

    let cluster = Cluster { socket_dir: dir };
    wait_until_ready(&cluster);
    create_app_role(&cluster);
    cluster
}

fn find_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("LINEUP_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, postgres) were not found under \
             /usr/lib/postgresql/*/bin. Install Debian's `postgresql` package \
             (`.ci/run` does) or set LINEUP_PG_BIN to the directory holding them."
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_until_ready(cluster: &Cluster) {
    let socket = cluster.socket_dir.join(format!(".s.PGSQL.{PORT}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(cluster.socket_dir.join("server.log")).unwrap_or_default();
            panic!("the throwaway PostgreSQL did not start within 30 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_app_role(cluster: &Cluster) {
    let url = cluster.url("postgres", "postgres");
    // Called from inside a test's runtime: set up on a thread of our own.
    std::thread::spawn(move || create_app_role_blocking(&url))
        .join()
        .expect("setting up the application role panicked");
}

fn create_app_role_blocking(url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to set up PostgreSQL");
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut admin = loop {
            match PgConnection::connect(url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("PostgreSQL never accepted: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        sqlx::raw_sql(&format!(
            "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB"
        ))
        .execute(&mut admin)
        .await
        .expect("create the application role");
    });
}
