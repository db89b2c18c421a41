//! Structured message bodies (`proto/bodies.md`): the METHANE major-incident report
//! and the casualty (triage) update, beside plain text.
//!
//! A body is either UTF-8 text, as before, or `0xFB ‖ format ‖ bincode(Report)`.
//! `0xFB` never starts UTF-8 text, so the two cannot be confused. Patient-identifiable
//! details live only in [`Identifiable`], apart from the clinical fields, and every
//! view hides them unless the reader asks ([`Redaction::Reveal`]). Pure: no I/O.

use crate::wire;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// First byte of a structured body: not a valid first byte of UTF-8.
pub const MARK: u8 = 0xFB;
/// Structured body format version; the second byte.
pub const FORMAT: u8 = 1;
/// Second byte of the EXERCISE mark: `MARK ‖ 'E'` followed by the message's own
/// body (text or report). Every message of an exercise team starts with it.
pub const EXERCISE: u8 = b'E';

/// Marks a body as EXERCISE (an exercise team's node does this to every message).
pub fn mark_exercise(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&[MARK, EXERCISE]);
    out.extend(body);
    out
}

/// Whether a body is marked EXERCISE, and the body without the mark.
pub fn split_exercise(bytes: &[u8]) -> (bool, &[u8]) {
    match bytes {
        [MARK, EXERCISE, rest @ ..] => (true, rest),
        other => (false, other),
    }
}
/// Longest text field, in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

/// A structured report. JSON: `{"methane": {…}}` or `{"casualty": {…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// The first report from a major-incident scene.
    Methane(Methane),
    /// One casualty's triage category and status.
    Casualty(Casualty),
}

/// METHANE: Major incident declared, Exact location, Type, Hazards, Access, Number
/// and severity of casualties, Emergency services present and required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Methane {
    /// M: declared, or on standby.
    pub major_incident: MajorIncident,
    /// E: exact location (grid reference, address, landmark).
    pub exact_location: String,
    /// T: type of incident.
    pub incident_type: String,
    /// H: hazards present and potential.
    pub hazards: String,
    /// A: access and egress routes.
    pub access: String,
    /// N: number and severity of casualties.
    pub casualties: CasualtyCounts,
    /// E: emergency services present and required.
    pub emergency_services: String,
}

/// The M of METHANE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MajorIncident {
    /// A major incident is declared.
    Declared,
    /// Major incident standby: not (yet) declared.
    Standby,
}

/// Casualty counts by triage category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasualtyCounts {
    /// P1, immediate.
    pub p1: u32,
    /// P2, urgent.
    pub p2: u32,
    /// P3, delayed.
    pub p3: u32,
    /// Dead.
    pub dead: u32,
}

/// A casualty update. Clinical fields are not patient-identifiable; everything
/// that is sits in `identifiable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Casualty {
    /// Triage category.
    pub triage: Triage,
    /// Triage tag number (on the casualty's label; not identifying by itself).
    pub tag: String,
    /// Where the casualty is (area, casualty clearing station, vehicle).
    pub location: String,
    /// Clinical update, without names or numbers that identify the patient.
    pub update: String,
    /// Patient-identifiable details; hidden in every view by default.
    #[serde(default)]
    pub identifiable: Identifiable,
}

/// Triage category of a casualty (UK major-incident sieve).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Triage {
    /// Immediate.
    P1,
    /// Urgent.
    P2,
    /// Delayed.
    P3,
    /// Dead.
    Dead,
}

impl Triage {
    /// `P1 (immediate)` … `dead`.
    pub fn label(self) -> &'static str {
        match self {
            Triage::P1 => "P1 (immediate)",
            Triage::P2 => "P2 (urgent)",
            Triage::P3 => "P3 (delayed)",
            Triage::Dead => "dead",
        }
    }
}

/// Patient-identifiable fields, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifiable {
    /// Patient's name.
    pub name: Option<String>,
    /// NHS number.
    pub nhs_number: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<String>,
    /// Anything else that identifies the patient (address, next of kin).
    pub other: Option<String>,
}

impl Identifiable {
    /// The fields that are set, with their labels.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("name", &self.name),
            ("NHS number", &self.nhs_number),
            ("date of birth", &self.date_of_birth),
            ("other", &self.other),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// Whether a view shows patient-identifiable fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redaction {
    /// Hide them (the default everywhere).
    Hide,
    /// Show them (`--show-identifiable`).
    Reveal,
}

/// A decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Plain text (invalid UTF-8 replaced).
    Text(String),
    /// A structured report.
    Report(Report),
}

/// Why a structured body was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The format byte is not one this node knows.
    #[error("structured body format {0} is not supported (this node knows 1)")]
    UnknownFormat(u8),
    /// The EXERCISE mark appears twice.
    #[error("the EXERCISE mark appears twice")]
    DoubleMark,
    /// The bytes after the format do not decode, or leave bytes over.
    #[error("malformed structured body: {0}")]
    Malformed(String),
    /// A text field is longer than [`MAX_FIELD_BYTES`].
    #[error("field `{field}` is {len} bytes; at most {MAX_FIELD_BYTES}")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A required field is empty.
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
}

impl ReportError {
    /// Stable error code for the control protocol.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::UnknownFormat(_) | ReportError::Malformed(_) | ReportError::DoubleMark => {
                "bad_body"
            }
            ReportError::FieldTooLong { .. } | ReportError::Empty(_) => "bad_report",
        }
    }
}

impl Report {
    /// Checks field lengths and required fields.
    pub fn validate(&self) -> Result<(), ReportError> {
        let check = |field: &'static str, v: &str, required: bool| {
            if v.len() > MAX_FIELD_BYTES {
                Err(ReportError::FieldTooLong {
                    field,
                    len: v.len(),
                })
            } else if required && v.trim().is_empty() {
                Err(ReportError::Empty(field))
            } else {
                Ok(())
            }
        };
        match self {
            Report::Methane(m) => {
                check("exact_location", &m.exact_location, true)?;
                check("incident_type", &m.incident_type, true)?;
                check("hazards", &m.hazards, false)?;
                check("access", &m.access, false)?;
                check("emergency_services", &m.emergency_services, false)
            }
            Report::Casualty(c) => {
                check("tag", &c.tag, true)?;
                check("location", &c.location, false)?;
                check("update", &c.update, false)?;
                let i = &c.identifiable;
                for (field, v) in [
                    ("identifiable.name", &i.name),
                    ("identifiable.nhs_number", &i.nhs_number),
                    ("identifiable.date_of_birth", &i.date_of_birth),
                    ("identifiable.other", &i.other),
                ] {
                    check(field, v.as_deref().unwrap_or(""), false)?;
                }
                Ok(())
            }
        }
    }

    /// Wire bytes: `MARK ‖ FORMAT ‖ bincode(self)`. Validates first.
    pub fn encode(&self) -> Result<Vec<u8>, ReportError> {
        self.validate()?;
        let mut out = vec![MARK, FORMAT];
        out.extend(wire::encode(self).map_err(|e| ReportError::Malformed(e.to_string()))?);
        Ok(out)
    }

    /// The triage priority a report is sent with unless the sender says otherwise.
    pub fn default_priority(&self) -> crate::gossip::priority::Priority {
        use crate::gossip::priority::Priority;
        match self {
            Report::Methane(_) => Priority::P1,
            Report::Casualty(c) => match c.triage {
                Triage::P1 => Priority::P1,
                Triage::P2 => Priority::P2,
                Triage::P3 => Priority::P3,
                Triage::Dead => Priority::P4,
            },
        }
    }

    /// One line without patient-identifiable fields: notification previews, logs.
    pub fn summary(&self) -> String {
        match self {
            Report::Methane(m) => format!(
                "METHANE: major incident {}, {}",
                match m.major_incident {
                    MajorIncident::Declared => "declared",
                    MajorIncident::Standby => "standby",
                },
                m.exact_location
            ),
            Report::Casualty(c) => format!("Casualty {} tag {}", c.triage.label(), c.tag),
        }
    }

    /// A table for people, one field per line; identifiable fields per `redaction`.
    pub fn render(&self, redaction: Redaction) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: &str| {
            let _ = writeln!(out, "  {k:<22} {v}");
        };
        match self {
            Report::Methane(m) => {
                row("METHANE report", "");
                row(
                    "M major incident",
                    match m.major_incident {
                        MajorIncident::Declared => "declared",
                        MajorIncident::Standby => "standby",
                    },
                );
                row("E exact location", &m.exact_location);
                row("T type", &m.incident_type);
                row("H hazards", &m.hazards);
                row("A access", &m.access);
                let n = m.casualties;
                row(
                    "N casualties",
                    &format!("P1 {} · P2 {} · P3 {} · dead {}", n.p1, n.p2, n.p3, n.dead),
                );
                row("E emergency services", &m.emergency_services);
            }
            Report::Casualty(c) => {
                row("Casualty update", "");
                row("triage", c.triage.label());
                row("tag", &c.tag);
                row("location", &c.location);
                row("update", &c.update);
                let fields = c.identifiable.fields();
                if fields.is_empty() {
                    row("identifiable", "none given");
                } else if redaction == Redaction::Hide {
                    row(
                        "identifiable",
                        &format!("[{} hidden: --show-identifiable to reveal]", fields.len()),
                    );
                } else {
                    for (k, v) in fields {
                        row(&format!("IDENTIFIABLE {k}"), v);
                    }
                }
            }
        }
        out.truncate(out.trim_end().len());
        out
    }

    /// The report as JSON with identifiable fields per `redaction` (hidden: each
    /// set field becomes `"[hidden]"`, so a reader sees that it exists).
    pub fn to_json(&self, redaction: Redaction) -> serde_json::Value {
        let mut r = self.clone();
        if let (Report::Casualty(c), Redaction::Hide) = (&mut r, redaction) {
            for f in [
                &mut c.identifiable.name,
                &mut c.identifiable.nhs_number,
                &mut c.identifiable.date_of_birth,
                &mut c.identifiable.other,
            ] {
                if f.is_some() {
                    *f = Some("[hidden]".into());
                }
            }
        }
        serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
    }
}

impl Body {
    /// Decodes a body: structured when it starts with [`MARK`], else text.
    pub fn decode(bytes: &[u8]) -> Result<Body, ReportError> {
        match bytes {
            [MARK, FORMAT, rest @ ..] => {
                let report: Report =
                    wire::decode(rest).map_err(|e| ReportError::Malformed(e.to_string()))?;
                report.validate()?;
                Ok(Body::Report(report))
            }
            [MARK, EXERCISE, ..] => Err(ReportError::DoubleMark),
            [MARK, format, ..] => Err(ReportError::UnknownFormat(*format)),
            [MARK] => Err(ReportError::Malformed("no format byte".into())),
            text => Ok(Body::Text(String::from_utf8_lossy(text).into_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn casualty() -> Report {
        Report::Casualty(Casualty {
            triage: Triage::P1,
            tag: "T-0042".into(),
            location: "CCS bay 2".into(),
            update: "airway compromised, needs anaesthetist".into(),
            identifiable: Identifiable {
                name: Some("Jane Example".into()),
                nhs_number: Some("943 476 5919".into()),
                date_of_birth: None,
                other: None,
            },
        })
    }

    fn methane() -> Report {
        Report::Methane(Methane {
            major_incident: MajorIncident::Declared,
            exact_location: "Victoria St tram stop, NGR SJ 839 985".into(),
            incident_type: "tram derailment".into(),
            hazards: "overhead line down".into(),
            access: "from Corporation St only".into(),
            casualties: CasualtyCounts {
                p1: 3,
                p2: 5,
                p3: 12,
                dead: 1,
            },
            emergency_services: "fire, police on scene; HART required".into(),
        })
    }

    #[test]
    fn reports_round_trip_and_text_stays_text() {
        for r in [methane(), casualty()] {
            let bytes = r.encode().unwrap();
            assert_eq!(bytes[0], MARK);
            assert_eq!(Body::decode(&bytes).unwrap(), Body::Report(r.clone()));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
        }
        assert_eq!(
            Body::decode("héllo".as_bytes()).unwrap(),
            Body::Text("héllo".into())
        );
        assert_eq!(Body::decode(b"").unwrap(), Body::Text(String::new()));
    }

    #[test]
    fn bad_structured_bodies_are_typed_errors() {
        assert_eq!(
            Body::decode(&[MARK, 9, 1, 2]),
            Err(ReportError::UnknownFormat(9))
        );
        assert!(matches!(
            Body::decode(&[MARK]),
            Err(ReportError::Malformed(_))
        ));
        assert!(matches!(
            Body::decode(&[MARK, FORMAT, 7, 7, 7]),
            Err(ReportError::Malformed(_))
        ));
        let mut bytes = methane().encode().unwrap();
        bytes.push(0);
        assert!(matches!(
            Body::decode(&bytes),
            Err(ReportError::Malformed(_))
        ));
        let Report::Casualty(mut c) = casualty() else {
            unreachable!()
        };
        c.tag = " ".into();
        assert_eq!(
            Report::Casualty(c.clone()).encode(),
            Err(ReportError::Empty("tag"))
        );
        c.tag = "x".repeat(MAX_FIELD_BYTES + 1);
        assert!(matches!(
            Report::Casualty(c).encode(),
            Err(ReportError::FieldTooLong { field: "tag", .. })
        ));
    }

    #[test]
    fn the_exercise_mark_wraps_any_body_once() {
        for body in [b"bay 4".to_vec(), casualty().encode().unwrap(), Vec::new()] {
            let marked = mark_exercise(body.clone());
            assert_eq!(&marked[..2], &[MARK, EXERCISE]);
            assert_eq!(split_exercise(&marked), (true, &body[..]));
            assert_eq!(split_exercise(&body), (false, &body[..]));
        }
        let twice = mark_exercise(mark_exercise(b"x".to_vec()));
        assert_eq!(
            Body::decode(split_exercise(&twice).1),
            Err(ReportError::DoubleMark)
        );
    }

    #[test]
    fn identifiable_fields_are_hidden_unless_revealed() {
        let r = casualty();
        for hidden in [
            r.render(Redaction::Hide),
            r.summary(),
            r.to_json(Redaction::Hide).to_string(),
        ] {
            assert!(!hidden.contains("Jane"), "{hidden}");
            assert!(!hidden.contains("943 476"), "{hidden}");
        }
        assert!(r.render(Redaction::Hide).contains("2 hidden"));
        assert!(r.render(Redaction::Hide).contains("airway"));
        let shown = r.render(Redaction::Reveal);
        assert!(shown.contains("IDENTIFIABLE name") && shown.contains("Jane Example"));
        assert!(r
            .to_json(Redaction::Reveal)
            .to_string()
            .contains("943 476 5919"));
    }

    #[test]
    fn methane_renders_every_letter() {
        let table = methane().render(Redaction::Hide);
        for k in [
            "M major incident",
            "E exact location",
            "T type",
            "H hazards",
            "A access",
            "N casualties",
            "E emergency services",
        ] {
            assert!(table.contains(k), "{k} missing in\n{table}");
        }
        assert!(table.contains("P1 3 · P2 5 · P3 12 · dead 1"));
        assert_eq!(
            methane().default_priority(),
            crate::gossip::priority::Priority::P1
        );
    }
}
