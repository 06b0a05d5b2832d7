//! `--format` as docker reads it: nothing or `table` for the verb's own
//! table, `json` for one JSON object per line, `table TEMPLATE` for a
//! table of the template's tab-separated cells under a header, any other
//! text a Go template printed once per row (or per inspected object).

use super::table::write_rows;
use super::template::GoTemplate;
use anyhow::Result;
use std::io::Write;

/// How a verb lists its rows by default, and the header of each field.
pub struct Listing {
    /// The verb's own table, as a `table ...` template.
    pub default: &'static str,
    /// Column headers of the fields that do not read as their own name
    /// upper-cased (`ID` → `CONTAINER ID`).
    pub headers: &'static [(&'static str, &'static str)],
}

/// Prints `rows` (objects with docker's field names) as `format` asks.
pub fn print_list(
    out: &mut impl Write,
    format: Option<&str>,
    listing: &Listing,
    rows: &[serde_json::Value],
) -> Result<()> {
    let text = match format.map(str::trim) {
        None | Some("" | "table") => listing.default,
        Some(text) => text,
    };
    if text == "json" {
        for row in rows {
            writeln!(out, "{row}")?;
        }
        return Ok(());
    }
    let Some(table) = text.strip_prefix("table").filter(|t| t.starts_with(char::is_whitespace)) else {
        let template = GoTemplate::parse(text)?;
        for row in rows {
            writeln!(out, "{}", template.render(row)?)?;
        }
        return Ok(());
    };
    let template = GoTemplate::parse(table.trim_start())?;
    let header = template.render(&header_row(listing, rows.first(), table))?.replace("<no value>", "");
    let mut lines = vec![header];
    for row in rows {
        lines.push(template.render(row)?);
    }
    let cells: Vec<Vec<String>> = lines.iter().map(|l| l.split('\t').map(str::to_owned).collect()).collect();
    write_rows(out, &cells)?;
    Ok(())
}

/// The row a `table` template renders its header from: each field's
/// header, for the fields of the first row and those the template names
/// (so that a header is printed even when there are no rows).
fn header_row(listing: &Listing, first: Option<&serde_json::Value>, template: &str) -> serde_json::Value {
    let named = template.split('.').skip(1).map(|after| {
        let end = after.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(after.len());
        &after[..end]
    });
    let in_first_row = first.and_then(|row| row.as_object()).into_iter().flatten().map(|(name, _)| name.as_str());
    let mut fields: serde_json::Map<String, serde_json::Value> = in_first_row
        .chain(named.filter(|name| name.starts_with(|c: char| c.is_ascii_uppercase())))
        .map(|name| (name.to_owned(), upper_words(name).into()))
        .collect();
    fields.extend(listing.headers.iter().map(|(name, header)| (name.to_string(), header.to_string().into())));
    fields.into()
}

/// `CreatedAt` → `CREATED AT`, as docker names columns it has no header for.
fn upper_words(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && previous_lower {
            out.push(' ');
        }
        previous_lower = c.is_lowercase();
        out.extend(c.to_uppercase());
    }
    out
}

/// Prints each of `values` (inspected objects) as `format` asks: a JSON
/// array by default, else the template once per value.
pub fn print_each(out: &mut impl Write, format: Option<&str>, values: &[serde_json::Value]) -> Result<()> {
    match format.map(str::trim) {
        None | Some("" | "json") => writeln!(out, "{}", serde_json::to_string_pretty(values)?)?,
        Some(text) => {
            let template = GoTemplate::parse(text)?;
            for value in values {
                writeln!(out, "{}", template.render(value)?)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: Listing = Listing { default: "table {{.ID}}\\t{{.Names}}", headers: &[("ID", "CONTAINER ID")] };

    fn listed(format: Option<&str>) -> String {
        let rows = [
            serde_json::json!({"ID": "abc", "Names": "web", "CreatedAt": "x"}),
            serde_json::json!({"ID": "defghi", "Names": "db", "CreatedAt": "y"}),
        ];
        let mut out = Vec::new();
        print_list(&mut out, format, &LISTING, &rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tables_templates_and_json() {
        assert_eq!(listed(None), "CONTAINER ID   NAMES\nabc            web\ndefghi         db\n");
        assert_eq!(listed(Some("table")), listed(None));
        let mut out = Vec::new();
        print_list(&mut out, Some("table {{.Names}}\t{{.Status}}"), &LISTING, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "NAMES   STATUS\n", "a header without rows");
        assert_eq!(listed(Some("table {{.Names}}\t{{.CreatedAt}}")), "NAMES   CREATED AT\nweb     x\ndb      y\n");
        assert_eq!(listed(Some("{{.Names}}")), "web\ndb\n");
        assert_eq!(listed(Some("{{.Names}}\\t{{.ID}}")), "web\tabc\ndb\tdefghi\n", "a typed \\t is a tab");
        assert!(listed(Some("json")).starts_with("{\"CreatedAt\":\"x\",\"ID\":\"abc\""));
    }

    #[test]
    fn inspected_values_as_json_or_template() {
        let values = [serde_json::json!({"Name": "a"})];
        let mut out = Vec::new();
        print_each(&mut out, Some("{{.Name}}!"), &values).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a!\n");
    }
}
