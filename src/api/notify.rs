//! Lock-screen-safe desktop notifications (`fieldmesh up --notify`): by default a
//! notification says only the priority and the channel ("P1 message in #triage") —
//! never the text, the author or anything patient-identifiable (NHS guidance).
//! `--notify-detail` adds a short text preview, for drills only.

use crate::gossip::direct::DM_CHANNEL;
use crate::gossip::envelope::Envelope;
use crate::gossip::report::{split_exercise, Body};
use crate::node::{NodeEvent, NodeHandle};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How much a notification may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Priority and channel only (the default).
    Safe,
    /// Adds up to 40 characters of text: drills only.
    DrillPreview,
}

/// Summary and body of the notification for a message (pure, so it can be tested).
/// `text` is what this node could read of it, if anything.
/// An exercise team's messages say so first.
pub fn format(
    env: &Envelope,
    text: Option<&str>,
    detail: Detail,
    exercise: bool,
) -> (String, String) {
    let summary = if env.channel.as_str() == DM_CHANNEL {
        format!("{} direct message", env.priority)
    } else {
        format!("{} message in #{}", env.priority, env.channel)
    };
    let summary = if exercise {
        format!("EXERCISE: {summary}")
    } else {
        summary
    };
    let body = match (detail, text) {
        (Detail::DrillPreview, Some(t)) => t.chars().take(40).collect(),
        _ => String::from("Open fieldmesh to read it."),
    };
    (summary, body)
}

/// What a drill preview may start from: the text, or a report's one-line summary,
/// which never holds its patient-identifiable fields.
pub fn preview(plaintext: &[u8]) -> String {
    match Body::decode(plaintext) {
        Ok(Body::Text(t)) => t,
        Ok(Body::Report(r)) => r.summary(),
        Err(_) => String::from("(unreadable report)"),
    }
}

/// Raises a notification for every message stored from a peer until `shutdown`.
/// Failures (no desktop session) are logged once at debug level and ignored.
pub async fn run(node: NodeHandle, detail: Detail, shutdown: CancellationToken) {
    let mut events = node.events();
    let me = node.peer_id();
    loop {
        let ev = tokio::select! {
            () = shutdown.cancelled() => return,
            ev = events.recv() => ev,
        };
        let env = match ev {
            Ok(NodeEvent::Delivered(env)) => env,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if env.author_peer_id() == me {
            continue;
        }
        // Only what this node's user may see: others' DMs and team records never notify.
        let Some(text) = node.open_text(&env) else {
            continue;
        };
        if ["team", "tombstone", crate::gossip::receipt::RECEIPT_CHANNEL]
            .contains(&env.channel.as_str())
        {
            continue;
        }
        let (exercise, text) = split_exercise(&text);
        let text = preview(text);
        let (summary, body) = format(&env, Some(&text), detail, exercise);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = notify_rust::Notification::new()
                .appname("fieldmesh")
                .summary(&summary)
                .body(&body)
                .show()
            {
                tracing::debug!(error = %e, "desktop notification failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::envelope::{ChannelName, Draft, DEFAULT_HOP_LIMIT};
    use crate::gossip::priority::Priority;
    use libp2p::identity::ed25519;

    fn env(channel: &str) -> Envelope {
        Envelope::sign(
            Draft {
                channel: ChannelName::new(channel).unwrap(),
                created_at_ms: 1,
                ttl: std::time::Duration::from_secs(60),
                hop_limit: DEFAULT_HOP_LIMIT,
                priority: Priority::P1,
                body: b"John Smith, bay 4, DOB 1961".to_vec(),
            },
            &ed25519::Keypair::generate(),
        )
        .unwrap()
    }

    #[test]
    fn a_p1_notification_carries_no_text_or_names() {
        let e = env("tent-2");
        let text = "John Smith, bay 4, DOB 1961";
        let (summary, body) = format(&e, Some(text), Detail::Safe, false);
        assert_eq!(summary, "P1 message in #tent-2");
        for word in [
            "John",
            "Smith",
            "bay",
            "1961",
            &e.author_peer_id().to_string(),
        ] {
            assert!(
                !summary.contains(word) && !body.contains(word),
                "{word} leaked"
            );
        }
        let (summary, _) = format(&env("dm"), Some(text), Detail::Safe, false);
        assert_eq!(summary, "P1 direct message");
    }

    #[test]
    fn a_casualty_preview_never_names_the_patient() {
        use crate::gossip::report::{Casualty, Identifiable, Report, Triage};
        let report = Report::Casualty(Casualty {
            triage: Triage::P1,
            tag: "T-7".into(),
            location: "bay 4".into(),
            update: "airway".into(),
            identifiable: Identifiable {
                name: Some("John Smith".into()),
                nhs_number: Some("943 476 5919".into()),
                ..Identifiable::default()
            },
        });
        let text = preview(&report.encode().unwrap());
        let (summary, body) = format(&env("triage"), Some(&text), Detail::DrillPreview, false);
        assert_eq!(body, "Casualty P1 (immediate) tag T-7");
        for word in ["John", "Smith", "943"] {
            assert!(
                !summary.contains(word) && !body.contains(word),
                "{word} leaked"
            );
        }
    }

    #[test]
    fn an_exercise_notification_says_so_first() {
        let (summary, body) = format(&env("triage"), Some("x"), Detail::Safe, true);
        assert_eq!(summary, "EXERCISE: P1 message in #triage");
        assert!(!body.contains('x'));
    }

    #[test]
    fn drill_preview_shows_a_short_text() {
        let (_, body) = format(
            &env("triage"),
            Some("x".repeat(100).as_str()),
            Detail::DrillPreview,
            false,
        );
        assert_eq!(body.len(), 40);
    }
}
