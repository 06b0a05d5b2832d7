//! `--mount type=bind|volume|tmpfs,...` (docker's long form), turned into
//! the `-v` and `--tmpfs` forms the engine parses, so both forms share one
//! set of checks.

use anyhow::{bail, Result};

/// Where a `--mount` goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Translated {
    /// As `-v SRC:DEST[:OPTS]`.
    Volume(String),
    /// As `--tmpfs DEST[:OPTS]`.
    Tmpfs(String),
}

fn flag(raw: &str, key: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => bail!("--mount {raw}: {key}={other} is not true or false"),
    }
}

/// Docker's keys: type (volume by default), source|src, target|destination|dst,
/// readonly|ro, volume-nocopy, tmpfs-size, tmpfs-mode.
pub fn translate(raw: &str) -> Result<Translated> {
    let (mut kind, mut source, mut target) = ("volume", None, None);
    let (mut read_only, mut nocopy) = (false, false);
    let mut tmpfs_options = Vec::new();
    for field in raw.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (key, value) {
            ("type", Some(t @ ("bind" | "volume" | "tmpfs"))) => kind = t,
            ("type", Some(other)) => bail!("--mount {raw}: type {other:?} is not supported (bind, volume or tmpfs)"),
            ("source" | "src", Some(v)) => source = Some(v),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v),
            ("readonly" | "ro", v) => read_only = flag(raw, key, v)?,
            ("volume-nocopy", v) => nocopy = flag(raw, key, v)?,
            ("tmpfs-size", Some(v)) => tmpfs_options.push(format!("size={v}")),
            ("tmpfs-mode", Some(v)) => tmpfs_options.push(format!("mode={v}")),
            _ => bail!(
                "--mount {raw}: unsupported key {field:?} (supported: type, source, target, readonly, volume-nocopy, \
                 tmpfs-size, tmpfs-mode)"
            ),
        }
    }
    let Some(target) = target else { bail!("--mount {raw}: give target=PATH") };
    if [Some(target), source].iter().flatten().any(|p| p.contains(':')) {
        bail!("--mount {raw}: a path with ':' is not supported");
    }
    match kind {
        "tmpfs" => {
            if source.is_some() || nocopy {
                bail!("--mount {raw}: a tmpfs takes no source or volume-nocopy");
            }
            if read_only {
                tmpfs_options.push("ro".into());
            }
            Ok(Translated::Tmpfs(if tmpfs_options.is_empty() {
                target.to_owned()
            } else {
                format!("{target}:{}", tmpfs_options.join(","))
            }))
        }
        _ if !tmpfs_options.is_empty() => bail!("--mount {raw}: tmpfs-* options need type=tmpfs"),
        "bind" => {
            let Some(source) = source.filter(|s| s.starts_with('/')) else {
                bail!("--mount {raw}: a bind needs source=ABSOLUTE-PATH");
            };
            if nocopy {
                bail!("--mount {raw}: volume-nocopy applies to volumes only");
            }
            Ok(Translated::Volume(format!("{source}:{target}{}", if read_only { ":ro" } else { "" })))
        }
        _ => {
            let Some(source) = source.filter(|s| !s.contains('/')) else {
                bail!("--mount {raw}: a volume needs source=NAME (anonymous volumes are not supported)");
            };
            let options: Vec<&str> =
                [read_only.then_some("ro"), nocopy.then_some("nocopy")].into_iter().flatten().collect();
            Ok(Translated::Volume(if options.is_empty() {
                format!("{source}:{target}")
            } else {
                format!("{source}:{target}:{}", options.join(","))
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_long_form_becomes_the_short_one() {
        let t = |raw: &str| translate(raw).unwrap();
        assert_eq!(
            t("type=bind,source=/srv/data,target=/data,readonly"),
            Translated::Volume("/srv/data:/data:ro".into())
        );
        assert_eq!(t("type=bind,src=/a,dst=/b,ro=false"), Translated::Volume("/a:/b".into()));
        assert_eq!(t("source=cache,target=/cache"), Translated::Volume("cache:/cache".into()));
        assert_eq!(
            t("type=volume,src=cache,destination=/c,volume-nocopy,readonly=1"),
            Translated::Volume("cache:/c:ro,nocopy".into())
        );
        assert_eq!(t("type=tmpfs,target=/run"), Translated::Tmpfs("/run".into()));
        assert_eq!(
            t("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770,readonly"),
            Translated::Tmpfs("/run:size=64m,mode=1770,ro".into())
        );
    }

    #[test]
    fn what_does_not_fit_is_refused() {
        for (raw, why) in [
            ("type=bind,target=/x", "source=ABSOLUTE-PATH"),
            ("type=bind,source=rel,target=/x", "source=ABSOLUTE-PATH"),
            ("type=volume,target=/x", "source=NAME"),
            ("type=tmpfs,source=/a,target=/x", "no source"),
            ("type=npipe,target=/x", "not supported"),
            ("type=bind,source=/a,target=/x,bind-propagation=shared", "unsupported key"),
            ("type=bind,source=/a", "target=PATH"),
            ("type=bind,source=/a:b,target=/x", "':'"),
            ("type=volume,source=v,target=/x,tmpfs-size=1m", "need type=tmpfs"),
            ("type=bind,source=/a,target=/x,readonly=maybe", "not true or false"),
        ] {
            let err = translate(raw).unwrap_err().to_string();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }
}
