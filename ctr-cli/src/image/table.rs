//! The `ctr images` table, formatted like `docker images` (same columns,
//! same humanised ages and sizes) so that it reads the way users expect.

use super::ImageRecord;
use anyhow::Result;
use std::io::Write;
use std::time::{Duration, SystemTime};

const HEADERS: [&str; 5] = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
const COLUMN_GAP: usize = 3;
const SHORT_ID_LEN: usize = 12;

/// One row per reference (an untagged image gets one `<none>` row), in the
/// order of `records`.
pub fn print_table(records: &[ImageRecord], out: &mut impl Write) -> Result<()> {
    print_table_at(records, out, SystemTime::now())
}

pub(crate) fn print_table_at(records: &[ImageRecord], out: &mut impl Write, now: SystemTime) -> Result<()> {
    let rows: Vec<[String; 5]> = records.iter().flat_map(|record| rows_of(record, now)).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_row(out, &HEADERS.map(String::from), &widths)?;
    for row in &rows {
        write_row(out, row, &widths)?;
    }
    Ok(())
}

fn rows_of(record: &ImageRecord, now: SystemTime) -> Vec<[String; 5]> {
    let short_id = record.id.trim_start_matches("sha256:").chars().take(SHORT_ID_LEN).collect::<String>();
    let age = now.duration_since(record.created).unwrap_or(Duration::ZERO);
    let created = format!("{} ago", human_duration(age));
    let size = human_size(record.size);
    let names: Vec<(&str, &str)> = if record.references.is_empty() {
        vec![("<none>", "<none>")]
    } else {
        record.references.iter().map(|r| r.rsplit_once(':').unwrap_or((r, ""))).collect()
    };
    names
        .into_iter()
        .map(|(repository, tag)| [repository.into(), tag.into(), short_id.clone(), created.clone(), size.clone()])
        .collect()
}

fn write_row(out: &mut impl Write, row: &[String; 5], widths: &[usize; 5]) -> Result<()> {
    let last = row.len() - 1;
    for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
        if i == last {
            writeln!(out, "{cell}")?;
        } else {
            write!(out, "{cell:<pad$}", pad = width + COLUMN_GAP)?;
        }
    }
    Ok(())
}

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
    use crate::image::ImageConfig;
    use std::path::PathBuf;

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

    #[test]
    fn one_row_per_reference_aligned() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let record = |refs: &[&str], id_char: &str, age: u64, size: u64| ImageRecord {
            id: format!("sha256:{}", id_char.repeat(64)),
            references: refs.iter().map(|r| r.to_string()).collect(),
            repo_digests: Vec::new(),
            lower_dirs: vec![PathBuf::from("/unused")],
            diff_ids: Vec::new(),
            platform: None,
            created: now - Duration::from_secs(age),
            size,
            config: ImageConfig::default(),
        };
        let records =
            [record(&["alpine:3.20", "alpine:latest"], "a", 120, 7_800_000), record(&[], "b", 3 * 86400, 1234)];
        let mut out = Vec::new();
        print_table_at(&records, &mut out, now).unwrap();
        let expected = "\
REPOSITORY   TAG      IMAGE ID       CREATED         SIZE
alpine       3.20     aaaaaaaaaaaa   2 minutes ago   7.8MB
alpine       latest   aaaaaaaaaaaa   2 minutes ago   7.8MB
<none>       <none>   bbbbbbbbbbbb   3 days ago      1.23kB
";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
