//! The TXT records of a name, looked up with hickory-resolver through the name servers of
//! /etc/resolv.conf (UDP, and TCP for an answer too long for UDP). Answers are not cached: an
//! admin who has just added the challenge record must see it on the next check.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{ResolverBuilder, TokioResolver};

use super::TxtResolver;

const TIMEOUT: Duration = Duration::from_secs(3);
const TRIES: usize = 2;

pub struct DnsTxtResolver {
    resolver: Result<TokioResolver, String>,
}

impl DnsTxtResolver {
    /// Ask the system's resolvers (the `nameserver`s of /etc/resolv.conf).
    pub fn from_system() -> Self {
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| format!("no usable nameserver in /etc/resolv.conf: {e}"))
            .and_then(build);
        Self { resolver }
    }

    pub fn with_server(server: SocketAddr) -> Self {
        let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
            .into_iter()
            .map(|mut connection| {
                connection.port = server.port();
                connection
            })
            .collect();
        let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
            server.ip(),
            true,
            connections,
        )]);
        let builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        Self {
            resolver: build(builder),
        }
    }
}

fn build(mut builder: ResolverBuilder<TokioRuntimeProvider>) -> Result<TokioResolver, String> {
    let options = builder.options_mut();
    options.timeout = TIMEOUT;
    options.attempts = TRIES;
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    builder.build().map_err(|e| e.to_string())
}

#[async_trait::async_trait]
impl TxtResolver for DnsTxtResolver {
    /// Each record's strings joined into one; a name that does not exist (or has no TXT
    /// records) is an empty list.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let resolver = self.resolver.as_ref().map_err(Clone::clone)?;
        // Fully qualified, so no search domain of resolv.conf is tried first.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(txt.to_string()),
                    _ => None, // e.g. the CNAME the answer went through
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("looking up the TXT records of {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{CNAME, TXT};
    use hickory_resolver::proto::rr::{Name, Record};
    use tokio::net::UdpSocket;

    use super::*;

    /// A name server on a loopback UDP port that answers every question with `answer`, built
    /// from the question (hickory's own message types: this module writes no DNS bytes).
    async fn name_server(answer: fn(&Message) -> Message) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let question = Message::from_vec(&buf[..n]).unwrap();
                let reply = answer(&question).to_vec().unwrap();
                socket.send_to(&reply, from).await.unwrap();
            }
        });
        addr
    }

    fn reply_to(question: &Message, code: ResponseCode) -> Message {
        let mut reply = Message::new(
            question.metadata.id,
            MessageType::Response,
            question.metadata.op_code,
        );
        reply.metadata.recursion_desired = question.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.response_code = code;
        reply.add_queries(question.queries.clone());
        reply
    }

    /// A CNAME to `c.dns.example` and two TXT records there, the second split in two strings.
    fn challenge_answer(question: &Message) -> Message {
        let asked = question.queries[0].name().clone();
        let target = Name::from_ascii("c.dns.example.").unwrap();
        let mut reply = reply_to(question, ResponseCode::NoError);
        reply.add_answer(Record::from_rdata(
            asked,
            3600,
            RData::CNAME(CNAME(target.clone())),
        ));
        for strings in [
            vec!["v=spf1 -all"],
            vec!["lineup-verify=", "0123456789abcdef"],
        ] {
            let txt = TXT::new(strings.into_iter().map(str::to_owned).collect());
            reply.add_answer(Record::from_rdata(target.clone(), 300, RData::TXT(txt)));
        }
        reply
    }

    #[tokio::test]
    async fn asks_a_server_and_joins_each_records_strings() {
        let server = name_server(challenge_answer).await;
        let found = DnsTxtResolver::with_server(server)
            .txt("_lineup-challenge.acme.example")
            .await;
        assert_eq!(
            found.unwrap(),
            vec!["v=spf1 -all", "lineup-verify=0123456789abcdef"]
        );
    }

    #[tokio::test]
    async fn a_missing_name_is_no_records_and_a_failing_server_an_error() {
        let server = name_server(|q| reply_to(q, ResponseCode::NXDomain)).await;
        let found = DnsTxtResolver::with_server(server)
            .txt("_lineup-challenge.nobody.example")
            .await;
        assert_eq!(found.unwrap(), Vec::<String>::new());

        let server = name_server(|q| reply_to(q, ResponseCode::Refused)).await;
        let refused = DnsTxtResolver::with_server(server)
            .txt("_lineup-challenge.acme.example")
            .await
            .unwrap_err();
        assert!(
            refused.contains("_lineup-challenge.acme.example"),
            "{refused}"
        );
    }
}
