//! A message's protobuf definition as self-contained proto text, printed
//! from the descriptor set with its comments: the message first, then every
//! message and enum of the suite it refers to (transitively). Only
//! `google/protobuf/*` stays an import, which is what AsyncAPI's protobuf
//! schema parser can resolve.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use prost_reflect::{
    EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, OneofDescriptor,
};

/// Package of the well-known types, the only imports left in the text.
const WELL_KNOWN: &str = "google.protobuf";

/// The leading comment of the element at `path` in `file`, trimmed.
pub fn leading_comment(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?.trim();
    (!text.is_empty()).then(|| normalize(text))
}

/// The detached comments before the element at `path` (a file's preamble
/// above its first message).
pub fn detached_comments(file: &FileDescriptor, path: &[i32]) -> Vec<String> {
    let Some(info) = file.file_descriptor_proto().source_code_info.as_ref() else {
        return Vec::new();
    };
    info.location
        .iter()
        .find(|l| l.path == path)
        .map(|l| {
            l.leading_detached_comments
                .iter()
                .map(|c| normalize(c.trim()))
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The comment with each line's single leading space removed.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The comment of a message, a field, an enum or an enum value.
pub fn message_comment(message: &MessageDescriptor) -> Option<String> {
    leading_comment(&message.parent_file(), message.path())
}

/// The comment of a field.
pub fn field_comment(field: &FieldDescriptor) -> Option<String> {
    leading_comment(&field.parent_file(), field.path())
}

/// Top-level definitions the text prints, in order of discovery.
#[derive(Default)]
struct Needed {
    order: Vec<Definition>,
    seen: BTreeSet<String>,
    imports: BTreeSet<String>,
}

enum Definition {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

impl Needed {
    fn add_message(&mut self, message: &MessageDescriptor, package: &str) -> anyhow::Result<()> {
        let mut top = message.clone();
        while let Some(parent) = top.parent_message() {
            top = parent;
        }
        self.add(Definition::Message(top), package)
    }

    fn add_enum(&mut self, descriptor: &EnumDescriptor, package: &str) -> anyhow::Result<()> {
        match descriptor.parent_message() {
            Some(parent) => self.add_message(&parent, package),
            None => self.add(Definition::Enum(descriptor.clone()), package),
        }
    }

    fn add(&mut self, definition: Definition, package: &str) -> anyhow::Result<()> {
        let (full_name, file, own_package) = match &definition {
            Definition::Message(m) => (
                m.full_name().to_owned(),
                m.parent_file(),
                m.package_name().to_owned(),
            ),
            Definition::Enum(e) => (
                e.full_name().to_owned(),
                e.parent_file(),
                e.package_name().to_owned(),
            ),
        };
        if own_package == WELL_KNOWN {
            self.imports.insert(file.name().to_owned());
            return Ok(());
        }
        anyhow::ensure!(
            own_package == package,
            "{full_name} is outside package {package}: a self-contained text cannot hold it"
        );
        if self.seen.insert(full_name) {
            if let Definition::Message(m) = &definition {
                self.add_references(m, package)?;
            }
            self.order.push(definition);
        }
        Ok(())
    }

    fn add_references(&mut self, message: &MessageDescriptor, package: &str) -> anyhow::Result<()> {
        for field in message.fields() {
            match field.kind() {
                Kind::Message(m) if m.is_map_entry() => {
                    for entry in [m.map_entry_key_field(), m.map_entry_value_field()] {
                        match entry.kind() {
                            Kind::Message(v) => self.add_message(&v, package)?,
                            Kind::Enum(v) => self.add_enum(&v, package)?,
                            _ => {}
                        }
                    }
                }
                Kind::Message(m) => self.add_message(&m, package)?,
                Kind::Enum(e) => self.add_enum(&e, package)?,
                _ => {}
            }
        }
        for child in message.child_messages() {
            if !child.is_map_entry() {
                self.add_references(&child, package)?;
            }
        }
        Ok(())
    }
}

/// The self-contained proto text of `message`.
pub fn self_contained(message: &MessageDescriptor) -> anyhow::Result<String> {
    let package = message.package_name();
    let mut needed = Needed::default();
    needed.add_message(message, package)?;
    // The root message first: the schema parser takes the one message no
    // other refers to, and a reader looks for it at the top.
    needed.order.rotate_right(1);
    let mut out = String::from("syntax = \"proto3\";\n\n");
    let _ = writeln!(out, "package {package};\n");
    for import in &needed.imports {
        let _ = writeln!(out, "import \"{import}\";");
    }
    if !needed.imports.is_empty() {
        out.push('\n');
    }
    for (i, definition) in needed.order.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match definition {
            Definition::Message(m) => print_message(&mut out, m, package, 0),
            Definition::Enum(e) => print_enum(&mut out, e, 0),
        }
    }
    Ok(out)
}

fn print_comment(out: &mut String, comment: Option<String>, indent: usize) {
    for line in comment.iter().flat_map(|c| c.lines()) {
        let pad = "  ".repeat(indent);
        if line.is_empty() {
            let _ = writeln!(out, "{pad}//");
        } else {
            let _ = writeln!(out, "{pad}// {line}");
        }
    }
}

fn print_message(out: &mut String, message: &MessageDescriptor, package: &str, indent: usize) {
    let pad = "  ".repeat(indent);
    print_comment(out, message_comment(message), indent);
    let _ = writeln!(out, "{pad}message {} {{", message.name());
    for child in message.child_enums() {
        print_enum(out, &child, indent + 1);
    }
    for child in message.child_messages().filter(|c| !c.is_map_entry()) {
        print_message(out, &child, package, indent + 1);
    }
    let mut printed_oneofs = BTreeSet::new();
    for field in message.fields() {
        match real_oneof(&field) {
            Some(oneof) => {
                if printed_oneofs.insert(oneof.name().to_owned()) {
                    print_oneof(out, &oneof, package, indent + 1);
                }
            }
            None => print_field(out, &field, package, indent + 1),
        }
    }
    let _ = writeln!(out, "{pad}}}");
}

fn real_oneof(field: &FieldDescriptor) -> Option<OneofDescriptor> {
    field.containing_oneof().filter(|o| !o.is_synthetic())
}

fn print_oneof(out: &mut String, oneof: &OneofDescriptor, package: &str, indent: usize) {
    let pad = "  ".repeat(indent);
    print_comment(
        out,
        leading_comment(&oneof.parent_file(), oneof.path()),
        indent,
    );
    let _ = writeln!(out, "{pad}oneof {} {{", oneof.name());
    for field in oneof.fields() {
        print_field(out, &field, package, indent + 1);
    }
    let _ = writeln!(out, "{pad}}}");
}

fn print_field(out: &mut String, field: &FieldDescriptor, package: &str, indent: usize) {
    let pad = "  ".repeat(indent);
    print_comment(out, field_comment(field), indent);
    let label = if field.is_map() {
        ""
    } else if field.is_list() {
        "repeated "
    } else if field.field_descriptor_proto().proto3_optional == Some(true) {
        "optional "
    } else {
        ""
    };
    let kind = match field.kind() {
        Kind::Message(m) if m.is_map_entry() => format!(
            "map<{}, {}>",
            type_name(&m.map_entry_key_field().kind(), package),
            type_name(&m.map_entry_value_field().kind(), package)
        ),
        other => type_name(&other, package),
    };
    let _ = writeln!(
        out,
        "{pad}{label}{kind} {} = {};",
        field.name(),
        field.number()
    );
}

/// A type as written in a field of `package`: relative inside it, full
/// otherwise.
fn type_name(kind: &Kind, package: &str) -> String {
    let full = match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        Kind::Double => return "double".into(),
        Kind::Float => return "float".into(),
        Kind::Int32 => return "int32".into(),
        Kind::Int64 => return "int64".into(),
        Kind::Uint32 => return "uint32".into(),
        Kind::Uint64 => return "uint64".into(),
        Kind::Sint32 => return "sint32".into(),
        Kind::Sint64 => return "sint64".into(),
        Kind::Fixed32 => return "fixed32".into(),
        Kind::Fixed64 => return "fixed64".into(),
        Kind::Sfixed32 => return "sfixed32".into(),
        Kind::Sfixed64 => return "sfixed64".into(),
        Kind::Bool => return "bool".into(),
        Kind::String => return "string".into(),
        Kind::Bytes => return "bytes".into(),
    };
    full.strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .map_or(full.clone(), str::to_owned)
}

fn print_enum(out: &mut String, descriptor: &EnumDescriptor, indent: usize) {
    let pad = "  ".repeat(indent);
    print_comment(
        out,
        leading_comment(&descriptor.parent_file(), descriptor.path()),
        indent,
    );
    let _ = writeln!(out, "{pad}enum {} {{", descriptor.name());
    for value in descriptor.values() {
        print_comment(
            out,
            leading_comment(&value.parent_file(), value.path()),
            indent + 1,
        );
        let _ = writeln!(out, "{pad}  {} = {};", value.name(), value.number());
    }
    let _ = writeln!(out, "{pad}}}");
}
