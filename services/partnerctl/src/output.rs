//! Printing: human tables (comfy-table) or JSON for scripts, on stdout;
//! errors with their google.rpc details on stderr.

use std::collections::BTreeMap;
use std::io::Write;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

use crate::error::{CliError, CliResult};
use crate::json::to_json;
use crate::report::ErrorReport;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and short sentences for people.
    Table,
    /// One JSON document per command (the proto3 JSON of the response).
    Json,
}

/// A table column: its header and where its value is in the response's
/// JSON, as a dotted path; `[]` maps over a list (`roles[].role`). A path
/// may end with `|id` (the last segment of a resource name), `|count` (how
/// many entries a list has) or `|PREFIX_` (an enum name without its type
/// prefix: `state|MEMBER_STATE_`).
pub type Column = (&'static str, &'static str);

/// Prints results in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: Format,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: Format) -> Self {
        Self { format }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// One resource: every non-empty field as a row of a two-column table.
    pub fn item<M: prost::Message + prost::Name>(&self, message: &M) -> CliResult {
        let json = to_json(message)?;
        match self.format {
            Format::Json => print_json(&json),
            Format::Table => {
                let mut rows = BTreeMap::new();
                flatten("", &json, &mut rows);
                let mut table = table(&["FIELD", "VALUE"]);
                for (field, value) in rows {
                    table.add_row(vec![field, value]);
                }
                emit(&table)
            }
        }
    }

    /// A list response: the entries of its field `field` as a table with
    /// `columns`, and the next page's token if there is one.
    pub fn list<M: prost::Message + prost::Name>(
        &self,
        message: &M,
        field: &str,
        columns: &[Column],
    ) -> CliResult {
        let json = to_json(message)?;
        if self.format == Format::Json {
            return print_json(&json);
        }
        let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
        let mut table = table(&headers);
        let entries = json[field].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            table.add_row(columns.iter().map(|(_, path)| pick(entry, path)));
        }
        if entries.is_empty() {
            emit("(none)")?;
        } else {
            emit(&table)?;
        }
        if let Some(token) = json["next_page_token"].as_str().filter(|t| !t.is_empty()) {
            eprintln!("more: --page-token {token}");
        }
        Ok(())
    }

    /// A response worth one sentence to a person (`done` in table mode),
    /// the response's JSON otherwise.
    pub fn done<M: prost::Message + prost::Name>(&self, message: &M, done: &str) -> CliResult {
        match self.format {
            Format::Json => print_json(&to_json(message)?),
            Format::Table => emit(done),
        }
    }

    /// Prints `error` on stderr, with every detail the server gave.
    pub fn error(&self, error: &CliError) {
        let report = ErrorReport::from(error);
        match self.format {
            Format::Json => match serde_json::to_string(&serde_json::json!({ "error": report })) {
                Ok(text) => eprintln!("{text}"),
                Err(_) => eprintln!("error: {}", report.message),
            },
            Format::Table => eprint!("{report}"),
        }
    }
}

fn print_json(value: &Value) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    emit(&text)
}

/// Writes `text` and a newline on stdout. A reader that went away (`| head`)
/// is not an error.
pub fn emit(text: impl std::fmt::Display) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    table
}

/// The value at `path` in `value`, as text, shaped by the path's `|…`.
fn pick(value: &Value, path: &str) -> String {
    let (path, shape) = path.split_once('|').unwrap_or((path, ""));
    let values = walk(value, path);
    if shape == "count" {
        return values
            .iter()
            .map(|v| v.as_array().map_or(1, Vec::len))
            .sum::<usize>()
            .to_string();
    }
    values
        .into_iter()
        .map(text)
        .map(|t| match shape {
            "" => t,
            "id" => t.rsplit('/').next().unwrap_or_default().to_owned(),
            prefix => t.strip_prefix(prefix).map(str::to_owned).unwrap_or(t),
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values at `path` in `value`.
fn walk<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![value];
    for segment in path.split('.') {
        let (key, spread) = match segment.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (segment, false),
        };
        current = current
            .into_iter()
            .flat_map(|v| {
                let child = &v[key];
                match (spread, child) {
                    (true, Value::Array(items)) => items.iter().collect::<Vec<_>>(),
                    _ => vec![child],
                }
            })
            .collect();
    }
    current
}

/// A scalar as text (lists of scalars joined).
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Every non-empty scalar of `value` under its dotted path.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                flatten(&join(key), child, out);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, out);
            }
        }
        scalar => {
            let text = text(scalar);
            if !text.is_empty() {
                out.insert(prefix.to_owned(), text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_path_reaches_nested_fields_and_maps_over_lists() {
        let member =
            json!({"user": {"email": "a@b.c"}, "roles": [{"role": "owner"}, {"role": "manager"}]});
        assert_eq!(pick(&member, "user.email"), "a@b.c");
        assert_eq!(pick(&member, "roles[].role"), "owner, manager");
        assert_eq!(pick(&member, "missing.field"), "");
        let named =
            json!({"name": "accounts/a/members/u", "state": "MEMBER_STATE_ACTIVE", "l": [1, 2]});
        assert_eq!(pick(&named, "name|id"), "u");
        assert_eq!(pick(&named, "state|MEMBER_STATE_"), "ACTIVE");
        assert_eq!(pick(&named, "l|count"), "2");
    }

    #[test]
    fn flattening_names_every_scalar_and_skips_empty_ones() {
        let mut rows = BTreeMap::new();
        flatten(
            "",
            &json!({"a": {"b": 1, "c": ""}, "l": [{"x": "y"}], "t": ["p", "q"]}),
            &mut rows,
        );
        assert_eq!(rows.get("a.b").map(String::as_str), Some("1"));
        assert!(!rows.contains_key("a.c"));
        assert_eq!(rows.get("l[0].x").map(String::as_str), Some("y"));
        assert_eq!(rows.get("t").map(String::as_str), Some("p, q"));
    }
}
