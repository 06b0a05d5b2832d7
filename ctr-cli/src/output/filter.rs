//! `--filter KEY=VALUE` of `ps` and `images`, combined as docker combines
//! them: values of one key are alternatives (any may match), different
//! keys must all match.

use anyhow::{bail, Result};
use ctr_cli::container::State;
use ctr_cli::image::ImageRecord;
use std::collections::BTreeMap;

/// `ps`'s filter keys.
pub const CONTAINER_KEYS: [&str; 9] =
    ["id", "name", "label", "status", "ancestor", "before", "since", "exited", "health"];
/// `images`'s filter keys.
pub const IMAGE_KEYS: [&str; 5] = ["dangling", "label", "before", "since", "reference"];

#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `KEY=VALUE` filters; a key not in `keys` is refused.
    pub fn parse(filters: &[String], keys: &[&str]) -> Result<Self> {
        let mut parsed = Filters::default();
        for filter in filters {
            let Some((key, value)) = filter.split_once('=') else {
                bail!("--filter {filter:?}: give KEY=VALUE, e.g. status=running");
            };
            let key = key.trim().to_ascii_lowercase();
            if !keys.contains(&key.as_str()) {
                bail!("--filter {filter:?}: no filter {key:?}; these exist: {}", keys.join(", "));
            }
            parsed.0.entry(key).or_default().push(value.trim().to_owned());
        }
        Ok(parsed)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether every key has a value that `test(key, value)` accepts.
    pub fn accept(&self, mut test: impl FnMut(&str, &str) -> Result<bool>) -> Result<bool> {
        for (key, values) in &self.0 {
            let mut any = false;
            for value in values {
                if test(key, value)? {
                    any = true;
                    break;
                }
            }
            if !any {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `label=KEY` (has it) or `label=KEY=VALUE` (has it with that value).
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(filter),
    }
}

/// Whether container `s` passes `filters`; `find` looks up the containers
/// that `before` and `since` name, `image_names` the names of `s`'s image
/// (for `ancestor`).
pub fn container_passes(
    filters: &Filters,
    s: &State,
    find: &impl Fn(&str) -> Result<State>,
    image_names: &[String],
) -> Result<bool> {
    filters.accept(|key, value| {
        Ok(match key {
            "id" => s.id.starts_with(value),
            "name" => s.name.contains(value.trim_start_matches('/')),
            "label" => label_matches(&s.options.labels, value),
            "status" => status_name(s) == value,
            "ancestor" => {
                let id = s.image_id.as_deref().unwrap_or_default().trim_start_matches("sha256:");
                let value_hex = value.trim_start_matches("sha256:");
                s.image == value
                    || image_names.iter().any(|n| n == value || n.strip_suffix(":latest") == Some(value))
                    || (value_hex.len() >= 4 && id.starts_with(value_hex))
            }
            "before" => s.created < find(value)?.created,
            "since" => s.created > find(value)?.created,
            "health" => match value {
                "starting" | "healthy" | "unhealthy" => s.health.as_ref().is_some_and(|h| h.status.as_str() == value),
                "none" => s.health.is_none(),
                other => bail!("--filter health={other}: give starting, healthy, unhealthy or none"),
            },
            "exited" => {
                matches!(s.run_state(), ctr_cli::container::RunState::Exited(Some(c)) if c.to_string() == value)
            }
            _ => false,
        })
    })
}

/// Docker's `status` filter values: created, running, paused, exited.
pub fn status_name(s: &State) -> &'static str {
    s.run_state().docker_name()
}

/// Whether image `record` passes `filters`; `find` looks up the images
/// that `before` and `since` name.
pub fn image_passes(
    filters: &Filters,
    record: &ImageRecord,
    find: &impl Fn(&str) -> Result<ImageRecord>,
) -> Result<bool> {
    filters.accept(|key, value| {
        Ok(match key {
            "dangling" => match value {
                "true" | "1" => record.references.is_empty(),
                "false" | "0" => !record.references.is_empty(),
                other => bail!("--filter dangling={other}: give true or false"),
            },
            // ctr keeps no image labels: only `label` filters of nothing match.
            "label" => false,
            "before" => record.created < find(value)?.created,
            "since" => record.created > find(value)?.created,
            "reference" => record.references.iter().any(|r| reference_matches(r, value)),
            _ => false,
        })
    })
}

/// Keeps only the references of `record` that its `reference` filters
/// match (docker lists those rows alone); no filter keeps them all.
pub fn keep_matching_references(filters: &Filters, record: &mut ImageRecord) {
    if let Some(patterns) = filters.0.get("reference") {
        record.references.retain(|r| patterns.iter().any(|p| reference_matches(r, p)));
    }
}

/// `reference=alpine`, `reference=alpine:3.*`, `reference=*/app`: a
/// pattern with `*` wildcards, against `name:tag` or the name alone.
fn reference_matches(reference: &str, pattern: &str) -> bool {
    let name = reference.rsplit_once(':').map_or(reference, |(n, _)| n);
    glob(pattern, reference) || glob(pattern, name)
}

/// `*` matches any run of characters; the rest literally.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|&i| rest.is_char_boundary(i)).any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(f: &[&str]) -> Filters {
        Filters::parse(&f.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &CONTAINER_KEYS).unwrap()
    }

    #[test]
    fn same_key_ors_different_keys_and() {
        let f = filters(&["name=web", "name=db", "label=tier=front"]);
        let pass = |name: &str, tier: &str| {
            f.accept(|k, v| {
                Ok(match k {
                    "name" => name.contains(v),
                    "label" => v == format!("tier={tier}"),
                    _ => false,
                })
            })
            .unwrap()
        };
        assert!(pass("web1", "front"));
        assert!(pass("db", "front"));
        assert!(!pass("cache", "front"), "no name matches");
        assert!(!pass("web1", "back"), "the label does not");
    }

    #[test]
    fn refuses_unknown_keys_and_bare_words() {
        let parse = |f: &str| Filters::parse(&[f.to_owned()], &CONTAINER_KEYS);
        assert!(parse("colour=red").is_err());
        assert!(parse("running").is_err());
        assert!(parse("STATUS=running").is_ok());
    }

    #[test]
    fn labels_by_key_or_key_and_value() {
        let labels: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
        assert!(label_matches(&labels, "a"));
        assert!(label_matches(&labels, "a=1"));
        assert!(!label_matches(&labels, "a=2"));
        assert!(!label_matches(&labels, "b"));
    }

    #[test]
    fn reference_patterns() {
        assert!(reference_matches("alpine:3.20", "alpine"));
        assert!(reference_matches("alpine:3.20", "alpine:3.*"));
        assert!(reference_matches("localhost:5000/app:v1", "*/app"));
        assert!(!reference_matches("alpine:3.20", "busybox"));
        assert!(!reference_matches("alpine:3.20", "alp"));
    }
}
