//! Response messages as JSON, through their descriptors (prost types do
//! not implement serde): the proto3 JSON mapping with the proto field
//! names, enum names, RFC 3339 times, and every field present.

use std::sync::OnceLock;

use anyhow::Context;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

fn pool() -> anyhow::Result<&'static DescriptorPool> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(partnerhub_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("the built-in descriptor set does not decode: {e}"))
}

/// `message` as a JSON value.
pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> anyhow::Result<Value> {
    let name = M::full_name();
    let descriptor = pool()?
        .get_message_by_name(&name)
        .with_context(|| format!("no descriptor for {name}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .with_context(|| format!("cannot re-read a {name}"))?;
    let options = SerializeOptions::new()
        .skip_default_fields(false)
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .with_context(|| format!("cannot write a {name} as JSON"))
}

#[cfg(test)]
mod tests {
    use partnerhub_proto::identity::v1::{Member, MemberState, RoleAssignment, User};

    use super::*;

    #[test]
    fn a_member_has_proto_field_names_enum_names_and_defaults() -> anyhow::Result<()> {
        let member = Member {
            name: "accounts/a/members/u".into(),
            user: Some(User {
                email: "ada@contoso.com".into(),
                ..User::default()
            }),
            roles: vec![RoleAssignment {
                role: "global_admin".into(),
                locations: vec![],
            }],
            state: MemberState::Active.into(),
            create_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Member::default()
        };
        let json = to_json(&member)?;
        assert_eq!(json["user"]["email"], "ada@contoso.com");
        assert_eq!(json["roles"][0]["role"], "global_admin");
        assert_eq!(json["state"], "MEMBER_STATE_ACTIVE");
        assert_eq!(json["create_time"], "1970-01-01T00:00:00Z");
        assert_eq!(json["password_change_required"], false);
        assert_eq!(json["etag"], "");
        Ok(())
    }
}
