//! Export of a message for transcription into the medical record: plain JSON, or a
//! FHIR R4 `Bundle` (type `collection`) of one `Communication` resource.

use super::MessageView;
use crate::gossip::priority::Priority;
use serde_json::{json, Value};

/// Export formats of `fieldmesh transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The message view as JSON.
    #[default]
    Json,
    /// A FHIR R4 Bundle of Communication resources.
    Fhir,
}

/// FHIR `Communication.priority` (request-priority value set) for a triage priority.
pub fn fhir_priority(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "stat",
        Priority::P2 => "asap",
        Priority::P3 => "urgent",
        Priority::P4 => "routine",
    }
}

/// The export of `messages` (the message and its thread, oldest first).
pub fn export(messages: &[MessageView], format: ExportFormat, transcriber: &str) -> Value {
    match format {
        // `exercise` sorts first among the keys, so the export says it first.
        ExportFormat::Json => json!({
            "exercise": messages.iter().any(|m| m.exercise),
            "messages": messages,
            "transcribed_by": transcriber,
        }),
        ExportFormat::Fhir => json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": messages.iter().map(|m| json!({
                "fullUrl": format!("urn:uuid:{}", uuid_of(&m.id)),
                "resource": {
                    "resourceType": "Communication",
                    "identifier": [{ "system": "urn:fieldmesh:message", "value": m.id }],
                    "status": "completed",
                    "priority": fhir_priority(m.priority),
                    "sent": m.sent_at,
                    "sender": { "identifier": { "system": "urn:fieldmesh:peer", "value": m.author } },
                    "payload": [{ "contentString": if m.exercise {
                        format!("EXERCISE: {}", m.text)
                    } else {
                        m.text.clone()
                    } }],
                    "note": [{ "text": format!("fieldmesh channel {}; transcribed by {transcriber}", m.channel) }],
                }
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A UUID-shaped rendering of the first 16 bytes of a 64-hex message id.
fn uuid_of(id: &str) -> String {
    let h = id.get(..32).unwrap_or("00000000000000000000000000000000");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> MessageView {
        MessageView {
            id: "ab".repeat(32),
            author: "12D3KooWtest".into(),
            channel: "triage".into(),
            sent_at: "2026-11-25T10:00:00.000Z".into(),
            sent_at_ms: 1,
            ttl_ms: 1,
            expires_at_ms: 2,
            remaining_ms: 1,
            priority: Priority::P1,
            hops: 0,
            text: "bay 4".into(),
            exercise: false,
            report: None,
            held_by: Vec::new(),
        }
    }

    #[test]
    fn fhir_bundle_carries_sender_time_priority_and_text() {
        let b = export(&[view()], ExportFormat::Fhir, "12D3KooWme");
        let c = &b["entry"][0]["resource"];
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(c["resourceType"], "Communication");
        assert_eq!(c["priority"], "stat");
        assert_eq!(c["sent"], "2026-11-25T10:00:00.000Z");
        assert_eq!(c["payload"][0]["contentString"], "bay 4");
        assert_eq!(c["sender"]["identifier"]["value"], "12D3KooWtest");
        assert_eq!(
            b["entry"][0]["fullUrl"],
            "urn:uuid:abababab-abab-abab-abab-abababababab"
        );
    }
}
