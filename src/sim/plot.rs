//! The drill report as a picture: one self-contained SVG (no scripts, no external
//! fonts, opens in any browser offline) with latency percentiles over time on top
//! and the delivered fraction per interval below.

use super::{Bucket, Report};
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const PANEL: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const GAP: f64 = 60.0;

/// Renders `report` as an SVG document.
pub fn svg(report: &Report) -> String {
    let height = TOP + PANEL + GAP + PANEL + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14">fieldmesh sim: {} nodes, {}, loss {}, churn {}: {:.2} % delivered, {} lost</text>"#,
        report.nodes,
        report.topology,
        report.loss,
        report.churn,
        report.delivered_fraction * 100.0,
        report.messages_lost
    );
    let t_max = report
        .timeline
        .iter()
        .map(|b| b.t_s)
        .fold(1.0_f64, f64::max);
    let lat_max = report
        .timeline
        .iter()
        .filter_map(|b| b.p99_ms)
        .fold(1.0_f64, f64::max);
    let x = |t: f64| LEFT + (WIDTH - LEFT - RIGHT) * t / t_max;
    let y_lat = |ms: f64| TOP + PANEL - PANEL * ms / lat_max;
    let top2 = TOP + PANEL + GAP;
    let y_frac = |f: f64| top2 + PANEL - PANEL * f;

    axes(&mut out, TOP, "latency ms", lat_max, t_max);
    axes(&mut out, top2, "delivered %", 100.0, t_max);
    for (pick, colour, label) in [
        (Bucket::p50 as fn(&Bucket) -> Option<f64>, "#1f77b4", "p50"),
        (Bucket::p99, "#d62728", "p99"),
    ] {
        let points: Vec<String> = report
            .timeline
            .iter()
            .filter_map(|b| pick(b).map(|v| format!("{:.1},{:.1}", x(b.t_s), y_lat(v))))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = if label == "p50" {
            TOP + 14.0
        } else {
            TOP + 28.0
        };
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{ly}" fill="{colour}">{label}</text>"#,
            WIDTH - RIGHT - 30.0
        );
    }
    let points: Vec<String> = report
        .timeline
        .iter()
        .map(|b| format!("{:.1},{:.1}", x(b.t_s), y_frac(b.delivered_fraction)))
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#2ca02c" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}">message send time, s</text>"#,
        WIDTH / 2.0,
        top2 + PANEL + 32.0
    );
    out.push_str("</svg>\n");
    out
}

/// A panel's frame with y ticks at 0, half and `y_max`, and x ticks at 0 and `t_max`.
fn axes(out: &mut String, top: f64, label: &str, y_max: f64, t_max: f64) {
    let right = WIDTH - RIGHT;
    let bottom = top + PANEL;
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PANEL}" fill="none" stroke="#999"/>"##,
        right - LEFT
    );
    for (frac, value) in [(0.0, 0.0), (0.5, y_max / 2.0), (1.0, y_max)] {
        let y = bottom - PANEL * frac;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{value:.0}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(out, r#"<text x="{LEFT}" y="{}">{label}</text>"#, top - 6.0);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}">0</text><text x="{right}" y="{}" text-anchor="end">{t_max:.0}</text>"#,
        bottom + 16.0,
        bottom + 16.0
    );
}
