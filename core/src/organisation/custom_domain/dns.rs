//! A minimal DNS client for one question: the TXT records of a name, asked over UDP of the
//! first `nameserver` in /etc/resolv.conf (RFC 1035). A truncated answer is reported, not
//! retried over TCP: challenge records are small.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;

use super::TxtResolver;

const TXT: u16 = 16;
const IN: u16 = 1;
const TIMEOUT: Duration = Duration::from_secs(3);
const TRIES: usize = 2;

pub struct DnsTxtResolver {
    server: Option<SocketAddr>,
}

impl DnsTxtResolver {
    /// Ask the system's resolver (the first `nameserver` of /etc/resolv.conf).
    pub fn from_system() -> Self {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let server = conf
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .find_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53));
        Self { server }
    }

    pub fn with_server(server: SocketAddr) -> Self {
        Self {
            server: Some(server),
        }
    }
}

#[async_trait::async_trait]
impl TxtResolver for DnsTxtResolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let server = self.server.ok_or("no nameserver in /etc/resolv.conf")?;
        let id: u16 = rand::thread_rng().r#gen();
        let query = build_query(id, name)?;
        let bind = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
        socket.connect(server).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        for _ in 0..TRIES {
            socket.send(&query).await.map_err(|e| e.to_string())?;
            match tokio::time::timeout(TIMEOUT, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => match parse_txt_answer(id, &buf[..n]) {
                    // Someone else's (or a spoofed) answer: keep waiting for ours.
                    Err(e) if e == WRONG_ID => continue,
                    other => return other,
                },
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => continue,
            }
        }
        Err(format!("the DNS server {server} did not answer"))
    }
}

const WRONG_ID: &str = "answer to another question";

pub fn build_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a DNS name"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TXT.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    Ok(q)
}

/// The TXT records in a response to question `id`; NXDOMAIN is an empty list.
pub fn parse_txt_answer(id: u16, packet: &[u8]) -> Result<Vec<String>, String> {
    let short = || "the DNS answer is cut short".to_owned();
    let u16_at = |at: usize| -> Result<u16, String> {
        Ok(u16::from_be_bytes([
            *packet.get(at).ok_or_else(short)?,
            *packet.get(at + 1).ok_or_else(short)?,
        ]))
    };
    if u16_at(0)? != id {
        return Err(WRONG_ID.into());
    }
    let flags = u16_at(2)?;
    if flags & 0x8000 == 0 {
        return Err("the DNS server sent a question, not an answer".into());
    }
    if flags & 0x0200 != 0 {
        return Err("the DNS answer was truncated".into());
    }
    match flags & 0x000f {
        0 => {}
        3 => return Ok(Vec::new()),
        code => return Err(format!("the DNS server answered with error code {code}")),
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at).ok_or_else(short)? + 4;
    }
    let mut found = Vec::new();
    for _ in 0..answers {
        at = skip_name(packet, at).ok_or_else(short)?;
        let (kind, class, len) = (u16_at(at)?, u16_at(at + 2)?, u16_at(at + 8)? as usize);
        let data = packet.get(at + 10..at + 10 + len).ok_or_else(short)?;
        at += 10 + len;
        if kind != TXT || class != IN {
            continue; // e.g. the CNAME the answer went through
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = data[i] as usize;
            text.extend_from_slice(data.get(i + 1..i + 1 + n).ok_or_else(short)?);
            i += 1 + n;
        }
        found.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(found)
}

/// Where the name starting at `at` ends (labels, or a compression pointer).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + l as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver's answer to `_lineup-challenge.acme.example TXT` (id 0x1d2c): one CNAME to
    /// `c.dns.example` and two TXT records there, the second split in two strings; names
    /// after the question use compression pointers, as real servers do.
    fn recorded_answer() -> Vec<u8> {
        let mut p = vec![0x1d, 0x2c, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        p.extend(build_query(0, "_lineup-challenge.acme.example").unwrap()[12..].iter());
        // CNAME _lineup-challenge.acme.example -> c.dns.example
        p.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 15]);
        p.extend([1, b'c', 3, b'd', b'n', b's', 7]);
        p.extend(b"example");
        p.push(0);
        let target = 12 + 32 + 4 + 12; // where c.dns.example starts
        let txt = |p: &mut Vec<u8>, strings: &[&str]| {
            let len: usize = strings.iter().map(|s| s.len() + 1).sum();
            p.extend([0xc0, target as u8, 0, 16, 0, 1, 0, 0, 1, 0x2c, 0, len as u8]);
            for s in strings {
                p.push(s.len() as u8);
                p.extend(s.as_bytes());
            }
        };
        txt(&mut p, &["v=spf1 -all"]);
        txt(&mut p, &["lineup-verify=", "0123456789abcdef"]);
        p
    }

    #[test]
    fn reads_txt_records_through_a_cname_and_compression() {
        let answer = parse_txt_answer(0x1d2c, &recorded_answer()).unwrap();
        assert_eq!(
            answer,
            vec!["v=spf1 -all", "lineup-verify=0123456789abcdef"]
        );
    }

    #[test]
    fn refuses_other_answers_and_reports_errors() {
        let packet = recorded_answer();
        assert_eq!(parse_txt_answer(1, &packet).unwrap_err(), WRONG_ID);
        let mut nxdomain = packet.clone();
        nxdomain[3] = 0x83;
        assert_eq!(
            parse_txt_answer(0x1d2c, &nxdomain).unwrap(),
            Vec::<String>::new()
        );
        let mut servfail = packet.clone();
        servfail[3] = 0x82;
        assert!(
            parse_txt_answer(0x1d2c, &servfail)
                .unwrap_err()
                .contains("error code 2")
        );
        assert!(
            parse_txt_answer(0x1d2c, &packet[..40])
                .unwrap_err()
                .contains("cut short")
        );
    }

    #[test]
    fn a_query_names_the_question() {
        let q = build_query(0xabcd, "_lineup-challenge.acme.example").unwrap();
        assert_eq!(&q[..4], &[0xab, 0xcd, 0x01, 0x00]);
        assert_eq!(q[12], 17);
        assert_eq!(&q[q.len() - 4..], &[0, 16, 0, 1]);
        assert!(build_query(1, "a..b").is_err());
    }

    #[tokio::test]
    async fn asks_a_server_over_udp_and_reads_its_answer() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(
                &buf[12..n],
                &build_query(0, "_lineup-challenge.acme.example").unwrap()[12..]
            );
            let mut answer = recorded_answer();
            answer[..2].copy_from_slice(&buf[..2]);
            server.send_to(&answer, from).await.unwrap();
        });
        let found = DnsTxtResolver::with_server(addr)
            .txt("_lineup-challenge.acme.example")
            .await;
        assert_eq!(found.unwrap()[1], "lineup-verify=0123456789abcdef");
    }
}
