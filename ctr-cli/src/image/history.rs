//! `history`: an image's config history, newest first, each entry that
//! made a layer with that layer's size.

use super::{ImageContext, Result, Store};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub created: Option<SystemTime>,
    pub created_by: String,
    pub comment: String,
    /// Bytes of the layer it made (0 for one that made none).
    pub size: u64,
    /// Whether it made no layer.
    pub empty_layer: bool,
}

pub fn history(store: &Store, image: &str) -> Result<(String, Vec<HistoryEntry>)> {
    let record = store.lookup(image)?.with_context(|| format!("no such image: {image}"))?;
    let (_, config) = store.image_file(&record.id)?;
    let config: serde_json::Value = match config {
        Some(bytes) => serde_json::from_slice(&bytes)?,
        None => serde_json::json!({}),
    };
    let mut sizes = Vec::new();
    for diff_id in &record.diff_ids {
        sizes.push(store.existing_layer(diff_id, None)?.map_or(0, |l| l.size));
    }
    Ok((record.id, entries(&config, &sizes)))
}

/// The config's `history`, newest first, layer sizes given in order to
/// the entries that made a layer; one entry per layer if it has none.
pub fn entries(config: &serde_json::Value, sizes: &[u64]) -> Vec<HistoryEntry> {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).unwrap_or_default().to_owned();
    let mut sizes = sizes.iter();
    let mut out: Vec<HistoryEntry> = match config.get("history").and_then(|h| h.as_array()) {
        Some(history) if !history.is_empty() => history
            .iter()
            .map(|h| {
                let empty_layer = h.get("empty_layer").and_then(|e| e.as_bool()).unwrap_or(false);
                HistoryEntry {
                    created: humantime::parse_rfc3339_weak(&text(h, "created")).ok(),
                    created_by: text(h, "created_by"),
                    comment: text(h, "comment"),
                    size: if empty_layer { 0 } else { sizes.next().copied().unwrap_or(0) },
                    empty_layer,
                }
            })
            .collect(),
        _ => sizes
            .map(|&size| HistoryEntry {
                created: None,
                created_by: String::new(),
                comment: String::new(),
                size,
                empty_layer: false,
            })
            .collect(),
    };
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_newest_first_with_layer_sizes() {
        let config = serde_json::json!({"history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"},
            {"created_by": "ENV A=1", "empty_layer": true},
            {"created_by": "ctr commit web", "comment": "why"}
        ]});
        let entries = entries(&config, &[100, 5]);
        let shown: Vec<(&str, u64)> = entries.iter().map(|e| (e.created_by.as_str(), e.size)).collect();
        assert_eq!(shown, [("ctr commit web", 5), ("ENV A=1", 0), ("ADD rootfs", 100)]);
        assert_eq!(entries[0].comment, "why");
        assert!(entries[2].created.is_some());
        assert_eq!(super::entries(&serde_json::json!({}), &[1, 2]).len(), 2);
    }
}
