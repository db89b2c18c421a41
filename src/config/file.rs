//! The config file: one TOML file under the XDG config dir whose keys are the
//! long flags of `fieldmesh up`. This module owns its model, its decoder (which
//! checks every value and names the bad key and its line) and its default path;
//! the CLI only merges it under the flags.
//!
//! ```toml
//! listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
//! peers = ["/ip4/10.0.0.2/tcp/4001"]
//! mdns = true
//! name = "triage-tent-2"
//! team = "drill"
//! channels = ["logistics"]
//! max-body-bytes = 65536
//! max-ttl = "7d"
//! default-ttl = "12h"
//! max-peer-rate = 1000
//! max-store-bytes = "1G"
//! notify = false
//! notify-detail = false
//! passphrase-file = "/etc/fieldmesh/passphrase"
//! metrics = "127.0.0.1:9464"
//! web = "127.0.0.1:8080"
//! web-ui = true
//! web-allow-remote = false
//!
//! [channel-ttl]
//! triage = "2h"
//! ```

use crate::gossip::envelope::{ChannelName, MAX_TTL};
use crate::transport::ble::AdapterName;
use libp2p::Multiaddr;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest config file read: a real one is well under 4 KiB, and the decoder must
/// not allocate in proportion to whatever a path points at.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Name of the file inside the config dir.
pub const CONFIG_FILE: &str = "config.toml";

/// The config file's default path: `$XDG_CONFIG_HOME/fieldmesh/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "fieldmesh", "fieldmesh")
        .map(|d| d.config_dir().join(CONFIG_FILE))
}

/// Every setting of `fieldmesh up` that the file may hold; `None` (or empty) when
/// the file does not set it. Values are checked while decoding, so a `ConfigFile`
/// holds only values `up` accepts.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// `--listen`: addresses to listen on.
    #[serde(default, deserialize_with = "addrs")]
    pub listen: Option<Vec<Multiaddr>>,
    /// `--peer`: static peers kept connected.
    #[serde(default, deserialize_with = "addrs")]
    pub peers: Option<Vec<Multiaddr>>,
    /// The inverse of `--no-mdns`.
    pub mdns: Option<bool>,
    /// The inverse of `--no-bluetooth`.
    pub bluetooth: Option<bool>,
    /// `--bt-adapter`: a BlueZ adapter name such as "hci1".
    #[serde(default, deserialize_with = "adapter")]
    pub bt_adapter: Option<AdapterName>,
    /// `--name`.
    pub name: Option<String>,
    /// `--team`: a team name or id, or `drill`.
    pub team: Option<String>,
    /// `--channel`: extra channels followed.
    #[serde(default, deserialize_with = "channels")]
    pub channels: Option<Vec<ChannelName>>,
    /// `--max-body-bytes`.
    #[serde(default, deserialize_with = "positive_usize")]
    pub max_body_bytes: Option<usize>,
    /// `--max-ttl`, a duration such as "7d".
    #[serde(default, deserialize_with = "ttl")]
    pub max_ttl: Option<Duration>,
    /// `--default-ttl`.
    #[serde(default, deserialize_with = "ttl")]
    pub default_ttl: Option<Duration>,
    /// `--channel-ttl`: a table of channel = duration.
    #[serde(default, deserialize_with = "channel_ttls")]
    pub channel_ttl: Option<Vec<(ChannelName, Duration)>>,
    /// `--max-peer-rate`.
    pub max_peer_rate: Option<u32>,
    /// `--max-peers`.
    pub max_peers: Option<u32>,
    /// `--sync-timeout`, a duration such as "30s".
    #[serde(default, deserialize_with = "ttl")]
    pub sync_timeout: Option<Duration>,
    /// `--sync-batch-bytes`: a number of bytes or a string such as "64K".
    #[serde(default, deserialize_with = "size")]
    pub sync_batch_bytes: Option<u64>,
    /// `--max-store-bytes`: a number of bytes or a string such as "500M".
    #[serde(default, deserialize_with = "size")]
    pub max_store_bytes: Option<u64>,
    /// `--notify`.
    pub notify: Option<bool>,
    /// `--notify-detail`.
    pub notify_detail: Option<bool>,
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
    /// `--metrics`: address of the Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// `--web`: address of the web UI.
    pub web: Option<SocketAddr>,
    /// The inverse of `--no-web`.
    pub web_ui: Option<bool>,
    /// `--web-allow-remote`.
    pub web_allow_remote: Option<bool>,
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error("config file is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 text.
    #[error("config file is not UTF-8 text (line {line})")]
    NotUtf8 {
        /// Line of the first bad byte.
        line: usize,
    },
    /// Not TOML, an unknown key, or a value `up` would refuse.
    #[error("line {line}: key `{key}`: {message}")]
    Invalid {
        /// The key (`channel-ttl.triage` inside a table), or `-` when the
        /// error is not at a key.
        key: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl ConfigFile {
    /// Reads and decodes the file at `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let read = |source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_CONFIG_BYTES as u64 {
            return Err(ConfigFileError::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: MAX_CONFIG_BYTES,
            });
        }
        ConfigFile::decode(&std::fs::read(path).map_err(read)?)
    }

    /// Decodes file bytes; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<ConfigFile, ConfigFileError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigFileError::TooLarge {
                len: bytes.len(),
                max: MAX_CONFIG_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigFileError::NotUtf8 {
            line: line_of(bytes, e.valid_up_to()),
        })?;
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            ConfigFileError::Invalid {
                key: key_at(text, at),
                line: line_of(text.as_bytes(), at),
                message: e.message().trim_end().to_owned(),
            }
        })
    }
}

/// 1-based line of byte offset `at`.
fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The key whose line holds byte offset `at`, prefixed by its `[table]`: the
/// key an error at `at` is about.
fn key_at(text: &str, at: usize) -> String {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[start..end].trim();
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !line.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    let key = match line.split_once('=') {
        Some((k, _)) => k.trim().trim_matches('"'),
        None if line.starts_with('[') => line.trim_matches(|c| c == '[' || c == ']').trim(),
        None => "-",
    };
    match table {
        Some(t) if key != "-" => format!("{t}.{key}"),
        _ => key.to_owned(),
    }
}

/// A TTL such as "12h": 1 ms to 7 days, as the flags.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))?;
    if d.is_zero() || d > MAX_TTL {
        return Err(format!("{s:?} is not between 1 ms and 7 days"));
    }
    Ok(d)
}

/// A byte count with an optional K, M or G (powers of 1024) suffix.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size such as 500M or 2G"))
}

/// A value written as a string and parsed by `T`: a parse error is raised at the
/// value itself, so the decoder reports that value's key and line.
struct Checked<T>(T);

/// Types parsed from a string value of the file.
trait FromText: Sized {
    fn from_text(s: &str) -> Result<Self, String>;
}

impl FromText for Multiaddr {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|e| format!("{s:?} is not a multiaddr: {e}"))
    }
}

impl FromText for ChannelName {
    fn from_text(s: &str) -> Result<Self, String> {
        ChannelName::new(s).map_err(|e| format!("{s:?}: {e}"))
    }
}

/// Durations in the file are TTLs.
impl FromText for Duration {
    fn from_text(s: &str) -> Result<Self, String> {
        parse_ttl(s)
    }
}

impl<'de, T: FromText> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::from_text(&String::deserialize(d)?)
            .map(Checked)
            .map_err(serde::de::Error::custom)
    }
}

fn addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Multiaddr>>, D::Error> {
    let list = Vec::<Checked<Multiaddr>>::deserialize(d)?;
    Ok(Some(list.into_iter().map(|c| c.0).collect()))
}

fn channels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ChannelName>>, D::Error> {
    let list = Vec::<Checked<ChannelName>>::deserialize(d)?;
    Ok(Some(list.into_iter().map(|c| c.0).collect()))
}

fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

fn adapter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AdapterName>, D::Error> {
    AdapterName::new(&String::deserialize(d)?)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Some(Checked::<Duration>::deserialize(d)?.0))
}

/// A bad channel name is reported at the table; a bad duration at its value.
fn channel_ttls<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(ChannelName, Duration)>>, D::Error> {
    std::collections::BTreeMap::<String, Checked<Duration>>::deserialize(d)?
        .into_iter()
        .map(|(c, t)| {
            Ok((
                ChannelName::from_text(&c).map_err(serde::de::Error::custom)?,
                t.0,
            ))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A size: an integer number of bytes, or a string with a K, M or G suffix.
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(0) => Err(serde::de::Error::custom("must be at least 1")),
        Size::Bytes(n) => Ok(Some(n)),
        Size::Text(s) => parse_size(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> (String, usize, String) {
        match ConfigFile::decode(text.as_bytes()) {
            Err(ConfigFileError::Invalid { key, line, message }) => (key, line, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn every_key_decodes_to_its_typed_value() {
        let text = include_str!("../../packaging/config.example.toml");
        let c = ConfigFile::decode(text.as_bytes()).unwrap();
        assert_eq!(c.max_ttl, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.max_store_bytes, Some(1 << 30));
        assert_eq!(c.max_peers, Some(128));
        assert_eq!(c.sync_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.sync_batch_bytes, Some(512 << 10));
        assert_eq!(c.channel_ttl.unwrap().len(), 1);
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.web, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!((c.web_ui, c.web_allow_remote), (Some(true), Some(false)));
        assert_eq!(ConfigFile::decode(b"").unwrap(), ConfigFile::default());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let (key, line, message) = invalid("mdns = true\nmax-peerz = 3\n");
        assert_eq!((key.as_str(), line), ("max-peerz", 2));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        assert_eq!(invalid("\n\nmax-ttl = \"9d\"\n").0, "max-ttl");
        assert_eq!(invalid("max-peer-rate = \"fast\"\n").1, 1);
        let (key, line, _) = invalid("mdns = false\n[channel-ttl]\ntriage = \"soon\"\n");
        assert_eq!((key.as_str(), line), ("channel-ttl.triage", 3));
        assert_eq!(invalid("listen = [\"tcp:4001\"]").0, "listen");
        assert_eq!(invalid("max-store-bytes = \"lots\"").0, "max-store-bytes");
    }

    #[test]
    fn bt_adapter_is_a_bluez_adapter_name() {
        let c = ConfigFile::decode(b"bt-adapter = \"hci1\"\n").unwrap();
        assert_eq!(c.bt_adapter.map(|a| a.to_string()).as_deref(), Some("hci1"));
        let (key, line, message) = invalid("bluetooth = true\nbt-adapter = \"usb0\"\n");
        assert_eq!((key.as_str(), line), ("bt-adapter", 2));
        assert!(message.contains("like hci0"), "{message}");
        assert_eq!(invalid("bt-adapter = 1").0, "bt-adapter");
    }

    #[test]
    fn hostile_bytes_give_typed_errors() {
        assert!(matches!(
            ConfigFile::decode(b"name = \"a\"\n\xff"),
            Err(ConfigFileError::NotUtf8 { line: 2 })
        ));
        assert!(matches!(
            ConfigFile::decode(&vec![b'#'; MAX_CONFIG_BYTES + 1]),
            Err(ConfigFileError::TooLarge { .. })
        ));
        assert!(ConfigFile::decode(b"[[[").is_err());
    }
}
