//! `ps` rows with docker's field names, for its table, `--format json`
//! and templates (`{{.ID}}`, `{{.Names}}`, `{{.Label "k"}}`...).

use super::listing::Listing;
use super::status::{created_text, status_text};
use ctr_cli::container::State;

/// `docker ps`'s own table.
pub const PS: Listing = Listing {
    default: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    headers: &[("ID", "CONTAINER ID"), ("RunningFor", "CREATED"), ("CreatedAt", "CREATED AT")],
};

/// Docker's `CreatedAt` text: `2024-05-01 10:00:00 +0000 UTC`.
pub fn docker_time(unix: u64) -> String {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    let rfc = humantime::format_rfc3339_seconds(when).to_string();
    format!("{} +0000 UTC", rfc.trim_end_matches('Z').replace('T', " "))
}

/// Docker's PORTS text: `0.0.0.0:8080->80/tcp, ...`.
fn ports_text(s: &State) -> String {
    let ports = s.network.iter().flat_map(|n| &n.ports);
    let text = ports.map(|p| {
        let ip = p.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
        format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
    });
    text.collect::<Vec<_>>().join(", ")
}

/// The command as docker's ps shows it: quoted, cut to 20 characters
/// unless `no_trunc`.
fn command_text(s: &State, no_trunc: bool) -> String {
    let mut command = s.command.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{command}\"")
}

/// One container's row.
pub fn ps_row(s: &State, no_trunc: bool) -> serde_json::Value {
    let labels: Vec<String> = s.options.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let volumes: Vec<&str> = ctr_cli::mounts::volume_names(&s.mounts).collect();
    let network = match &s.network {
        Some(n) => n.network.clone(),
        None => String::new(),
    };
    serde_json::json!({
        "ID": if no_trunc { &s.id[..] } else { s.short_id() },
        "Id": s.id,
        "Names": s.name,
        "Image": s.image,
        "Command": command_text(s, no_trunc),
        "CreatedAt": docker_time(s.created),
        "RunningFor": created_text(s),
        "Status": status_text(s),
        "State": s.run_state().docker_name(),
        "Ports": ports_text(s),
        "Labels": labels.join(","),
        "Mounts": volumes.join(","),
        "LocalVolumes": volumes.len().to_string(),
        "Networks": network,
        "Pid": s.init.as_ref().filter(|_| s.is_up()).map(|p| p.pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_dockers() {
        assert_eq!(docker_time(86_400 + 61), "1970-01-02 00:01:01 +0000 UTC");
    }

    #[test]
    fn rows_have_dockers_fields() {
        let mut s = State {
            id: "a".repeat(64),
            name: "web".into(),
            command: vec!["sleep".into(), "1d".into()],
            ..State::default()
        };
        s.options.labels.insert("tier".into(), "front".into());
        let row = ps_row(&s, false);
        assert_eq!(row["ID"], "a".repeat(12));
        assert_eq!(row["Command"], "\"sleep 1d\"");
        assert_eq!(row["Labels"], "tier=front");
        assert_eq!(row["State"], "created");
        assert_eq!(ps_row(&s, true)["ID"], "a".repeat(64));
    }
}
