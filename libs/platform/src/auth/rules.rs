//! The access rule of every RPC, read from the `partnerhub.auth.v1.access`
//! method option in the encoded descriptor set. A method without a rule, or a
//! path that is not in the table, is denied.

use std::collections::BTreeMap;

use partnerhub_proto::partnerhub::auth::v1::{AccessRule, access_rule};

/// Who may call an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// No token needed.
    Public,
    /// Any valid token.
    Authenticated,
    /// A valid token whose caller holds this permission.
    Permission(String),
}

/// Paths of the infrastructure services every server adds (health and
/// reflection): public, so probes and `grpcurl list` work without a token.
const INFRASTRUCTURE: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The rule of every method, keyed by gRPC path (`/pkg.Service/Method`).
/// `None` marks a method that declares no rule.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: BTreeMap<String, Option<Rule>>,
}

impl AccessRules {
    /// Reads every method of every `partnerhub.*` service from an encoded
    /// `FileDescriptorSet`.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        let set: descriptor::FileSet = prost::Message::decode(bytes)?;
        let mut rules = BTreeMap::new();
        for file in set
            .file
            .iter()
            .filter(|f| f.package.starts_with("partnerhub."))
        {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package, service.name, method.name);
                    let rule = method
                        .options
                        .as_ref()
                        .and_then(|o| o.access.as_ref())
                        .and_then(Rule::from_proto);
                    rules.insert(path, rule);
                }
            }
        }
        for path in INFRASTRUCTURE {
            rules.insert((*path).to_owned(), Some(Rule::Public));
        }
        Ok(Self { rules })
    }

    /// The rules of partnerhub itself, from the compiled-in descriptor set.
    pub fn builtin() -> Self {
        // The descriptor set is generated at build time from proto/; failing
        // to decode it is a build defect that tests catch.
        Self::from_descriptor_set(partnerhub_proto::FILE_DESCRIPTOR_SET).unwrap_or_default()
    }

    /// The rule of a path; `None` means deny.
    pub fn rule(&self, path: &str) -> Option<&Rule> {
        self.rules.get(path).and_then(Option::as_ref)
    }

    /// Every known method and its rule (or `None` when it has none).
    pub fn methods(&self) -> impl Iterator<Item = (&str, Option<&Rule>)> {
        self.rules.iter().map(|(p, r)| (p.as_str(), r.as_ref()))
    }
}

impl Rule {
    fn from_proto(rule: &AccessRule) -> Option<Self> {
        match rule.rule.as_ref()? {
            access_rule::Rule::Public(true) => Some(Self::Public),
            access_rule::Rule::Authenticated(true) => Some(Self::Authenticated),
            access_rule::Rule::Permission(p) if !p.is_empty() => Some(Self::Permission(p.clone())),
            _ => None,
        }
    }
}

/// Just enough of `google.protobuf.descriptor` to reach method options and the
/// `access` extension (field 51000 of `MethodOptions`); prost skips the rest.
mod descriptor {
    use partnerhub_proto::partnerhub::auth::v1::AccessRule;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileSet {
        #[prost(message, repeated, tag = "1")]
        pub file: Vec<File>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct File {
        #[prost(string, tag = "2")]
        pub package: String,
        #[prost(message, repeated, tag = "6")]
        pub service: Vec<Service>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Service {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, repeated, tag = "2")]
        pub method: Vec<Method>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Method {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "4")]
        pub options: Option<MethodOptions>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MethodOptions {
        #[prost(message, optional, tag = "51000")]
        pub access: Option<AccessRule>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_every_service_declares_an_access_rule() {
        let rules = AccessRules::builtin();
        let partnerhub: Vec<_> = rules
            .methods()
            .filter(|(p, _)| p.starts_with("/partnerhub."))
            .collect();
        assert!(partnerhub.len() >= 8, "descriptor set looks empty");
        let missing: Vec<_> = partnerhub
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| *p)
            .collect();
        assert!(
            missing.is_empty(),
            "RPCs without an access rule: {missing:?}"
        );
        for package in [
            "identity",
            "profile",
            "verification",
            "notification",
            "merge",
        ] {
            let prefix = format!("/partnerhub.{package}.v1.");
            assert!(
                partnerhub.iter().any(|(p, _)| p.starts_with(&prefix)),
                "no RPC found for {package}"
            );
        }
    }

    #[test]
    fn rules_are_read_from_the_method_option() {
        let rules = AccessRules::builtin();
        assert_eq!(
            rules.rule("/partnerhub.identity.v1.AuthService/SignUp"),
            Some(&Rule::Public)
        );
        assert_eq!(
            rules.rule("/partnerhub.profile.v1.LegalProfileService/GetLegalProfile"),
            Some(&Rule::Permission("profile.legal.read".into()))
        );
        assert_eq!(rules.rule("/partnerhub.identity.v1.AuthService/Nope"), None);
    }

    #[test]
    fn a_method_without_a_rule_is_denied() {
        use prost::Message;
        let set = descriptor::FileSet {
            file: vec![descriptor::File {
                package: "partnerhub.test.v1".into(),
                service: vec![descriptor::Service {
                    name: "TestService".into(),
                    method: vec![descriptor::Method {
                        name: "Open".into(),
                        options: None,
                    }],
                }],
            }],
        };
        let rules = AccessRules::from_descriptor_set(&set.encode_to_vec()).unwrap_or_default();
        assert!(
            rules
                .methods()
                .any(|(p, r)| p == "/partnerhub.test.v1.TestService/Open" && r.is_none())
        );
        assert_eq!(rules.rule("/partnerhub.test.v1.TestService/Open"), None);
    }
}
