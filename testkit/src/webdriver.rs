//! Headless Chromium driven by the machine's own `chromedriver` through `fantoccini`: started
//! with the flags the browser tests need, and the handful of steps they take.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::NewSessionError;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Where Debian's `chromium` and `chromium-driver` packages put their binaries.
const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
/// How long an element may take to appear.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);

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
    client: Client,
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
        std::fs::create_dir_all(downloads).unwrap();
        let capabilities = json!({
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
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("the capabilities are a JSON object")
        };
        let client = connect(&format!("http://127.0.0.1:{port}"), capabilities).await;
        Chrome {
            driver,
            client,
            downloads: downloads.to_owned(),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("webdriver could not open {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("webdriver has no current URL: {e}"))
            .into()
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
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("webdriver script {script:?} failed: {e}"))
    }

    /// The element matching a CSS selector (waits up to 10 s for it to appear).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(FIND_TIMEOUT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no element matches {css:?} on {}: {e}",
                self.current_url().await
            ),
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("webdriver could not clear {css:?}: {e}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("webdriver could not type into {css:?}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("webdriver could not click {css:?}: {e}"));
    }

    /// Put a local file into an `<input type="file">`.
    pub async fn attach(&self, css: &str, file: &Path) {
        self.find(css)
            .await
            .send_keys(&file.display().to_string())
            .await
            .unwrap_or_else(|e| panic!("webdriver could not attach {}: {e}", file.display()));
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
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("webdriver took no screenshot: {e}"));
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

/// A session on the chromedriver at `webdriver`, waiting up to 20 s for it to listen.
async fn connect(webdriver: &str, capabilities: Capabilities) -> Client {
    // chromedriver is on loopback: plain http, no TLS stack needed.
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let started = Instant::now();
    loop {
        match builder.connect(webdriver).await {
            Ok(client) => return client,
            Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_))
                if started.elapsed() < Duration::from_secs(20) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("chromedriver gave no session: {e}"),
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then stop the driver. The session is ended by a
        // task on the test's runtime, so it is awaited from outside that runtime's scheduler.
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let client = self.client.clone();
            let _ = tokio::task::block_in_place(|| runtime.block_on(client.close()));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
