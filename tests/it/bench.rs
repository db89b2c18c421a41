//! `fieldmesh bench` end to end on a tiny site: one JSON line with the spec's fields,
//! every message delivered everywhere. No timing assertions: speed lives in benches/.

use std::process::Command;

#[test]
fn bench_prints_one_report_line_with_every_spec_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldmesh"))
        .args([
            "bench",
            "--n",
            "3",
            "--m",
            "20",
            "--warmup",
            "5",
            "--timeout-s",
            "60",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout: {stdout}");
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for field in [
        "implementation",
        "versions",
        "N",
        "M",
        "S",
        "graph",
        "seed",
        "mode",
        "window",
        "mesh_form_ms",
        "delivered_fraction",
        "fully_disseminated_fraction",
        "latency_ms",
        "wall_s",
        "msgs_per_s",
        "wire_bytes_total",
        "wire_bytes_per_delivery",
        "cpu_s",
        "cpu_us_per_delivery",
        "duplicates_seen_by_app",
        "publish_errors",
        "peak_rss_mb",
    ] {
        assert!(r.get(field).is_some(), "missing {field} in {r}");
    }
    assert_eq!(r["implementation"], "fieldmesh");
    assert_eq!(r["graph"]["edges"], 3, "n3 at degree 4 is a triangle");
    assert_eq!(r["delivered_fraction"], 1.0);
    assert_eq!(r["fully_disseminated_fraction"], 1.0);
    assert!(r["wire_bytes_total"].as_u64().unwrap() > 20 * 512);
}

#[test]
fn bench_hard_timeout_reports_an_error_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldmesh"))
        .args(["bench", "--n", "3", "--m", "100000", "--timeout-s", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The run's own timeout, or the watchdog's when sled blocked the runtime.
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("hard timeout after 3s"),
        "{r}"
    );
    assert_eq!(r["N"], 3);
}
