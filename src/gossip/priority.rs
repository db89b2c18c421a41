//! Triage priority P1 (immediate) to P4 (expectant), as carried in the envelope.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Triage priority of a message; lower number = more urgent. Ordered so that
/// `Priority::P1 < Priority::P4`, i.e. sorting ascending serves the most urgent first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Immediate: life-threatening, act now.
    P1,
    /// Urgent.
    P2,
    /// Delayed: routine coordination; the default.
    #[default]
    P3,
    /// Expectant / informational.
    P4,
}

impl Priority {
    /// The byte carried on the wire (1..=4).
    pub fn to_wire(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
        }
    }

    /// Parses the wire byte; `None` for anything outside 1..=4.
    pub fn from_wire(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Priority::P1),
            2 => Some(Priority::P2),
            3 => Some(Priority::P3),
            4 => Some(Priority::P4),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.to_wire())
    }
}

/// A priority string that is not one of p1..p4.
#[derive(Debug, thiserror::Error)]
#[error("priority must be one of p1, p2, p3, p4")]
pub struct ParsePriorityError;

impl FromStr for Priority {
    type Err = ParsePriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "p1" | "1" => Ok(Priority::P1),
            "p2" | "2" => Ok(Priority::P2),
            "p3" | "3" => Ok(Priority::P3),
            "p4" | "4" => Ok(Priority::P4),
            _ => Err(ParsePriorityError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_round_trip_and_reject_out_of_range() {
        for p in [Priority::P1, Priority::P2, Priority::P3, Priority::P4] {
            assert_eq!(Priority::from_wire(p.to_wire()), Some(p));
            assert_eq!(p.to_string().parse::<Priority>().unwrap(), p);
        }
        assert_eq!(Priority::from_wire(0), None);
        assert_eq!(Priority::from_wire(5), None);
        assert!("p5".parse::<Priority>().is_err());
        assert!(Priority::P1 < Priority::P4);
    }
}
