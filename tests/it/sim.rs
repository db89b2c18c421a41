use std::process::Command;

/// Runs `fieldmesh sim` with `args`, writing its report under a temp dir; returns
/// the JSON line and checks the written files.
fn sim(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("drill");
    let run = Command::new(crate::harness::bin())
        .arg("sim")
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "sim failed: {stderr}");
    assert!(stderr.contains("delivered"), "no summary: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(run.stdout.trim_ascii()).expect("one JSON line");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(written, report);
    let svg = std::fs::read_to_string(out.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    report
}

/// 50 nodes in rooms, 10 % segment loss on every link: at least 99.9 % of
/// deliveries happen within the TTL.
#[test]
fn fifty_nodes_with_ten_percent_loss_deliver_within_ttl() {
    let r = sim(&[
        "--nodes",
        "50",
        "--topology",
        "rooms",
        "--loss",
        "0.1",
        "--duration",
        "20s",
        "--rate",
        "2",
    ]);
    assert_eq!(r["nodes"], 50);
    assert_eq!(r["deliveries_due"], 40 * 49);
    let delivered = r["delivered_fraction"].as_f64().unwrap();
    assert!(delivered >= 0.999, "delivered {delivered}: {r}");
}

/// A random site where 30 % of the laptops restart during the traffic: nothing is
/// lost, the restarted ones catch up.
#[test]
fn churn_loses_nothing() {
    let r = sim(&[
        "--nodes",
        "20",
        "--topology",
        "random",
        "--loss",
        "0.05",
        "--churn",
        "0.3",
        "--duration",
        "20s",
        "--rate",
        "2",
    ]);
    assert!(r["restarts"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(r["messages_lost"], 0, "{r}");
}
