//! Go templates for `--format`, through the gtmpl crate, with docker's
//! additions: the `json`, `join`, `split`, `lower`, `upper`, `title` and
//! `truncate` functions, the `.Label "KEY"` method of `ps` rows, and
//! values printed as Go prints them (`[a b]`, `map[k:v]`), which gtmpl
//! alone does not do (it prints arrays and maps in Rust's debug form).

use anyhow::{anyhow, Result};
use gtmpl::{Context, Func, FuncError, Template, Value};
use std::collections::HashMap;

/// A parsed `--format` template.
pub struct GoTemplate(Template);

/// The functions docker's templates have beyond Go's own.
const FUNCS: [(&str, Func); 9] = [
    ("json", json),
    ("join", join),
    ("split", split),
    ("lower", lower),
    ("upper", upper),
    ("title", title),
    ("truncate", truncate),
    ("ctr_goprint", goprint),
    ("ctr_label", label),
];

impl GoTemplate {
    /// `\t` and `\n` typed in a shell's quotes are a tab and a newline, as in docker.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n").replace(".Label ", "ctr_label . ");
        let mut template = Template::default();
        template.add_funcs(&FUNCS);
        template.parse(go_printed(&text)).map_err(|e| anyhow!("--format: {e}"))?;
        Ok(Self(template))
    }

    pub fn render(&self, value: &serde_json::Value) -> Result<String> {
        self.0.render(&Context::from(from_json(value))).map_err(|e| anyhow!("--format: {e}"))
    }
}

/// Wraps each printing action `{{X}}` as `{{ctr_goprint (X)}}`, so that
/// what it prints is formatted as Go would; control actions (if, range,
/// end...), comments and variable assignments are left as they are.
fn go_printed(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = action_len(&rest[start..]) else { break };
        let action = &rest[start + 2..start + len - 2];
        let (open, inner) = action.strip_prefix('-').map_or(("", action), |a| ("-", a));
        let (inner, close) = inner.strip_suffix('-').map_or((inner, ""), |a| (a, "-"));
        let first = inner.split_whitespace().next().unwrap_or("");
        let control = ["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"];
        let is_assignment = first.starts_with('$') && (inner.contains(":=") || inner.contains(" = "));
        if first.is_empty() || control.contains(&first) || first.starts_with("/*") || is_assignment {
            out.push_str(&rest[start..start + len]);
        } else {
            out.push_str(&format!("{{{{{open} ctr_goprint ({}) {close}}}}}", inner.trim()));
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// The length of the action at the start of `text` (which starts with
/// `{{`), through its `}}`, skipping quoted strings; `None` if unclosed
/// (the parser then reports it).
fn action_len(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut chars = text.char_indices().skip(2).peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), '\\') if q != '`' => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '`' | '\'') => quote = Some(c),
            (None, '}') if text[i..].starts_with("}}") => return Some(i + 2),
            (None, _) => {}
        }
    }
    None
}

/// JSON as the template's data: objects are structs (a misspelt field is
/// an error, as in docker) except label maps, which are Go maps (a missing
/// key is `<no value>`); null is `<no value>`.
fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::NoValue,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            let fields = o.iter().map(|(k, v)| {
                let v = if k == "Labels" && v.is_object() { Value::Map(map_of(v)) } else { from_json(v) };
                (k.clone(), v)
            });
            Value::Object(fields.collect())
        }
    }
}

fn map_of(value: &serde_json::Value) -> HashMap<String, Value> {
    value.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), from_json(v))).collect()
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into(),
            (_, Some(i), _) => i.into(),
            (_, _, f) => f.unwrap_or(0.0).into(),
        },
        Value::Array(a) => a.iter().map(to_json).collect(),
        Value::Object(o) | Value::Map(o) => o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
    }
}

/// Go's `%v`: `[a b]`, `map[k:v]` (keys sorted), `<no value>`.
fn go_format(value: &Value) -> String {
    match value {
        Value::Array(a) => format!("[{}]", a.iter().map(go_format).collect::<Vec<_>>().join(" ")),
        Value::Object(o) | Value::Map(o) => {
            let mut pairs: Vec<_> = o.iter().map(|(k, v)| format!("{k}:{}", go_format(v))).collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
        other => other.to_string(),
    }
}

fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn string_arg(name: &str, value: &Value) -> Result<String, FuncError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(FuncError::Generic(format!("{name}: expected a string, got {}", go_format(other)))),
    }
}

fn goprint(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(go_format(one("print", args)?)))
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(to_json(one("json", args)?).to_string()))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Array(items), sep] = args else {
        return Err(FuncError::Generic("join takes a list and a separator".into()));
    };
    let sep = string_arg("join", sep)?;
    Ok(Value::String(items.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(&sep)))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let [text, sep] = args else { return Err(FuncError::ExactlyXArgs("split".into(), 2)) };
    let (text, sep) = (string_arg("split", text)?, string_arg("split", sep)?);
    Ok(Value::Array(text.split(sep.as_str()).map(Value::from).collect()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string_arg("lower", one("lower", args)?)?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(string_arg("upper", one("upper", args)?)?.to_uppercase()))
}

/// Each word's first letter upper-cased.
fn title(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("title", one("title", args)?)?;
    let mut at_start = true;
    let titled = text.chars().map(|c| {
        let out = if at_start { c.to_uppercase().next().unwrap_or(c) } else { c };
        at_start = c.is_whitespace();
        out
    });
    Ok(Value::String(titled.collect()))
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let [text, Value::Number(n)] = args else {
        return Err(FuncError::Generic("truncate takes a string and a length".into()));
    };
    let len = n.as_u64().unwrap_or(0) as usize;
    Ok(Value::String(string_arg("truncate", text)?.chars().take(len).collect()))
}

/// `.Label "KEY"` of a row: from a map of labels, or from docker's
/// `k=v,k2=v2` text of `ps`; empty if the row has no such label.
fn label(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Object(row) | Value::Map(row), key] = args else {
        return Err(FuncError::Generic(".Label takes one key, as in {{.Label \"com.example.key\"}}".into()));
    };
    let key = string_arg("Label", key)?;
    let found = match row.get("Labels") {
        Some(Value::Map(m) | Value::Object(m)) => m.get(&key).map(|v| v.to_string()),
        Some(Value::String(s)) => {
            s.split(',').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v.to_owned())
        }
        _ => None,
    };
    Ok(Value::String(found.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, value: &serde_json::Value) -> Result<String> {
        GoTemplate::parse(template)?.render(value)
    }

    #[test]
    fn fields_and_nested_fields() {
        let v = serde_json::json!({"State": {"Status": "running", "Pid": 42, "Error": null}, "Name": "web"});
        assert_eq!(render("{{.State.Status}}", &v).unwrap(), "running");
        assert_eq!(render("{{.Name}} pid={{ .State.Pid }}", &v).unwrap(), "web pid=42");
        assert_eq!(render("{{json .State.Status}}", &v).unwrap(), "\"running\"");
        assert_eq!(render("{{.State.Error}}", &v).unwrap(), "<no value>");
        assert!(render("{{.Nope}}", &v).is_err(), "a misspelt field is an error, as in docker");
        assert!(render("{{.Name", &v).is_err());
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let v = serde_json::json!({"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cpus": 0.5});
        assert_eq!(render("{{.Env}}", &v).unwrap(), "[A=1 B=2]");
        assert_eq!(render("{{.Labels}}", &v).unwrap(), "map[a:1 b:2]");
        assert_eq!(render("{{json .Labels}}", &v).unwrap(), r#"{"a":"1","b":"2"}"#);
        assert_eq!(render("{{.Cpus}}", &v).unwrap(), "0.5");
        assert_eq!(render("{{.Labels.missing}}", &v).unwrap(), "<no value>", "labels are a map");
        assert_eq!(render("{{index .Labels \"a\"}}", &v).unwrap(), "1");
    }

    #[test]
    fn control_actions_and_functions() {
        let v = serde_json::json!({"Env": ["A=1", "B=2"], "Name": "Web app", "Up": true});
        assert_eq!(render("{{range .Env}}{{.}};{{end}}", &v).unwrap(), "A=1;B=2;");
        assert_eq!(render("{{if .Up}}up{{else}}down{{end}}", &v).unwrap(), "up");
        assert_eq!(render("{{- $n := .Name -}} {{ $n }}", &v).unwrap(), "Web app");
        assert_eq!(render("{{join .Env \",\"}}", &v).unwrap(), "A=1,B=2");
        assert_eq!(render("{{upper .Name}} {{lower .Name}}", &v).unwrap(), "WEB APP web app");
        assert_eq!(render("{{title \"hello world\"}}", &v).unwrap(), "Hello World");
        assert_eq!(render("{{truncate .Name 3}}", &v).unwrap(), "Web");
        assert_eq!(render("{{index (split .Name \" \") 1}}", &v).unwrap(), "app");
        assert_eq!(render("{{/* a comment */}}{{ \"}}\" }}", &v).unwrap(), "}}");
        assert_eq!(render("{{.Name | printf \"%s!\"}}", &v).unwrap(), "Web app!");
        let net = serde_json::json!({"IPAM": {"Config": [{"Subnet": "10.88.0.0/16"}]}});
        assert_eq!(render("{{(index .IPAM.Config 0).Subnet}}", &net).unwrap(), "10.88.0.0/16");
    }

    #[test]
    fn label_method_reads_maps_and_ps_text() {
        let row = serde_json::json!({"Labels": "a=1,com.x=y"});
        assert_eq!(render("{{.Label \"com.x\"}}|{{.Label \"no\"}}", &row).unwrap(), "y|");
        let inspected = serde_json::json!({"Labels": {"a": "1"}});
        assert_eq!(render("{{.Label \"a\"}}", &inspected).unwrap(), "1");
    }
}
