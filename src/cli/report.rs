//! `fieldmesh methane` and `fieldmesh casualty`: structured reports from flags, or
//! from questions on a terminal for what the flags leave out.

use anyhow::{bail, Context};
use clap::Args;
use fieldmesh::api::{Mode, Op};
use fieldmesh::gossip::priority::Priority;
use fieldmesh::gossip::report::{
    Casualty, CasualtyCounts, Identifiable, MajorIncident, Methane, Report, Triage,
};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// Where and how a report is sent.
#[derive(Args, Debug)]
pub(super) struct SendOpts {
    /// Channel (default `triage`).
    #[arg(long)]
    channel: Option<String>,
    /// Time to live, e.g. 30m, 6h (default: the channel's).
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Priority (default: P1 for METHANE; the triage category for a casualty).
    #[arg(long)]
    priority: Option<Priority>,
    #[command(flatten)]
    mode: ModeArgs,
}

/// `--live` / `--exercise`: what the sender believes the message is. The node
/// refuses it when its team is the other kind.
#[derive(Args, Debug)]
pub(super) struct ModeArgs {
    /// Assert this is a live message: refused if the node runs an EXERCISE team.
    #[arg(long, conflicts_with = "exercise")]
    live: bool,
    /// Assert this is an exercise message: refused if the node runs a live team.
    #[arg(long)]
    exercise: bool,
}

impl ModeArgs {
    /// The asserted mode, if any.
    pub(super) fn mode(&self) -> Option<Mode> {
        match (self.live, self.exercise) {
            (true, _) => Some(Mode::Live),
            (_, true) => Some(Mode::Exercise),
            _ => None,
        }
    }
}

/// `fieldmesh methane`.
#[derive(Args, Debug)]
pub(super) struct MethaneArgs {
    /// M: a major incident is declared.
    #[arg(long, conflicts_with = "standby")]
    declared: bool,
    /// M: major incident standby (not declared).
    #[arg(long)]
    standby: bool,
    /// E: exact location.
    #[arg(long)]
    location: Option<String>,
    /// T: type of incident.
    #[arg(long = "type")]
    incident_type: Option<String>,
    /// H: hazards.
    #[arg(long)]
    hazards: Option<String>,
    /// A: access routes.
    #[arg(long)]
    access: Option<String>,
    /// N: casualties as P1,P2,P3,DEAD counts, e.g. 3,5,12,1.
    #[arg(long, value_name = "P1,P2,P3,DEAD")]
    casualties: Option<String>,
    /// E: emergency services present and required.
    #[arg(long)]
    services: Option<String>,
    #[command(flatten)]
    send: SendOpts,
}

/// `fieldmesh casualty`.
#[derive(Args, Debug)]
pub(super) struct CasualtyArgs {
    /// Triage category: p1, p2, p3 or dead.
    #[arg(long)]
    triage: Option<String>,
    /// Triage tag number.
    #[arg(long)]
    tag: Option<String>,
    /// Where the casualty is.
    #[arg(long)]
    location: Option<String>,
    /// Clinical update (no names or numbers that identify the patient).
    #[arg(long)]
    update: Option<String>,
    /// IDENTIFIABLE: patient's name (hidden in every listing by default).
    #[arg(long)]
    name: Option<String>,
    /// IDENTIFIABLE: NHS number.
    #[arg(long)]
    nhs_number: Option<String>,
    /// IDENTIFIABLE: date of birth.
    #[arg(long)]
    dob: Option<String>,
    /// IDENTIFIABLE: anything else that identifies the patient.
    #[arg(long)]
    identifiable_other: Option<String>,
    #[command(flatten)]
    send: SendOpts,
}

/// Asks on the terminal for what the flags left out.
struct Prompt {
    interactive: bool,
}

impl Prompt {
    fn new() -> Prompt {
        Prompt {
            interactive: std::io::stdin().is_terminal(),
        }
    }

    /// The flag's value, else an answer; `None` only when optional and skipped.
    fn ask(
        &self,
        flag: &str,
        question: &str,
        value: Option<String>,
        required: bool,
    ) -> anyhow::Result<Option<String>> {
        if value.is_some() {
            return Ok(value);
        }
        if !self.interactive {
            if required {
                bail!("missing --{flag} (or run on a terminal to be asked)");
            }
            return Ok(None);
        }
        let hint = if required { "" } else { " (Enter to skip)" };
        eprint!("{question}{hint}: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim().to_owned();
        match (line.is_empty(), required) {
            (true, true) => bail!("--{flag} is required"),
            (true, false) => Ok(None),
            (false, _) => Ok(Some(line)),
        }
    }
}

fn counts(text: &str) -> anyhow::Result<CasualtyCounts> {
    let n: Vec<u32> = text
        .split(',')
        .map(|s| s.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--casualties {text:?}: four counts P1,P2,P3,DEAD"))?;
    let [p1, p2, p3, dead] = n[..] else {
        bail!("--casualties {text:?}: four counts P1,P2,P3,DEAD, e.g. 3,5,12,1");
    };
    Ok(CasualtyCounts { p1, p2, p3, dead })
}

fn triage(text: &str) -> anyhow::Result<Triage> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "p1" => Triage::P1,
        "p2" => Triage::P2,
        "p3" => Triage::P3,
        "dead" => Triage::Dead,
        other => bail!("--triage {other:?}: one of p1, p2, p3, dead"),
    })
}

fn op(report: Report, send: SendOpts) -> Op {
    Op::Report {
        channel: send.channel,
        report,
        ttl_ms: send
            .ttl
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        priority: send.priority,
        mode: send.mode.mode(),
    }
}

impl MethaneArgs {
    /// The control request for this report.
    pub(super) fn into_op(self) -> anyhow::Result<Op> {
        let p = Prompt::new();
        let major_incident = match (self.declared, self.standby) {
            (true, _) => MajorIncident::Declared,
            (_, true) => MajorIncident::Standby,
            _ => match p
                .ask(
                    "declared",
                    "Major incident declared? (yes/standby)",
                    None,
                    true,
                )?
                .as_deref()
            {
                Some("yes" | "y" | "declared") => MajorIncident::Declared,
                Some("standby" | "s") => MajorIncident::Standby,
                _ => bail!("give --declared or --standby"),
            },
        };
        let text = |flag, q, v, req| p.ask(flag, q, v, req).map(Option::unwrap_or_default);
        let report = Report::Methane(Methane {
            major_incident,
            exact_location: text("location", "Exact location", self.location, true)?,
            incident_type: text("type", "Type of incident", self.incident_type, true)?,
            hazards: text("hazards", "Hazards", self.hazards, false)?,
            access: text("access", "Access", self.access, false)?,
            casualties: match p.ask(
                "casualties",
                "Casualties P1,P2,P3,DEAD",
                self.casualties,
                false,
            )? {
                Some(c) => counts(&c)?,
                None => CasualtyCounts::default(),
            },
            emergency_services: text(
                "services",
                "Emergency services present and required",
                self.services,
                false,
            )?,
        });
        Ok(op(report, self.send))
    }
}

impl CasualtyArgs {
    /// The control request for this report.
    pub(super) fn into_op(self) -> anyhow::Result<Op> {
        let p = Prompt::new();
        let category = p.ask("triage", "Triage (p1/p2/p3/dead)", self.triage, true)?;
        let text = |flag, q, v, req| p.ask(flag, q, v, req).map(Option::unwrap_or_default);
        let report = Report::Casualty(Casualty {
            triage: triage(category.as_deref().unwrap_or_default())?,
            tag: text("tag", "Triage tag number", self.tag, true)?,
            location: text("location", "Location", self.location, false)?,
            update: text(
                "update",
                "Clinical update (no names or numbers)",
                self.update,
                false,
            )?,
            identifiable: Identifiable {
                name: p.ask("name", "IDENTIFIABLE name", self.name, false)?,
                nhs_number: p.ask(
                    "nhs-number",
                    "IDENTIFIABLE NHS number",
                    self.nhs_number,
                    false,
                )?,
                date_of_birth: p.ask("dob", "IDENTIFIABLE date of birth", self.dob, false)?,
                other: self.identifiable_other,
            },
        });
        Ok(op(report, self.send))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_triage_parse_or_say_why() {
        assert_eq!(
            counts("3, 5,12,1").unwrap(),
            CasualtyCounts {
                p1: 3,
                p2: 5,
                p3: 12,
                dead: 1
            }
        );
        assert!(counts("3,5")
            .unwrap_err()
            .to_string()
            .contains("four counts"));
        assert!(counts("a,b,c,d").is_err());
        assert_eq!(triage("P2").unwrap(), Triage::P2);
        assert!(triage("red").unwrap_err().to_string().contains("p1, p2"));
    }
}
