//! `ctr images` rows, with docker's field names, and its table, formatted like `docker images` (same columns,
//! same humanised ages and sizes) so that it reads the way users expect.

use super::containers::docker_time;
use super::listing::Listing;
use super::units::{human_duration, human_size};
use ctr_cli::image::ImageRecord;
use std::time::{Duration, SystemTime};

/// `docker images`'s own table.
pub const IMAGES: Listing = Listing {
    default: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: &[("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("CreatedAt", "CREATED AT")],
};

const SHORT_ID_LEN: usize = 12;

/// One row per reference (an untagged image gets one `<none>` row), in the
/// order of `records`, with docker's field names.
pub fn image_rows(records: &[ImageRecord], no_trunc: bool) -> Vec<serde_json::Value> {
    let now = SystemTime::now();
    records.iter().flat_map(|record| rows_of(record, now, no_trunc)).collect()
}

/// The image id as `images` shows it: 12 hex digits, or `sha256:` and all.
pub fn shown_id(record: &ImageRecord, no_trunc: bool) -> String {
    if no_trunc {
        return record.id.clone();
    }
    record.id.trim_start_matches("sha256:").chars().take(SHORT_ID_LEN).collect()
}

fn rows_of(record: &ImageRecord, now: SystemTime, no_trunc: bool) -> Vec<serde_json::Value> {
    let age = now.duration_since(record.created).unwrap_or(Duration::ZERO);
    let created_unix = record.created.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let names: Vec<(&str, &str)> = if record.references.is_empty() {
        vec![("<none>", "<none>")]
    } else {
        record.references.iter().map(|r| r.rsplit_once(':').unwrap_or((r, ""))).collect()
    };
    let digest = record.repo_digests.first().and_then(|d| d.split_once('@')).map_or("<none>", |(_, d)| d);
    names
        .into_iter()
        .map(|(repository, tag)| {
            serde_json::json!({
                "Repository": repository,
                "Tag": tag,
                "ID": shown_id(record, no_trunc),
                "Digest": digest,
                "CreatedSince": format!("{} ago", human_duration(age)),
                "CreatedAt": docker_time(created_unix),
                "Size": human_size(record.size),
                "VirtualSize": human_size(record.size),
                "Containers": "N/A",
            })
        })
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
        let rows: Vec<_> = records.iter().flat_map(|r| rows_of(r, now, false)).collect();
        let mut out = Vec::new();
        super::super::listing::print_list(&mut out, None, &IMAGES, &rows).unwrap();
        let expected = "\
REPOSITORY   TAG      IMAGE ID       CREATED         SIZE
alpine       3.20     aaaaaaaaaaaa   2 minutes ago   7.8MB
alpine       latest   aaaaaaaaaaaa   2 minutes ago   7.8MB
<none>       <none>   bbbbbbbbbbbb   3 days ago      1.23kB
";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
