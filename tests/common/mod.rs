//! What the binary's end-to-end tests share: run `lineup` as a user would, find its address,
//! stop it the way an operator does.

// Each test binary uses part of this module; the rest would be reported as dead code.
#![allow(dead_code)]

pub mod fleet;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub url: String,
    pub simulator_url: Option<String>,
    /// What the server printed (and logged) after its start-up lines.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn lineup(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lineup"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Start the binary and wait for its "running on" line (seeding included).
pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = lineup(args, env);
    if !env.iter().any(|(k, _)| *k == "LINEUP_LISTEN") {
        command.env("LINEUP_LISTEN", "127.0.0.1:0");
    }
    if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
        command.env("RUST_LOG", "warn");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run lineup");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut simulator_url = None;
    let own_provider = env.iter().any(|(k, _)| *k == "PROVIDER_BASE_URL");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("Lineup is running on ") {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.trim().strip_prefix("provider: built-in simulator at ") {
            simulator_url = rest.split_whitespace().next().map(str::to_owned);
        }
        // `serve` names its built-in simulator right after its address.
        let simulator_named = simulator_url.is_some() || own_provider;
        if line.starts_with("Press Ctrl-C")
            || (url.is_some() && simulator_named && !args.contains(&"demo"))
        {
            break;
        }
    }
    // Keep draining stdout (where the log goes) so the server never blocks on a full pipe.
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = output.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    let url = url.expect("lineup printed its address");
    Server {
        child,
        url,
        simulator_url,
        output,
    }
}

/// A test that fails mid-way must not leave its server running (holding the test's output).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn get(&self, path: &str) -> (u16, String) {
        get(&format!("{}{path}", self.url))
    }

    /// Ctrl-C, and the process must exit cleanly and promptly.
    pub fn interrupt(mut self) {
        self.signal("-INT");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "lineup exited with {status} after Ctrl-C");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lineup did not stop within 15 s of Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as an orchestrator stops a replica: how it exited (`None`: still running
    /// after `patience`, then killed) and how long it took.
    pub fn terminate(mut self, patience: Duration) -> (Option<ExitStatus>, Duration) {
        let asked = Instant::now();
        self.signal("-TERM");
        while asked.elapsed() < patience {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (Some(status), asked.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (None, asked.elapsed())
    }

    /// `kill -9`: the process gets no chance to finish anything.
    pub fn kill_hard(mut self) {
        self.signal("-KILL");
        self.child.wait().unwrap();
    }

    /// Send `signal` (`-TERM`, `-INT`, `-KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success(), "kill {signal} {pid} failed");
    }
}

pub fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("GET");
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

/// A listen address nobody uses now, for a server whose links must name its real port
/// (install links and the portal's addresses are built before it listens).
pub fn free_listen_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}
