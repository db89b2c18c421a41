//! Errors of the HTTP API: `{"error":{"code":…,"message":…}}` with a 4xx or 5xx
//! status. Codes are stable (clients match on them, never on the message) and
//! are the control protocol's codes where one exists (`proto/control.md`); the
//! full list with statuses is in `proto/http.md`.

use crate::config::TtlError;
use crate::identity::IdentityError;
use crate::node::{PublishError, UnlockError};
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Every code this API answers with (listed in `openapi.json` and checked there).
#[cfg(test)]
pub(super) const CODES: &[&str] = &[
    "bad_request",
    "bad_channel",
    "bad_ttl",
    "ttl_over_max",
    "too_large",
    "reserved_channel",
    "unauthorized",
    "bad_host",
    "wrong_passphrase",
    "unlock_failed",
    "not_member",
    "not_found",
    "no_route",
    "method_not_allowed",
    "locked",
    "too_many_streams",
    "store_full",
    "node_stopped",
    "internal",
];

/// An error answer: status, stable code, one-line message.
#[derive(Debug)]
pub(super) struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl HttpError {
    /// An error with this status and code.
    pub(super) fn new(status: StatusCode, code: &'static str, msg: impl ToString) -> HttpError {
        HttpError {
            status,
            code,
            message: msg.to_string(),
        }
    }

    /// 400 `bad_request`.
    pub(super) fn bad_request(msg: impl ToString) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }

    /// 400 `bad_channel`.
    pub(super) fn bad_channel(name: &str) -> HttpError {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "bad_channel",
            format!(
                "bad channel name {name:?}: 1 to 64 of a-z, 0-9, '.', '_', '-' \
                 (or a channel this node does not show)"
            ),
        )
    }

    /// 404 `not_found` for a message id.
    pub(super) fn no_message(id: &str) -> HttpError {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no readable message {id} here"),
        )
    }

    /// 500 `internal` (details go to the log).
    pub(super) fn internal(e: impl std::fmt::Display) -> HttpError {
        tracing::warn!(error = %e, "web request failed");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (see the node's log)",
        )
    }

    /// 401 `unauthorized`.
    pub(super) fn unauthorized() -> HttpError {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token: open the URL `fieldmesh up` printed",
        )
    }

    /// 403 `bad_host`.
    pub(super) fn bad_host() -> HttpError {
        HttpError::new(
            StatusCode::FORBIDDEN,
            "bad_host",
            "the Host header names no address of this server",
        )
    }

    /// 423 `locked`.
    pub(super) fn locked() -> HttpError {
        HttpError::new(
            StatusCode::LOCKED,
            "locked",
            "node is locked: unlock it with the passphrase",
        )
    }

    /// The node's TTL policy refused a TTL.
    pub(super) fn ttl(e: TtlError) -> HttpError {
        let code = match e {
            TtlError::OverMax { .. } => "ttl_over_max",
            _ => "bad_ttl",
        };
        HttpError::new(StatusCode::BAD_REQUEST, code, e)
    }

    /// A store error: `locked`, else an internal error (details go to the log).
    pub(super) fn store(e: StoreError) -> HttpError {
        match e {
            StoreError::Locked => HttpError::locked(),
            other => HttpError::internal(other),
        }
    }

    /// A publish or transcribe error, with the control protocol's code.
    pub(super) fn publish(e: PublishError) -> HttpError {
        let e = match e {
            PublishError::Store(se) => return HttpError::store(se),
            other => other,
        };
        let (status, code) = match &e {
            PublishError::BadChannel(_) => (StatusCode::BAD_REQUEST, "bad_channel"),
            PublishError::BadTtl { .. } => (StatusCode::BAD_REQUEST, "bad_ttl"),
            PublishError::Reserved => (StatusCode::BAD_REQUEST, "reserved_channel"),
            PublishError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            PublishError::Dm(crate::gossip::direct::DmError::Crypto(
                crate::crypto::CryptoError::TooLarge { .. },
            )) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            PublishError::Team(_) | PublishError::NoTeam => (StatusCode::FORBIDDEN, "not_member"),
            PublishError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            PublishError::StoreFull => (StatusCode::INSUFFICIENT_STORAGE, "store_full"),
            PublishError::NodeStopped => (StatusCode::SERVICE_UNAVAILABLE, "node_stopped"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        HttpError::new(status, code, e)
    }

    /// An unlock error: 403 `wrong_passphrase`, else `unlock_failed`.
    pub(super) fn unlock(e: UnlockError) -> HttpError {
        match e {
            UnlockError::Identity(IdentityError::WrongPassphrase { .. }) => HttpError::new(
                StatusCode::FORBIDDEN,
                "wrong_passphrase",
                "wrong passphrase (nothing was changed)",
            ),
            UnlockError::NodeStopped => {
                HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "node_stopped", e)
            }
            other => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "unlock_failed", other),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {"code": self.code, "message": self.message}
        });
        super::routes::json(self.status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: HttpError) -> (StatusCode, &'static str) {
        (e.status, e.code)
    }

    #[test]
    fn node_errors_keep_the_control_codes() {
        assert_eq!(
            parts(HttpError::publish(PublishError::Store(StoreError::Locked))),
            (StatusCode::LOCKED, "locked")
        );
        assert_eq!(
            parts(HttpError::publish(PublishError::TooLarge {
                len: 9,
                max: 1
            })),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        assert_eq!(
            parts(HttpError::publish(PublishError::NotFound("ab".into()))),
            (StatusCode::NOT_FOUND, "not_found")
        );
        assert_eq!(
            parts(HttpError::publish(PublishError::Reserved)),
            (StatusCode::BAD_REQUEST, "reserved_channel")
        );
        let over = TtlError::OverMax {
            ttl: std::time::Duration::from_secs(2),
            max: std::time::Duration::from_secs(1),
        };
        assert_eq!(
            parts(HttpError::ttl(over)),
            (StatusCode::BAD_REQUEST, "ttl_over_max")
        );
    }

    #[test]
    fn every_code_built_here_is_listed() {
        for e in [
            HttpError::bad_request("x"),
            HttpError::bad_channel("X"),
            HttpError::no_message("ab"),
            HttpError::unauthorized(),
            HttpError::bad_host(),
            HttpError::locked(),
            HttpError::publish(PublishError::StoreFull),
            HttpError::publish(PublishError::NodeStopped),
            HttpError::publish(PublishError::NoTeam),
        ] {
            assert!(CODES.contains(&e.code), "{}", e.code);
            assert!(e.status.is_client_error() || e.status.is_server_error());
        }
    }
}
