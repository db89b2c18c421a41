//! The name of a BlueZ adapter (`hci0`, `hci1`), as `--bt-adapter` and the config
//! key `bt-adapter` give it: checked when the settings are read, so a typo is
//! refused before the node starts rather than found missing on the bus.

use std::fmt;
use std::str::FromStr;

/// Prefix of every BlueZ adapter name: bluetoothd names each controller after
/// the kernel's `hciN` device (D-Bus object `/org/bluez/hciN`).
const PREFIX: &str = "hci";
/// Digits of the index at most: the kernel numbers controllers with a `u16`.
const MAX_INDEX_DIGITS: usize = 5;

/// A BlueZ adapter name: `hci` and the controller's index, e.g. `hci1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdapterName(String);

/// Why a string is not an adapter name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a BlueZ adapter name (hci and a number, like hci0 or hci1)")]
pub struct AdapterNameError {
    /// What was given.
    pub given: String,
}

impl AdapterName {
    /// Checks `name`: `hci` followed by 1 to 5 decimal digits.
    pub fn new(name: &str) -> Result<AdapterName, AdapterNameError> {
        let ok = name.strip_prefix(PREFIX).is_some_and(|index| {
            (1..=MAX_INDEX_DIGITS).contains(&index.len())
                && index.bytes().all(|b| b.is_ascii_digit())
        });
        if ok {
            Ok(AdapterName(name.to_owned()))
        } else {
            Err(AdapterNameError {
                given: name.to_owned(),
            })
        }
    }

    /// The name as BlueZ writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AdapterName {
    type Err = AdapterNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdapterName::new(s)
    }
}

impl fmt::Display for AdapterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bluez_names_are_accepted() {
        for n in ["hci0", "hci1", "hci12", "hci65535"] {
            assert_eq!(AdapterName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn anything_else_is_refused_with_what_was_given() {
        for n in [
            "",
            "hci",
            "hci-1",
            "hci1/dev_00",
            "HCI0",
            "hci123456",
            "wlan0",
            "hci 1",
        ] {
            assert_eq!(AdapterName::new(n).unwrap_err().given, n, "{n:?}");
        }
        let e = "hcix".parse::<AdapterName>().unwrap_err().to_string();
        assert!(e.contains("\"hcix\"") && e.contains("like hci0"), "{e}");
    }
}
