//! A tiny HTTP/1.1 client over a TCP stream for the web API tests (no client
//! crate needed): one request per connection, chunked bodies undone, and an
//! event-stream reader that waits for a string with a deadline.

use crate::harness::{Daemon, TEN_SECS};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node's web UI: its address and token, from the ready line's URL.
pub struct Web {
    pub addr: String,
    pub token: String,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// Asserts a JSON error with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
}

impl Web {
    pub fn of(d: &Daemon) -> Web {
        let url = d.ready["web"].as_str().expect("web URL in the ready line");
        let rest = url.strip_prefix("http://").unwrap();
        let (addr, frag) = rest.split_once("/#token=").unwrap();
        Web {
            addr: addr.to_owned(),
            token: frag.to_owned(),
        }
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `method path` with the token.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let auth = self.auth();
        self.raw(method, path, &[("Authorization", &auth)], body)
            .await
    }

    /// `method path` with these headers (and `Host: ADDR` unless one is given).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let mut conn = TcpStream::connect(&self.addr).await.unwrap();
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(TEN_SECS, conn.read_to_end(&mut raw))
            .await
            .expect("answer within 10 s")
            .unwrap();
        parse(&raw)
    }

    /// Opens the event stream (token in the query) and waits for `ready`.
    pub async fn events(&self) -> Events {
        let mut conn = TcpStream::connect(&self.addr).await.unwrap();
        let req = format!(
            "GET /api/events?token={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.token, self.addr
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut ev = Events {
            conn,
            seen: String::new(),
        };
        ev.wait_for("event: ready").await;
        assert!(ev.seen.starts_with("HTTP/1.1 200"), "{}", ev.seen);
        ev
    }
}

/// An open event stream; `seen` is everything read so far (chunk sizes included,
/// which never split the short strings waited for: each event is one chunk).
pub struct Events {
    conn: TcpStream,
    seen: String,
}

impl Events {
    /// Waits until the server closes the stream.
    pub async fn wait_closed(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            let n = tokio::time::timeout(TEN_SECS, self.conn.read(&mut buf))
                .await
                .expect("stream closed within 10 s")
                .unwrap_or(0);
            if n == 0 {
                return;
            }
        }
    }

    pub async fn wait_for(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + TEN_SECS;
        let mut buf = [0u8; 8192];
        while !self.seen.contains(needle) {
            let n = tokio::time::timeout_at(deadline, self.conn.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} on the stream; got:\n{}", self.seen))
                .unwrap();
            assert!(n > 0, "stream closed; got:\n{}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

/// Splits a raw HTTP/1.1 answer, undoing chunked transfer encoding.
fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut rest = &raw[split + 4..];
    let chunked = head.to_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 4 + size..];
        }
        body
    } else {
        rest.to_vec()
    };
    Answer { status, head, body }
}

/// A path of `route` with its parameters filled in.
pub fn fill(route: &str, id: &str) -> String {
    route.replace("{channel}", "triage").replace("{id}", id)
}
