//! Process-wide meters the report needs: CPU time (getrusage), peak resident set
//! (`VmHWM`) and the bytes written to TCP sockets (counted by the transport).

use std::time::Duration;

/// User + system CPU time of the whole process so far (all nodes, all threads).
#[cfg(unix)]
pub(super) fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// CPU time is read with `getrusage`, which only Unix has: elsewhere the bench
/// reports zero CPU per delivery (the README says `bench` is measured on Linux).
#[cfg(not(unix))]
pub(super) fn cpu_time() -> Duration {
    Duration::ZERO
}

/// Peak resident set of the process in MiB (`VmHWM` of `/proc/self/status`), if
/// the platform has it.
pub(super) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Bytes written to TCP sockets by every connection of the process so far.
pub(super) fn wire_bytes() -> u64 {
    crate::transport::wire_bytes_written()
}

/// CPU model name from `/proc/cpuinfo`.
pub(super) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_and_peak_rss_is_read() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() >= before);
        assert!(peak_rss_mb().is_some_and(|mb| mb > 1.0));
    }
}
