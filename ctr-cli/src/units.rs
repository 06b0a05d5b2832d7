//! How quantities read to people, in docker's words: durations as
//! go-units' HumanDuration ("About an hour", "2 weeks"), sizes in decimal
//! units with three significant digits ("7.8MB"), and times as RFC 3339
//! in UTC. One formatter each, for the engine (pull progress, records,
//! logs) and the command line's output alike.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Docker's (go-units) HumanDuration: "2 minutes", "About an hour", "3 weeks".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    // Go rounds to the nearest hour here, and truncates everywhere else.
    let hours = (seconds + 1800) / 3600;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// `t` as RFC 3339 in UTC with nanoseconds, as docker writes it
/// (`2024-01-02T03:04:05.000000006Z`).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let (date, nanos) = rfc3339_parts(t);
    format!("{date}.{nanos:09}Z")
}

/// `t` as RFC 3339 in UTC to the second (`2024-01-02T03:04:05Z`).
pub fn rfc3339_seconds(t: SystemTime) -> String {
    format!("{}Z", rfc3339_parts(t).0)
}

/// Now, as [`rfc3339_nanos`].
pub fn now_rfc3339() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// The date and time to the second, and the nanoseconds.
fn rfc3339_parts(t: SystemTime) -> (String, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    (date, since.subsec_nanos())
}

/// Docker's size: decimal units, three significant digits ("7.8MB", "123kB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    loop {
        let text = three_significant_digits(value);
        // 999.7 rounds to "1000": say "1MB" rather than "1000kB".
        if unit + 1 < UNITS.len() && (value >= 1000.0 || text == "1000") {
            value /= 1000.0;
            unit += 1;
            continue;
        }
        return format!("{text}{}", UNITS[unit]);
    }
}

/// Docker's binary size (go-units BytesSize, for memory): two decimals
/// and binary units ("1.50KiB", "3.00GiB").
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// Like Go's `%.3g` for 0 <= value < 1000: no exponent, no trailing zeros.
fn three_significant_digits(value: f64) -> String {
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(7_800_000), "7.8MB");
        assert_eq!(human_size(7_812_345), "7.81MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(999_700), "1MB");
        assert_eq!(human_size(5_000_000_000), "5GB");
    }

    #[test]
    fn binary_sizes_like_docker() {
        assert_eq!(binary_size(0), "0.00B");
        assert_eq!(binary_size(1536), "1.50KiB");
        assert_eq!(binary_size(3 << 30), "3.00GiB");
    }

    #[test]
    fn rfc3339_matches_humantime() {
        for secs in [0u64, 951_782_400, 1_709_164_800, 4_102_444_799, 1_234_567_890] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, 123_456_789);
            assert_eq!(rfc3339_nanos(t), humantime::format_rfc3339_nanos(t).to_string());
            assert_eq!(rfc3339_seconds(t), humantime::format_rfc3339_seconds(t).to_string());
        }
    }

    #[test]
    fn durations_like_docker() {
        let secs = Duration::from_secs;
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(secs(1)), "1 second");
        assert_eq!(human_duration(secs(59)), "59 seconds");
        assert_eq!(human_duration(secs(90)), "About a minute");
        assert_eq!(human_duration(secs(150)), "2 minutes");
        assert_eq!(human_duration(secs(3600)), "About an hour");
        assert_eq!(human_duration(secs(5 * 3600)), "5 hours");
        assert_eq!(human_duration(secs(3 * 86400)), "3 days");
        assert_eq!(human_duration(secs(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(secs(90 * 86400)), "3 months");
        assert_eq!(human_duration(secs(800 * 86400)), "2 years");
    }
}
