//! Headless Chromium driven over the W3C WebDriver protocol by the machine's own
//! `chromedriver`: just the handful of commands the browser tests need.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// Where Debian's `chromium` and `chromium-driver` packages put their binaries.
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn find(candidates: &[&str], env: &str, package: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "browser tests need {package}: install Debian's `chromium` and \
                 `chromium-driver` packages (.ci/run does), or set {env}"
            )
        })
}

/// A running chromedriver with one headless Chromium session.
pub struct Chrome {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
    pub downloads: PathBuf,
}

impl Chrome {
    /// Start Chromium; every `*.<domain>` host name (and `domain` itself) resolves to
    /// 127.0.0.1, and downloads land in `downloads`.
    pub async fn start(domain: &str, downloads: &Path) -> Chrome {
        let chromium = find(CHROMIUM, "LINEUP_CHROMIUM", "chromium");
        let chromedriver = find(CHROMEDRIVER, "LINEUP_CHROMEDRIVER", "chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::create_dir_all(downloads).unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,1000",
                        format!("--host-resolver-rules=MAP *.{domain} 127.0.0.1, MAP {domain} 127.0.0.1"),
                    ],
                    "prefs": {
                        "download.default_directory": downloads,
                        "download.prompt_for_download": false,
                    },
                },
            }},
        });
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {answer}"))
            .to_owned();
        Chrome {
            driver,
            http,
            session,
            base,
            downloads: downloads.to_owned(),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("webdriver {path} failed: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        let value = self.command(reqwest::Method::GET, "/url", None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// The visible text of the page (read in one script call, so a navigation in between
    /// cannot leave us holding a stale element).
    pub async fn page_text(&self) -> String {
        let value = self
            .script("return document.body ? document.body.innerText : '';")
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    pub async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The element matching a CSS selector (waits up to 10 s for it to appear).
    pub async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let answer: Value = self
                .http
                .post(url)
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = answer["value"]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .filter(|_| answer["value"].get("error").is_none())
            {
                return id.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no element matches {css:?} on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Put a local file into an `<input type="file">`.
    pub async fn attach(&self, css: &str, file: &Path) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": file.display().to_string() })),
        )
        .await;
    }

    /// Wait until the page text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            let text = self.page_text().await;
            if text.contains(needle) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{needle:?} never appeared on {}; the page says:\n{text}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn screenshot(&self, to: &Path) {
        let value = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(to, png).unwrap();
    }

    /// The first finished download whose name starts with `prefix` (waits up to 10 s).
    pub async fn downloaded(&self, prefix: &str) -> PathBuf {
        let started = Instant::now();
        loop {
            let done = std::fs::read_dir(&self.downloads)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.starts_with(prefix) && !name.ends_with(".crdownload")
                });
            if let Some(path) = done {
                return path;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no download starting with {prefix:?} arrived in {}",
                self.downloads.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // Ending the session closes Chromium (a plain blocking request: no runtime in drop);
        // then stop the driver.
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
