//! `fieldmesh config path|check` and the merge of the config file under the
//! flags of `up`. The file's model and decoder live in the library
//! (`fieldmesh::config::file`); here a flag given on the command line wins over
//! the file, and the file wins over the built-in default.

use super::UpArgs;
use anyhow::Context;
use clap::Subcommand;
use fieldmesh::config::file::{default_config_path, ConfigFile};
use std::path::{Path, PathBuf};

/// `fieldmesh config …`.
#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCmd {
    /// Print the path of the config file `up` reads by default.
    Path,
    /// Check a config file (default: the one `up` reads); names the bad key and
    /// its line, and exits 2 if the file is invalid.
    Check {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

/// Runs a `config` subcommand.
pub(super) fn config(cmd: ConfigCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Path => {
            let path = default_path()?;
            if json {
                println!("{}", serde_json::json!({ "path": path }));
            } else {
                println!("{}", path.display());
            }
        }
        ConfigCmd::Check { file } => {
            let path = match file {
                Some(f) => f,
                None => default_path()?,
            };
            load(&path)?;
            if json {
                println!("{}", serde_json::json!({ "path": path, "ok": true }));
            } else {
                println!("{}: ok", path.display());
            }
        }
    }
    Ok(())
}

fn default_path() -> anyhow::Result<PathBuf> {
    default_config_path().context("no home directory, so no config dir: pass a FILE")
}

/// Reads and checks the file at `path`; the error names the file, key and line.
fn load(path: &Path) -> anyhow::Result<ConfigFile> {
    ConfigFile::load(path).with_context(|| format!("config file {}", path.display()))
}

impl UpArgs {
    /// Fills every setting not given as a flag from the config file (`--config`,
    /// or the default path if that file exists). An invalid file is an error, so
    /// `up` never starts with half a configuration.
    pub(super) fn merge_config_file(mut self) -> anyhow::Result<UpArgs> {
        let file = match &self.config {
            Some(path) => load(path)?,
            None => match default_config_path() {
                Some(path) if path.exists() => load(&path)?,
                _ => ConfigFile::default(),
            },
        };
        if self.listen.is_empty() {
            self.listen = file.listen.unwrap_or_default();
        }
        if self.peers.is_empty() {
            self.peers = file.peers.unwrap_or_default();
        }
        // Switches can only be turned on by a flag; the file may set either way.
        self.no_mdns = self.no_mdns || file.mdns == Some(false);
        self.no_bluetooth = self.no_bluetooth || file.bluetooth == Some(false);
        self.bt_adapter = self.bt_adapter.or(file.bt_adapter);
        // As the two flags together, an adapter named while Bluetooth is off (by the
        // file, the flags or one of each) is a mistake, not something to ignore.
        anyhow::ensure!(
            !(self.no_bluetooth && self.bt_adapter.is_some()),
            "bt-adapter names a Bluetooth adapter, but Bluetooth is off \
             (--no-bluetooth or `bluetooth = false`): drop one of the two"
        );
        self.notify = self.notify || file.notify == Some(true);
        self.notify_detail = self.notify_detail || file.notify_detail == Some(true);
        self.name = self.name.or(file.name);
        self.team = self.team.or(file.team);
        if self.channels.is_empty() {
            self.channels = file
                .channels
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        self.max_body_bytes = self.max_body_bytes.or(file.max_body_bytes);
        self.max_ttl = self.max_ttl.or(file.max_ttl);
        self.default_ttl = self.default_ttl.or(file.default_ttl);
        if self.channel_ttls.is_empty() {
            self.channel_ttls = file
                .channel_ttl
                .unwrap_or_default()
                .iter()
                .map(|(c, d)| format!("{c}={}", humantime::format_duration(*d)))
                .collect();
        }
        self.max_peer_rate = self.max_peer_rate.or(file.max_peer_rate);
        self.max_peers = self.max_peers.or(file.max_peers);
        self.sync_timeout = self.sync_timeout.or(file.sync_timeout);
        self.sync_batch_bytes = self.sync_batch_bytes.or(file.sync_batch_bytes);
        self.max_store_bytes = self.max_store_bytes.or(file.max_store_bytes);
        self.metrics = self.metrics.or(file.metrics);
        // `web-ui = false` in the file stands for `--no-web`, unless `--web` is given.
        self.no_web = self.no_web || (file.web_ui == Some(false) && self.web.is_none());
        self.web = self.web.or(file.web);
        self.web_allow_remote = self.web_allow_remote || file.web_allow_remote == Some(true);
        let pass = &mut self.passphrase.passphrase_file;
        *pass = pass.take().or(file.passphrase_file);
        Ok(self)
    }
}
