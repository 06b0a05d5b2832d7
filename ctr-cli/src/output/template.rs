//! The small part of Go templates that scripts use with `inspect
//! --format`: `{{.A.B}}` (strings bare, the rest as JSON) and
//! `{{json .A}}`.

use anyhow::{Context, Result};

pub fn render_template(template: &str, value: &serde_json::Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").context("unclosed {{ in --format")? + start;
        let expr = rest[start + 2..end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').with_context(|| format!("--format: {expr:?} is not a .Field path"))?;
        let mut v = value;
        for field in path.split('.').filter(|f| !f.is_empty()) {
            v = v.get(field).with_context(|| format!("--format: no field {field:?} in {expr:?}"))?;
        }
        match (as_json, v) {
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            _ => out.push_str(&v.to_string()),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_pick_fields() {
        let v = serde_json::json!({"State": {"Status": "running", "Pid": 42, "Error": null}, "Name": "web"});
        assert_eq!(render_template("{{.State.Status}}", &v).unwrap(), "running");
        assert_eq!(render_template("{{.Name}} pid={{ .State.Pid }}", &v).unwrap(), "web pid=42");
        assert_eq!(render_template("{{json .State.Status}}", &v).unwrap(), "\"running\"");
        assert_eq!(render_template("{{.State.Error}}", &v).unwrap(), "<no value>");
        assert!(render_template("{{.Nope}}", &v).is_err());
        assert!(render_template("{{.Name", &v).is_err());
    }
}
