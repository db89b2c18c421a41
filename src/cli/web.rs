//! `fieldmesh web [--open]`: the running node's web UI URL (with its token) for
//! the user of the data dir, so nobody has to dig it out of a terminal or the
//! journal. `up` writes it to `web-url` in the data dir (mode 0600, inside the
//! 0700 data dir) and removes it when it stops; this command reads it only while
//! the node answers on its control socket, so a stale file is never shown.

use anyhow::{bail, Context};
use clap::Args;
use fieldmesh::api::control::Client;
use fieldmesh::config;
use std::path::{Path, PathBuf};

/// Name of the file in the data dir holding the web UI's URL while `up` runs.
pub(super) const WEB_URL_FILE: &str = "web-url";

/// Flags of `web`.
#[derive(Args, Debug)]
pub(crate) struct WebArgs {
    /// Open the page in the desktop's browser (`xdg-open`; `open` on macOS)
    /// instead of printing the URL.
    #[arg(long)]
    open: bool,
}

/// The `web-url` file of a running node; removed when dropped (`up` returning).
pub(super) struct UrlFile(PathBuf);

impl UrlFile {
    /// Writes `url` for the node of `data` (0600; replaced atomically).
    pub(super) fn write(data: &Path, url: &str) -> anyhow::Result<UrlFile> {
        let path = data.join(WEB_URL_FILE);
        let tmp = data.join(format!("{WEB_URL_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = opts.open(&tmp)?;
            writeln!(f, "{url}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("cannot write {}", path.display()))?;
        Ok(UrlFile(path))
    }
}

impl Drop for UrlFile {
    fn drop(&mut self) {
        // The token dies with the node; a leftover file would only mislead.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `fieldmesh web`.
pub(super) async fn web(data: &Path, args: WebArgs, json: bool) -> anyhow::Result<()> {
    // The node must answer: after a crash the file may still be there.
    Client::connect(data, &data.join(config::CONTROL_SOCKET)).await?;
    let path = data.join(WEB_URL_FILE);
    let url = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the node for data dir {} runs without the web UI (started with --no-web)",
            data.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if args.open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let status = std::process::Command::new(opener)
            .arg(&url)
            .status()
            .with_context(|| format!("cannot run {opener} to open the web UI"))?;
        if !status.success() {
            bail!("{opener} could not open the web UI ({status})");
        }
    } else if json {
        println!("{}", serde_json::json!({ "web": url }));
    } else {
        println!("{url}");
    }
    Ok(())
}
