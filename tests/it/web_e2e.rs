//! The web UI in a real browser: `tests/e2e/web.spec.mjs` drives headless
//! Chromium (playwright-core) against two `fieldmesh up` nodes — a P1 composed in
//! A's page appears live in B's page, transcribed in B it leaves A's page — and
//! saves screenshots under `target/e2e/`. Needs `/usr/bin/chromium` and
//! `npm ci --prefix tests/e2e` (both done by `.ci/run`); prints `skipped: …`
//! without them.

use std::path::Path;
use std::time::Duration;

/// The whole browser run (two nodes, two pages, every wait inside has its own
/// 15 s deadline) ends well within this.
const E2E_DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p1_composed_in_one_page_shows_live_in_the_other_and_transcribe_removes_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        eprintln!("skipped: needs {chromium} (apt-get install chromium)");
        return;
    }
    if !root.join("tests/e2e/node_modules/playwright-core").exists() {
        eprintln!("skipped: needs tests/e2e/node_modules (npm ci --prefix tests/e2e)");
        return;
    }
    let out = root.join("target/e2e");
    let _ = std::fs::remove_dir_all(&out);
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/web.spec.mjs"))
        .arg(crate::harness::bin())
        .arg(&out)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(E2E_DEADLINE, run)
        .await
        .expect("browser test within its deadline")
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(
        run.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok: web UI end to end"), "{stdout}");
    for shot in [
        "a-sent-p1.png",
        "b-received-p1.png",
        "b-confirm-transcribe.png",
        "a-after-transcribe.png",
        "b-after-transcribe.png",
        "a-peers.png",
        "a-locked.png",
        "b-idle.png",
        "b-narrow.png",
    ] {
        let len = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(len > 1000, "screenshot {shot} missing or empty");
    }
}
