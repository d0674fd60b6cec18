//! What the reference describes, read from a `FileDescriptorSet`: every
//! `partnerhub.*` package with its services, messages and enums, each with
//! its leading comment (or `None`).

use std::collections::BTreeMap;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

use super::comments::{Comments, path};

/// The prefix of the packages the reference covers.
pub const PACKAGE_PREFIX: &str = "partnerhub.";

/// One protobuf package (`partnerhub.identity.v1`).
#[derive(Debug, Default)]
pub struct Package {
    /// Full package name.
    pub name: String,
    /// Services, in file then declaration order.
    pub services: Vec<Service>,
    /// Messages of the API (requests, responses, resources).
    pub messages: Vec<Message>,
    /// Messages published as events (declared in an `events.proto`).
    pub events: Vec<Message>,
    /// What the `events.proto` files say about the events as a whole.
    pub events_intro: Vec<String>,
    /// Messages sent as commands (declared in a `commands.proto`).
    pub commands: Vec<Message>,
    /// What the `commands.proto` files say about the commands as a whole.
    pub commands_intro: Vec<String>,
    /// Enums, top-level and nested.
    pub enums: Vec<Enum>,
}

/// A gRPC service.
#[derive(Debug)]
pub struct Service {
    /// `package.Service`.
    pub full_name: String,
    /// Leading comment.
    pub comment: Option<String>,
    /// Its RPCs.
    pub methods: Vec<Method>,
}

/// An RPC.
#[derive(Debug)]
pub struct Method {
    /// Method name.
    pub name: String,
    /// Full name of the request message, without the leading dot.
    pub input: String,
    /// Full name of the response message, without the leading dot.
    pub output: String,
    /// Whether the client streams requests.
    pub client_streaming: bool,
    /// Whether the server streams responses.
    pub server_streaming: bool,
    /// Leading comment.
    pub comment: Option<String>,
}

/// A message (nested ones are listed on their own, `Outer.Inner`).
#[derive(Debug)]
pub struct Message {
    /// `package.Message` or `package.Outer.Inner`.
    pub full_name: String,
    /// Leading comment.
    pub comment: Option<String>,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// Real (not synthetic) oneofs: name and comment.
    pub oneofs: Vec<(String, Option<String>)>,
}

/// A field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Field number.
    pub number: i32,
    /// Its type.
    pub kind: FieldType,
    /// How many values it holds.
    pub label: FieldLabel,
    /// Leading comment.
    pub comment: Option<String>,
}

/// The type of a field.
#[derive(Debug, Clone)]
pub enum FieldType {
    /// A scalar (`string`, `int32`, …).
    Scalar(&'static str),
    /// A message or enum, by full name without the leading dot.
    Named(String),
    /// `map<key, value>`.
    Map(Box<FieldType>, Box<FieldType>),
}

/// How many values a field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldLabel {
    /// One value, the default when unset.
    Singular,
    /// proto3 `optional`: presence is tracked.
    Optional,
    /// A list.
    Repeated,
    /// A map.
    Map,
    /// A member of this oneof.
    OneOf(String),
}

/// An enum.
#[derive(Debug)]
pub struct Enum {
    /// `package.Enum` or `package.Message.Enum`.
    pub full_name: String,
    /// Leading comment.
    pub comment: Option<String>,
    /// Values: name, number, comment.
    pub values: Vec<(String, i32, Option<String>)>,
}

/// Reads every `partnerhub.*` package of `set`, sorted by name; within a
/// package, files are taken in name order and elements in declaration order.
pub fn packages(set: &FileDescriptorSet) -> Vec<Package> {
    let mut files: Vec<&FileDescriptorProto> = set
        .file
        .iter()
        .filter(|f| f.package().starts_with(PACKAGE_PREFIX))
        .collect();
    files.sort_by(|a, b| a.name().cmp(b.name()));
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    for file in files {
        let package = packages
            .entry(file.package().to_owned())
            .or_insert_with(|| Package {
                name: file.package().to_owned(),
                ..Package::default()
            });
        add_file(package, file);
    }
    packages.into_values().collect()
}

fn add_file(package: &mut Package, file: &FileDescriptorProto) {
    let comments = Comments::of(file);
    let prefix = file.package().to_owned();
    for (i, service) in file.service.iter().enumerate() {
        let at = vec![path::SERVICE, index(i)];
        package.services.push(Service {
            full_name: format!("{prefix}.{}", service.name()),
            comment: comments.leading(&at),
            methods: service
                .method
                .iter()
                .enumerate()
                .map(|(j, m)| Method {
                    name: m.name().to_owned(),
                    input: m.input_type().trim_start_matches('.').to_owned(),
                    output: m.output_type().trim_start_matches('.').to_owned(),
                    client_streaming: m.client_streaming(),
                    server_streaming: m.server_streaming(),
                    comment: comments.leading(&[path::SERVICE, index(i), path::METHOD, index(j)]),
                })
                .collect(),
        });
    }
    let mut messages = Vec::new();
    for (i, message) in file.message_type.iter().enumerate() {
        let at = vec![path::MESSAGE, index(i)];
        add_message(
            &mut messages,
            &mut package.enums,
            &comments,
            &prefix,
            message,
            at,
        );
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        package
            .enums
            .push(read_enum(&comments, &prefix, e, vec![path::ENUM, index(i)]));
    }
    let (target, intro) = match file.name().rsplit('/').next() {
        Some("events.proto") => (&mut package.events, Some(&mut package.events_intro)),
        Some("commands.proto") => (&mut package.commands, Some(&mut package.commands_intro)),
        _ => (&mut package.messages, None),
    };
    target.extend(messages);
    if let Some(intro) = intro {
        intro.extend(comments.intro());
    }
}

fn add_message(
    messages: &mut Vec<Message>,
    enums: &mut Vec<Enum>,
    comments: &Comments,
    scope: &str,
    message: &DescriptorProto,
    at: Vec<i32>,
) {
    if message.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let full_name = format!("{scope}.{}", message.name());
    let fields = message
        .field
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let mut field_at = at.clone();
            field_at.extend([path::FIELD, index(i)]);
            read_field(message, field, comments.leading(&field_at))
        })
        .collect();
    let oneofs = message
        .oneof_decl
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_synthetic(message, *i))
        .map(|(i, oneof)| {
            let mut oneof_at = at.clone();
            oneof_at.extend([path::ONEOF, index(i)]);
            (oneof.name().to_owned(), comments.leading(&oneof_at))
        })
        .collect();
    messages.push(Message {
        full_name: full_name.clone(),
        comment: comments.leading(&at),
        fields,
        oneofs,
    });
    for (i, nested) in message.nested_type.iter().enumerate() {
        let mut nested_at = at.clone();
        nested_at.extend([path::NESTED_MESSAGE, index(i)]);
        add_message(messages, enums, comments, &full_name, nested, nested_at);
    }
    for (i, e) in message.enum_type.iter().enumerate() {
        let mut enum_at = at.clone();
        enum_at.extend([path::NESTED_ENUM, index(i)]);
        enums.push(read_enum(comments, &full_name, e, enum_at));
    }
}

fn read_field(
    message: &DescriptorProto,
    field: &FieldDescriptorProto,
    comment: Option<String>,
) -> Field {
    let map_entry = map_entry(message, field);
    let label = if let Some(entry) = map_entry {
        let key = entry.field.iter().find(|f| f.number() == 1);
        let value = entry.field.iter().find(|f| f.number() == 2);
        return Field {
            name: field.name().to_owned(),
            number: field.number(),
            kind: FieldType::Map(
                Box::new(key.map_or(FieldType::Scalar("?"), field_type)),
                Box::new(value.map_or(FieldType::Scalar("?"), field_type)),
            ),
            label: FieldLabel::Map,
            comment,
        };
    } else if field.label() == Label::Repeated {
        FieldLabel::Repeated
    } else if field.proto3_optional() {
        FieldLabel::Optional
    } else if let Some(oneof) = field
        .oneof_index
        .and_then(|i| message.oneof_decl.get(usize::try_from(i).ok()?))
    {
        FieldLabel::OneOf(oneof.name().to_owned())
    } else {
        FieldLabel::Singular
    };
    Field {
        name: field.name().to_owned(),
        number: field.number(),
        kind: field_type(field),
        label,
        comment,
    }
}

/// The nested `…Entry` message protoc generates for a map field.
fn map_entry<'a>(
    message: &'a DescriptorProto,
    field: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    if field.label() != Label::Repeated || field.r#type() != Type::Message {
        return None;
    }
    let entry_name = field.type_name().rsplit('.').next()?;
    message
        .nested_type
        .iter()
        .find(|n| n.name() == entry_name && n.options.as_ref().is_some_and(|o| o.map_entry()))
}

/// A oneof that protoc made up for a proto3 `optional` field.
fn is_synthetic(message: &DescriptorProto, oneof: usize) -> bool {
    message.field.iter().any(|f| {
        f.proto3_optional() && f.oneof_index.and_then(|i| usize::try_from(i).ok()) == Some(oneof)
    })
}

fn field_type(field: &FieldDescriptorProto) -> FieldType {
    FieldType::Scalar(match field.r#type() {
        Type::Message | Type::Enum | Type::Group => {
            return FieldType::Named(field.type_name().trim_start_matches('.').to_owned());
        }
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
    })
}

fn read_enum(comments: &Comments, scope: &str, e: &EnumDescriptorProto, at: Vec<i32>) -> Enum {
    let values = e
        .value
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut value_at = at.clone();
            value_at.extend([path::ENUM_VALUE, index(i)]);
            (v.name().to_owned(), v.number(), comments.leading(&value_at))
        })
        .collect();
    Enum {
        full_name: format!("{scope}.{}", e.name()),
        comment: comments.leading(&at),
        values,
    }
}

/// A position in a descriptor list as a source-path element (descriptor lists
/// are far shorter than `i32::MAX`).
fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}
