//! A minimal HTTP receiver for the adapters' webhook tests: answers every request (the
//! `HEAD` an opt-in check sends as well) with 200 and hands over each POST's headers and body.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// One delivered POST: headers by lower-case name, and the raw body.
pub struct Delivered {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// The URL to register, and the deliveries as they arrive.
pub async fn start() -> (String, UnboundedReceiver<Delivered>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let method = head.split(' ').next().unwrap_or_default().to_string();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
                    })
                    .collect();
                let length = headers
                    .get("content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if method == "POST" {
                    let body = buf[head_end..head_end + length].to_vec();
                    let _ = tx.send(Delivered { headers, body });
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(reply).await;
            });
        }
    });
    (url, rx)
}

/// Waits for `count` deliveries (at most 10 s).
pub async fn collect(rx: &mut UnboundedReceiver<Delivered>, count: usize) -> Vec<Delivered> {
    let mut delivered = Vec::new();
    while delivered.len() < count {
        match tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await {
            Ok(Some(item)) => delivered.push(item),
            _ => panic!("only {} of {count} deliveries arrived", delivered.len()),
        }
    }
    delivered
}
