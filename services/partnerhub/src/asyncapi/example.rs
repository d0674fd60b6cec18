//! An example of each message, built from its descriptor and rendered in
//! the proto3 JSON mapping by prost-reflect: a string field takes the first
//! `code span` of its comment (`accounts/{account}`, `global_admin`), an
//! enum its first non-zero value, a number 1, a time a fixed instant.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, SerializeOptions, Value,
};

use super::proto_text::field_comment;

/// The instant every example time shows.
const EXAMPLE_SECONDS: i64 = 1_768_469_400; // 2026-01-15T09:30:00Z
/// The id that stands in for every `{placeholder}` and event id.
pub const EXAMPLE_ID: &str = "019bc12e-7a40-7c3e-9d1a-5b2f0c6e8a41";
/// Nested messages deeper than this are left empty (recursive types).
const MAX_DEPTH: usize = 4;

/// The example payload of `message` as proto3 JSON with the proto field
/// names.
pub fn payload(message: &MessageDescriptor) -> anyhow::Result<serde_json::Value> {
    let dynamic = build(message, 0);
    let options = SerializeOptions::new().use_proto_field_name(true);
    Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &options)?)
}

fn build(message: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut dynamic = DynamicMessage::new(message.clone());
    if message.full_name() == "google.protobuf.Timestamp" {
        dynamic.set_field_by_name("seconds", Value::I64(EXAMPLE_SECONDS));
        return dynamic;
    }
    if depth >= MAX_DEPTH {
        return dynamic;
    }
    for field in message.fields() {
        // One member of each oneof.
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
            && oneof.fields().next().map(|f| f.number()) != Some(field.number())
        {
            continue;
        }
        dynamic.set_field(&field, field_value(&field, depth));
    }
    dynamic
}

fn field_value(field: &FieldDescriptor, depth: usize) -> Value {
    match field.kind() {
        Kind::Message(entry) if entry.is_map_entry() => {
            let key = match scalar(&entry.map_entry_key_field(), depth) {
                Value::String(s) => MapKey::String(s),
                Value::I32(n) => MapKey::I32(n),
                Value::I64(n) => MapKey::I64(n),
                Value::U32(n) => MapKey::U32(n),
                Value::U64(n) => MapKey::U64(n),
                Value::Bool(b) => MapKey::Bool(b),
                _ => MapKey::String("key".into()),
            };
            let value = scalar(&entry.map_entry_value_field(), depth);
            Value::Map([(key, value)].into_iter().collect())
        }
        _ if field.is_list() => Value::List(vec![scalar(field, depth)]),
        _ => scalar(field, depth),
    }
}

fn scalar(field: &FieldDescriptor, depth: usize) -> Value {
    match field.kind() {
        Kind::Message(m) => Value::Message(build(&m, depth + 1)),
        Kind::Enum(e) => Value::EnumNumber(
            e.values()
                .map(|v| v.number())
                .find(|n| *n != 0)
                .unwrap_or(0),
        ),
        Kind::String => Value::String(text_for(field)),
        Kind::Bytes => Value::Bytes(b"example".as_slice().into()),
        Kind::Bool => Value::Bool(true),
        Kind::Double => Value::F64(1.5),
        Kind::Float => Value::F32(1.5),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(1),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(1),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(1),
    }
}

/// A string for `field`: a well-known shape by name, else the first code
/// span of its comment with `{placeholders}` filled, else its name.
fn text_for(field: &FieldDescriptor) -> String {
    match field.name() {
        "email" | "to" | "alternate_email" => return "ada@contoso.com".into(),
        "locale" => return "en-US".into(),
        "currency" => return "EUR".into(),
        _ => {}
    }
    field_comment(field)
        .as_deref()
        .and_then(first_code_span)
        .map(|span| fill_placeholders(&span))
        .unwrap_or_else(|| field.name().to_owned())
}

fn first_code_span(comment: &str) -> Option<String> {
    let start = comment.find('`')? + 1;
    let len = comment[start..].find('`')?;
    Some(comment[start..start + len].to_owned())
}

fn fill_placeholders(span: &str) -> String {
    let mut out = String::new();
    let mut rest = span;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(EXAMPLE_ID);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}
