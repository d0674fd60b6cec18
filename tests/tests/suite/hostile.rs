//! Every RPC of every service, called with hostile values in each of its
//! fields (empty and 1 MiB strings, control characters, SQL and template
//! metacharacters, malformed resource names and page tokens, invalid enums,
//! out-of-range numbers) by a signed-in Global admin: nothing answers
//! INTERNAL or UNKNOWN, and nothing panics.

use std::collections::HashMap;

use bytes::{Buf, BufMut};
use partnerhub_testkit::{Suite, clients};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

use crate::common::with_token;

/// Sends bytes as they are and ignores the answer's body.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        let n = src.remaining();
        src.advance(n);
        Ok(Some(()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string_field(number: i32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(number.unsigned_abs()) << 3) | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

fn varint_field(number: i32, value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(number.unsigned_abs()) << 3, &mut out);
    varint(value as u64, &mut out);
    out
}

fn hostile_strings() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![b'x'; 1024 * 1024],
        "\u{0}\u{7}\u{1b}[31mctrl\r\n".into(),
        "'; DROP TABLE users; --".into(),
        "{{ 7*7 }} {% raw %} ${jndi:x} %s%n".into(),
        "accounts/../../etc/passwd".into(),
        "accounts/00000000-0000-0000-0000-000000000000/x/y/z/checks/1".into(),
        "users/me/notifications/not-a-uuid".into(),
        "💥".repeat(300).into_bytes(),
        vec![0xff, 0xfe, 0x00, 0xc3],
    ]
}

/// Each message's descriptor by full name (`.partnerhub.x.v1.Name`).
fn messages(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    let mut out = HashMap::new();
    fn walk(prefix: &str, list: &[DescriptorProto], out: &mut HashMap<String, DescriptorProto>) {
        for m in list {
            let name = format!("{prefix}.{}", m.name());
            walk(&name, &m.nested_type, out);
            out.insert(name, m.clone());
        }
    }
    for file in &set.file {
        walk(
            &format!(".{}", file.package()),
            &file.message_type,
            &mut out,
        );
    }
    out
}

/// The hostile bodies for a message: each scalar field in turn.
fn bodies(message: &DescriptorProto) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("(empty)".to_owned(), Vec::new())];
    for field in &message.field {
        let name = field.name().to_owned();
        let number = field.number();
        match field.r#type() {
            Type::String | Type::Bytes => {
                for (i, value) in hostile_strings().into_iter().enumerate() {
                    out.push((format!("{name}#{i}"), string_field(number, &value)));
                }
            }
            Type::Enum => {
                out.push((format!("{name}=99"), varint_field(number, 99)));
                out.push((format!("{name}=-1"), varint_field(number, -1)));
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => {
                for v in [-1, i64::from(i32::MAX), i64::from(i32::MIN), i64::MAX] {
                    out.push((format!("{name}={v}"), varint_field(number, v)));
                }
            }
            Type::Bool => out.push((format!("{name}=true"), varint_field(number, 1))),
            Type::Message if field.label() != Label::Repeated => {
                // An empty and a garbage sub-message.
                out.push((format!("{name}={{}}"), string_field(number, &[])));
                out.push((
                    format!("{name}=garbage"),
                    string_field(number, &[0xff, 0xff, 0xff]),
                ));
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rpc_answers_hostile_input_with_internal_or_unknown() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let admin = clients::enrolled(
        &suite,
        "Contoso",
        partnerhub_proto::profile::v1::ProgramKind::Partner,
    )
    .await?;
    let set = FileDescriptorSet::decode(partnerhub_proto::FILE_DESCRIPTOR_SET)?;
    let messages = messages(&set);
    let mut calls = 0;
    let mut bad = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("partnerhub."))
    {
        for service in &file.service {
            let package = file.package().split('.').nth(1).unwrap_or_default();
            let Some((_, addr)) = suite.addresses().into_iter().find(|(n, _)| *n == package) else {
                continue;
            };
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                let Some(input) = messages.get(method.input_type()) else {
                    anyhow::bail!("no descriptor for {}", method.input_type());
                };
                let channel = Suite::channel(addr)?;
                for (what, body) in bodies(input) {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await?;
                    let outcome = grpc
                        .unary(
                            with_token(&admin.token, body)?,
                            PathAndQuery::try_from(path.as_str())?,
                            RawCodec,
                        )
                        .await;
                    calls += 1;
                    if let Err(status) = outcome
                        && matches!(status.code(), Code::Internal | Code::Unknown)
                    {
                        bad.push(format!(
                            "{path} {what}: {:?} {}",
                            status.code(),
                            status.message()
                        ));
                    }
                }
            }
        }
    }
    assert!(calls > 1000, "only {calls} calls");
    assert!(
        bad.is_empty(),
        "{} of {calls} calls failed badly:\n{}",
        bad.len(),
        bad.join("\n")
    );
    suite.stop().await
}
