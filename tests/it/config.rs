use crate::harness::{bin, cli, Daemon, Opts};
use std::path::Path;

/// Runs `fieldmesh ARGS` with a private data dir.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), args);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn config_check_accepts_a_good_file_and_names_the_bad_key_and_line() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/config.example.toml");
    let (code, out, _) = run(&["config", "check", example]);
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with(": ok"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let unknown = write(dir.path(), "unknown.toml", "mdns = false\nmax-peerz = 3\n");
    let (code, _, err) = run(&["config", "check", &unknown]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("line 2: key `max-peerz`: unknown field"),
        "{err}"
    );

    let bad = write(
        dir.path(),
        "bad.toml",
        "name = \"bay-4\"\n\n[channel-ttl]\ntriage = \"9d\"\n",
    );
    let (code, _, err) = run(&["config", "check", &bad]);
    assert_eq!(code, Some(2));
    assert!(err.contains("line 4: key `channel-ttl.triage`"), "{err}");
    assert!(err.contains("not between 1 ms and 7 days"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // `up` refuses the same file with the same message, before creating anything.
    let data = dir.path().join("data");
    let out = std::process::Command::new(bin())
        .args([
            "--data",
            data.to_str().unwrap(),
            "up",
            "--no-mdns",
            "--config",
            &bad,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let up_err = String::from_utf8(out.stderr).unwrap();
    assert!(
        up_err.contains("line 4: key `channel-ttl.triage`"),
        "{up_err}"
    );
    assert!(!data.exists(), "a refused config must not start anything");
}

#[test]
fn config_path_is_under_the_config_dir() {
    let (code, out, _) = run(&["config", "path"]);
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with("fieldmesh/config.toml"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "config.toml",
        "name = \"from-file\"\nchannels = [\"logistics\"]\nmax-store-bytes = \"2M\"\n\
         listen = [\"/ip4/127.0.0.1/udp/0/quic-v1\"]\n",
    );
    let d = Daemon::spawn(Opts {
        extra: vec!["--config".into(), file, "--name".into(), "from-flag".into()],
        ..Opts::default()
    })
    .await;
    let s = d.status().await;
    assert_eq!(s.name.as_deref(), Some("from-flag"), "the flag wins");
    assert!(
        s.listen.iter().all(|a| a.contains("/tcp/")),
        "--listen (from the harness) wins over the file: {:?}",
        s.listen
    );
    assert!(s.channels.contains(&"logistics".to_owned()), "file applies");
    assert_eq!(s.store_capacity, 2 << 20, "file applies");
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(
            out.contains("fieldmesh") && out.contains("transcribe") && out.contains("max-ttl"),
            "{shell} completions name the commands and flags"
        );
    }
}

#[test]
fn version_names_the_protocol() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with(&format!(
            "fieldmesh {} (protocol fieldmesh/1, sync /fieldmesh/sync/1)",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
}
