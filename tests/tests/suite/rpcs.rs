//! Every RPC of every partnerhub service, read from the descriptor set:
//! its path, access rule, request message and the comments of its fields;
//! protobuf wire encoding by hand; and a call that sends raw bytes, so the
//! suite tests can build any request without the generated types.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Buf, BufMut};
use partnerhub_platform::auth::{AccessRules, Rule};
use partnerhub_testkit::Suite;
use prost::Message;
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use crate::common::with_token;

/// Sends bytes as they are and ignores the answer's body.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// The decoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

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

/// A length-delimited field (string, bytes or sub-message).
pub fn string_field(number: i32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(number.unsigned_abs()) << 3) | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

/// A varint field (integers, enums, bools).
pub fn varint_field(number: i32, value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(number.unsigned_abs()) << 3, &mut out);
    varint(value as u64, &mut out);
    out
}

/// One RPC of a partnerhub service.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// gRPC path, `/partnerhub.profile.v1.LocationService/GetLocation`.
    pub path: String,
    /// Service crate it belongs to (`profile`), the second package segment.
    pub service: String,
    /// Full name of the request message (`.partnerhub.profile.v1.GetLocationRequest`).
    pub input: String,
    /// Full name of the response message.
    pub output: String,
    /// Its declared access rule (`None`: it declares none).
    pub rule: Option<Rule>,
}

impl Rpc {
    /// Whether anyone may call it without a token.
    pub fn is_public(&self) -> bool {
        self.rule == Some(Rule::Public)
    }

    /// Whether only service accounts with a `platform.` permission may call it.
    pub fn is_platform(&self) -> bool {
        matches!(&self.rule, Some(Rule::Permission(p)) if p.starts_with("platform."))
    }

    /// The address of the service that serves it.
    pub fn address(&self, suite: &Suite) -> anyhow::Result<SocketAddr> {
        suite
            .addresses()
            .into_iter()
            .find(|(name, _)| *name == self.service)
            .map(|(_, addr)| addr)
            .ok_or_else(|| anyhow::anyhow!("no service serves {}", self.path))
    }

    /// A channel to the service that serves it.
    pub fn channel(&self, suite: &Suite) -> anyhow::Result<Channel> {
        Suite::channel(self.address(suite)?)
    }
}

/// The compiled-in descriptor set, indexed.
#[derive(Debug)]
pub struct Descriptors {
    set: FileDescriptorSet,
    messages: HashMap<String, DescriptorProto>,
    comments: HashMap<(String, String), String>,
}

impl Descriptors {
    /// Reads partnerhub's descriptor set (with its source comments).
    pub fn builtin() -> anyhow::Result<Self> {
        let set = FileDescriptorSet::decode(partnerhub_proto::FILE_DESCRIPTOR_SET)?;
        let mut messages = HashMap::new();
        let mut comments = HashMap::new();
        for file in &set.file {
            let mut file_comments = HashMap::new();
            for location in file.source_code_info.iter().flat_map(|s| &s.location) {
                file_comments.insert(
                    location.path.clone(),
                    location.leading_comments().to_owned(),
                );
            }
            let prefix = format!(".{}", file.package());
            index(
                &prefix,
                &file.message_type,
                &[4],
                &file_comments,
                &mut messages,
                &mut comments,
            );
        }
        Ok(Self {
            set,
            messages,
            comments,
        })
    }

    /// The message called `full_name` (`.partnerhub.x.v1.Name`).
    pub fn message(&self, full_name: &str) -> anyhow::Result<&DescriptorProto> {
        self.messages
            .get(full_name)
            .ok_or_else(|| anyhow::anyhow!("no descriptor for {full_name}"))
    }

    /// Whether a message called `full_name` exists.
    pub fn has_message(&self, full_name: &str) -> bool {
        self.messages.contains_key(full_name)
    }

    /// The leading comment of a field (empty without one).
    pub fn comment(&self, message: &str, field: &FieldDescriptorProto) -> &str {
        self.comments
            .get(&(message.to_owned(), field.name().to_owned()))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Every RPC of every `partnerhub.*` service, in descriptor order.
    pub fn rpcs(&self) -> Vec<Rpc> {
        let rules = AccessRules::builtin();
        let mut out = Vec::new();
        for file in self
            .set
            .file
            .iter()
            .filter(|f| f.package().starts_with("partnerhub."))
        {
            let service = file.package().split('.').nth(1).unwrap_or_default();
            for s in &file.service {
                for method in &s.method {
                    let path = format!("/{}.{}/{}", file.package(), s.name(), method.name());
                    out.push(Rpc {
                        rule: rules.rule(&path).cloned(),
                        path,
                        service: service.to_owned(),
                        input: method.input_type().to_owned(),
                        output: method.output_type().to_owned(),
                    });
                }
            }
        }
        out
    }
}

/// Indexes `list` (at source path `at`) and its nested messages.
fn index(
    prefix: &str,
    list: &[DescriptorProto],
    at: &[i32],
    file_comments: &HashMap<Vec<i32>, String>,
    messages: &mut HashMap<String, DescriptorProto>,
    comments: &mut HashMap<(String, String), String>,
) {
    for (i, message) in list.iter().enumerate() {
        let name = format!("{prefix}.{}", message.name());
        let mut path = at.to_vec();
        path.push(i32::try_from(i).unwrap_or(i32::MAX));
        for (j, field) in message.field.iter().enumerate() {
            let mut field_path = path.clone();
            field_path.extend([2, i32::try_from(j).unwrap_or(i32::MAX)]);
            if let Some(comment) = file_comments.get(&field_path) {
                comments.insert((name.clone(), field.name().to_owned()), comment.clone());
            }
        }
        let mut nested = path.clone();
        nested.push(3);
        index(
            &name,
            &message.nested_type,
            &nested,
            file_comments,
            messages,
            comments,
        );
        messages.insert(name, message.clone());
    }
}

/// Calls `path` over `channel` with `body` as the request message, with
/// `authorization: Bearer <token>` when a token is given.
pub async fn call(
    channel: &Channel,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await?;
    let request = match token {
        Some(token) => with_token(token, body)?,
        None => tonic::Request::new(body),
    };
    Ok(grpc
        .unary(request, PathAndQuery::try_from(path)?, RawCodec)
        .await
        .map(drop))
}
