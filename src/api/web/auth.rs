//! Who may talk to the web UI: a random token made at each start (printed in
//! the URL, needed by every `/api/` request, compared in constant time), and a
//! Host check that refuses names other than the bound address (a DNS-rebinding
//! page on another site cannot pass it). Both run as middleware, which also adds
//! the security headers to every response.

use super::error::HttpError;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// Random bytes in a token: 256 bits, beyond guessing at any request rate.
pub const TOKEN_BYTES: usize = 32;

/// The per-start access token, as 64 lowercase hex characters.
#[derive(Debug)]
pub struct Token(String);

impl Token {
    /// A fresh token from the OS random source.
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        Token(data_encoding::HEXLOWER.encode(&bytes))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token; the time taken does not depend on where
    /// the two first differ.
    pub fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }

    /// Whether an `Authorization` header value carries the token as `Bearer`.
    pub fn matches_bearer(&self, header: &str) -> bool {
        match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.matches(rest.trim())
            }
            _ => false,
        }
    }
}

/// The `Host` header values the server answers to.
#[derive(Debug)]
pub struct AllowedHosts {
    port: u16,
    bound: SocketAddr,
    allow_remote: bool,
}

impl AllowedHosts {
    /// Hosts for a listener bound at `bound`: `localhost`, `127.0.0.1` and
    /// `[::1]` with its port, and the bound address; with `allow_remote`, any IP
    /// literal with its port (a DNS name is still refused: only a name can be
    /// rebound to this machine by someone else's page).
    pub fn new(bound: SocketAddr, allow_remote: bool) -> AllowedHosts {
        AllowedHosts {
            port: bound.port(),
            bound,
            allow_remote,
        }
    }

    /// Whether a request with this `Host` header is served.
    pub fn allows(&self, host: &str) -> bool {
        let port = self.port.to_string();
        if let Some(name) = host
            .strip_suffix(port.as_str())
            .and_then(|h| h.strip_suffix(':'))
        {
            if name.eq_ignore_ascii_case("localhost") {
                return true;
            }
        }
        let Ok(addr) = host.parse::<SocketAddr>() else {
            return false;
        };
        addr.port() == self.port
            && (addr.ip().is_loopback() || addr == self.bound || self.allow_remote)
    }
}

/// Refuses requests whose `Host` is not one of [`AllowedHosts`] (403 `bad_host`),
/// and adds the security headers to every response.
pub(super) async fn check_host(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mut res = if state.hosts.allows(host) {
        next.run(req).await
    } else {
        tracing::warn!(code = "bad_host", "web request refused");
        HttpError::bad_host().into_response()
    };
    let h = res.headers_mut();
    // Scripts, styles and connections only from this server; never framed.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Refuses `/api/` requests without the token (401 `unauthorized`). The token
/// comes as `Authorization: Bearer …`; only the event stream, which browsers
/// open without custom headers, may carry it as `?token=` instead.
pub(super) async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let by_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| state.token.matches_bearer(h));
    let by_query = req.uri().path() == super::path::EVENTS
        && super::query::param(req.uri().query().unwrap_or(""), "token")
            .is_some_and(|t| state.token.matches(&t));
    if by_header || by_query {
        next.run(req).await
    } else {
        tracing::warn!(code = "unauthorized", "web request refused");
        HttpError::unauthorized().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_and_differ() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_eq!(a.as_str().len(), 2 * TOKEN_BYTES);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn only_the_exact_token_matches() {
        let t = Token::generate();
        assert!(t.matches(t.as_str()));
        assert!(!t.matches(""));
        assert!(!t.matches(&t.as_str()[..63]));
        assert!(!t.matches(&format!("{}0", t.as_str())));
        assert!(!t.matches(&t.as_str().to_uppercase()));
    }

    #[test]
    fn bearer_scheme_is_required() {
        let t = Token::generate();
        assert!(t.matches_bearer(&format!("Bearer {}", t.as_str())));
        assert!(t.matches_bearer(&format!("bearer {}", t.as_str())));
        assert!(!t.matches_bearer(t.as_str()));
        assert!(!t.matches_bearer(&format!("Basic {}", t.as_str())));
        assert!(!t.matches_bearer("Bearer "));
    }

    #[test]
    fn host_check_accepts_loopback_names_with_the_port_only() {
        let h = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), false);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:8081",
            "evil.example:8080",
            "localhost.evil.example:8080",
            "192.168.1.5:8080",
            "localhost",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn remote_mode_accepts_ip_literals_but_never_names() {
        let h = AllowedHosts::new("0.0.0.0:8080".parse().unwrap(), true);
        assert!(h.allows("192.168.1.5:8080"));
        assert!(h.allows("localhost:8080"));
        assert!(!h.allows("rebind.evil.example:8080"));
        assert!(!h.allows("192.168.1.5:9090"));
    }
}
