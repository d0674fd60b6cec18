//! Every RPC of every service, called with hostile values in each of its
//! fields (empty and 1 MiB strings, control characters, SQL and template
//! metacharacters, malformed resource names and page tokens, invalid enums,
//! out-of-range numbers) by a signed-in Global admin: nothing answers
//! INTERNAL or UNKNOWN, nothing panics, every INVALID_ARGUMENT names at least
//! one field in a BadRequest, and every other refusal is a precise code.

use partnerhub_testkit::errors::violated_fields;
use partnerhub_testkit::{Suite, clients};
use prost_types::DescriptorProto;
use prost_types::field_descriptor_proto::{Label, Type};
use tonic::Code;

use crate::rpcs::{self, Descriptors, string_field, varint_field};

/// The refusals a precise answer may carry besides INVALID_ARGUMENT.
const PRECISE: &[Code] = &[
    Code::NotFound,
    Code::FailedPrecondition,
    Code::AlreadyExists,
    Code::Aborted,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::Unauthenticated,
    Code::OutOfRange,
];

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

/// What is wrong with an answer, if anything: INTERNAL or UNKNOWN, an
/// INVALID_ARGUMENT without a field violation, or a vague refusal.
fn fault(status: &tonic::Status) -> Option<&'static str> {
    match status.code() {
        Code::InvalidArgument if violated_fields(status).is_empty() => {
            Some("INVALID_ARGUMENT without a BadRequest field violation")
        }
        Code::InvalidArgument => None,
        code if PRECISE.contains(&code) => None,
        _ => Some("not a precise refusal"),
    }
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
    let descriptors = Descriptors::builtin()?;
    let mut calls = 0;
    let mut bad = Vec::new();
    let mut answers = std::collections::BTreeMap::new();
    for rpc in descriptors.rpcs() {
        let input = descriptors.message(&rpc.input)?;
        let channel = rpc.channel(&suite)?;
        for (what, body) in bodies(input) {
            let outcome = rpcs::call(&channel, &rpc.path, Some(&admin.token), body).await?;
            calls += 1;
            let code = outcome.as_ref().err().map_or(Code::Ok, tonic::Status::code);
            *answers.entry(format!("{code:?}")).or_insert(0) += 1;
            if let Err(status) = outcome
                && let Some(fault) = fault(&status)
            {
                bad.push(format!(
                    "{} {what}: {:?} {} ({fault})",
                    rpc.path,
                    status.code(),
                    status.message()
                ));
            }
        }
    }
    println!("hostile input: {calls} calls, answers {answers:?}");
    assert!(calls > 1000, "only {calls} calls");
    assert!(
        bad.is_empty(),
        "{} of {calls} calls failed badly:\n{}",
        bad.len(),
        bad.join("\n")
    );
    suite.stop().await
}
