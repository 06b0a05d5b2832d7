//! The `ctr images` table, formatted like `docker images` (same columns,
//! same humanised ages and sizes) so that it reads the way users expect.

use super::table::write_table;
use super::units::{human_duration, human_size};
use anyhow::Result;
use ctr_cli::image::ImageRecord;
use std::io::Write;
use std::time::{Duration, SystemTime};

const HEADERS: [&str; 5] = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
const SHORT_ID_LEN: usize = 12;

/// One row per reference (an untagged image gets one `<none>` row), in the
/// order of `records`.
pub fn print_table(records: &[ImageRecord], out: &mut impl Write) -> Result<()> {
    print_table_at(records, out, SystemTime::now())
}

fn print_table_at(records: &[ImageRecord], out: &mut impl Write, now: SystemTime) -> Result<()> {
    let mut rows = vec![HEADERS.map(String::from)];
    rows.extend(records.iter().flat_map(|record| rows_of(record, now)));
    write_table(out, &rows)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use ctr_cli::image::ImageConfig;
    use std::path::PathBuf;

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
