//! Markdown of the reference: per package its services (each RPC with its
//! request, response, access rule and comment), messages with a table of
//! fields, enums, events and commands, with anchors and links between types.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use partnerhub_platform::auth::{AccessRules, Rule};

use super::REGENERATE;
use super::model::{Enum, FieldLabel, FieldType, Message, Method, Package, Service};

/// Writes the whole page.
pub fn page(packages: &[Package], rules: &AccessRules) -> Result<String, fmt::Error> {
    let known: BTreeSet<&str> = packages
        .iter()
        .flat_map(|p| {
            let messages = p.messages.iter().chain(&p.events).chain(&p.commands);
            messages
                .map(|m| m.full_name.as_str())
                .chain(p.enums.iter().map(|e| e.full_name.as_str()))
        })
        .collect();
    let mut out = String::new();
    header(&mut out, packages)?;
    for package in packages {
        let page = Page {
            package: &package.name,
            known: &known,
            rules,
        };
        page.package(&mut out, package)?;
    }
    Ok(out)
}

fn header(out: &mut String, packages: &[Package]) -> fmt::Result {
    writeln!(out, "# partnerhub API reference")?;
    writeln!(out)?;
    writeln!(
        out,
        "<!-- Generated from the comments in proto/partnerhub/**.proto; do not edit. Regenerate: {REGENERATE} -->"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Every RPC declares who may call it with the `partnerhub.auth.v1.access` method option: \
         **public** (no token), **any signed-in caller** (a valid access token; the handler checks \
         that the resource is the caller's own), or a **permission** the caller must hold in the \
         account the request names. Resources of another account answer NOT_FOUND. Errors carry \
         google.rpc details: a `BadRequest` listing every field violation for INVALID_ARGUMENT and \
         an `ErrorInfo` reason."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Events are published on the topic exchange `partnerhub.events` with their full name as \
         routing key and CloudEvents type; commands go to the one service that reads them on \
         `partnerhub.commands`."
    )?;
    writeln!(out)?;
    writeln!(out, "## Contents")?;
    writeln!(out)?;
    for package in packages {
        write!(out, "- [{}](#{})", package.name, anchor(&package.name))?;
        let services: Vec<String> = package
            .services
            .iter()
            .map(|s| {
                format!(
                    "[{}](#{})",
                    short(&package.name, &s.full_name),
                    anchor(&s.full_name)
                )
            })
            .collect();
        if !services.is_empty() {
            write!(out, ": {}", services.join(", "))?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Renders the parts of one package.
struct Page<'a> {
    package: &'a str,
    known: &'a BTreeSet<&'a str>,
    rules: &'a AccessRules,
}

impl Page<'_> {
    fn package(&self, out: &mut String, package: &Package) -> fmt::Result {
        heading(out, 2, &package.name, &package.name)?;
        if !package.services.is_empty() {
            writeln!(out, "### Services")?;
            writeln!(out)?;
            for service in &package.services {
                self.service(out, service)?;
            }
        }
        let none = Vec::new();
        for (title, messages, intro) in [
            ("Messages", &package.messages, &none),
            ("Events", &package.events, &package.events_intro),
            ("Commands", &package.commands, &package.commands_intro),
        ] {
            if messages.is_empty() {
                continue;
            }
            writeln!(out, "### {title}")?;
            writeln!(out)?;
            for text in intro {
                paragraph(out, Some(text))?;
            }
            for message in messages {
                self.message(out, message)?;
            }
        }
        if !package.enums.is_empty() {
            writeln!(out, "### Enums")?;
            writeln!(out)?;
            for e in &package.enums {
                self.enumeration(out, e)?;
            }
        }
        Ok(())
    }

    fn service(&self, out: &mut String, service: &Service) -> fmt::Result {
        heading(
            out,
            4,
            &service.full_name,
            short(self.package, &service.full_name),
        )?;
        paragraph(out, service.comment.as_deref())?;
        for method in &service.methods {
            self.method(out, service, method)?;
        }
        Ok(())
    }

    fn method(&self, out: &mut String, service: &Service, method: &Method) -> fmt::Result {
        let full_name = format!("{}.{}", service.full_name, method.name);
        heading(
            out,
            5,
            &full_name,
            &format!(
                "{}.{}",
                short(self.package, &service.full_name),
                method.name
            ),
        )?;
        let stream = |on: bool| if on { "stream " } else { "" };
        writeln!(
            out,
            "{}{} → {}{}  ",
            stream(method.client_streaming),
            self.link(&method.input),
            stream(method.server_streaming),
            self.link(&method.output),
        )?;
        let path = format!("/{}/{}", service.full_name, method.name);
        writeln!(out, "Access: {}", access(self.rules.rule(&path)))?;
        writeln!(out)?;
        paragraph(out, method.comment.as_deref())
    }

    fn message(&self, out: &mut String, message: &Message) -> fmt::Result {
        heading(
            out,
            4,
            &message.full_name,
            short(self.package, &message.full_name),
        )?;
        paragraph(out, message.comment.as_deref())?;
        if message.fields.is_empty() {
            writeln!(out, "No fields.")?;
            writeln!(out)?;
            return Ok(());
        }
        writeln!(out, "| Field | # | Type | Label | Description |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for field in &message.fields {
            let label = match &field.label {
                FieldLabel::Singular => String::new(),
                FieldLabel::Optional => "optional".to_owned(),
                FieldLabel::Repeated => "repeated".to_owned(),
                FieldLabel::Map => "map".to_owned(),
                FieldLabel::OneOf(name) => format!("oneof `{name}`"),
            };
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                field.name,
                field.number,
                self.field_type(&field.kind),
                label,
                cell(field.comment.as_deref())
            )?;
        }
        writeln!(out)?;
        for (name, comment) in &message.oneofs {
            writeln!(out, "Oneof `{name}`: {}", cell(comment.as_deref()))?;
            writeln!(out)?;
        }
        Ok(())
    }

    fn enumeration(&self, out: &mut String, e: &Enum) -> fmt::Result {
        heading(out, 4, &e.full_name, short(self.package, &e.full_name))?;
        paragraph(out, e.comment.as_deref())?;
        writeln!(out, "| Value | # | Description |")?;
        writeln!(out, "|---|---|---|")?;
        for (name, number, comment) in &e.values {
            writeln!(
                out,
                "| `{name}` | {number} | {} |",
                cell(comment.as_deref())
            )?;
        }
        writeln!(out)
    }

    fn field_type(&self, kind: &FieldType) -> String {
        match kind {
            FieldType::Scalar(name) => format!("`{name}`"),
            FieldType::Named(name) => self.link(name),
            FieldType::Map(key, value) => format!(
                "map&lt;{}, {}&gt;",
                self.field_type(key),
                self.field_type(value)
            ),
        }
    }

    /// A type name, linked when the page describes it.
    fn link(&self, full_name: &str) -> String {
        if self.known.contains(full_name) {
            format!(
                "[`{}`](#{})",
                short(self.package, full_name),
                anchor(full_name)
            )
        } else {
            format!("`{full_name}`")
        }
    }
}

fn access(rule: Option<&Rule>) -> String {
    match rule {
        Some(Rule::Public) => "public (no token)".to_owned(),
        Some(Rule::Authenticated) => "any signed-in caller".to_owned(),
        Some(Rule::Permission(p)) => format!("permission `{p}`"),
        None => "no rule: every call is refused".to_owned(),
    }
}

fn heading(out: &mut String, level: usize, full_name: &str, title: &str) -> fmt::Result {
    writeln!(out, "<a id=\"{}\"></a>", anchor(full_name))?;
    writeln!(out)?;
    writeln!(out, "{} {title}", "#".repeat(level))?;
    writeln!(out)
}

fn paragraph(out: &mut String, comment: Option<&str>) -> fmt::Result {
    if let Some(text) = comment {
        writeln!(out, "{text}")?;
        writeln!(out)?;
    }
    Ok(())
}

/// A comment on one table line: paragraphs become `<br>`, pipes are escaped.
fn cell(comment: Option<&str>) -> String {
    let Some(text) = comment else {
        return String::new();
    };
    text.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("<br>")
        .replace('|', "\\|")
}

/// The name relative to `package` (`User` in its own package, the full name
/// elsewhere).
fn short<'a>(package: &str, full_name: &'a str) -> &'a str {
    full_name
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(full_name)
}

/// The HTML id of an element: its full name, lower case, dots as dashes.
fn anchor(full_name: &str) -> String {
    full_name.to_lowercase().replace('.', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_anchors_and_cells() {
        assert_eq!(
            short("partnerhub.identity.v1", "partnerhub.identity.v1.User"),
            "User"
        );
        assert_eq!(
            short(
                "partnerhub.identity.v1",
                "partnerhub.profile.v1.ProgramKind"
            ),
            "partnerhub.profile.v1.ProgramKind"
        );
        assert_eq!(
            anchor("partnerhub.identity.v1.User"),
            "partnerhub-identity-v1-user"
        );
        assert_eq!(cell(Some("a | b\nc\n\nd")), "a \\| b c<br>d");
        assert_eq!(cell(None), "");
    }
}
