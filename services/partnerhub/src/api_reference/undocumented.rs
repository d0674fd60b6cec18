//! Every service, RPC, message, field, oneof, enum and enum value of the
//! `partnerhub.*` packages that has no leading comment.

use super::model::{Enum, Message, Package};

/// The elements without a non-empty leading comment, as
/// `kind full.name` lines, in page order.
pub fn undocumented(packages: &[Package]) -> Vec<String> {
    let mut missing = Vec::new();
    let mut check = |kind: &str, name: &str, comment: &Option<String>| {
        if comment.is_none() {
            missing.push(format!("{kind} {name}"));
        }
    };
    for package in packages {
        for service in &package.services {
            check("service", &service.full_name, &service.comment);
            for method in &service.methods {
                let name = format!("{}.{}", service.full_name, method.name);
                check("rpc", &name, &method.comment);
            }
        }
        let messages: Vec<&Message> = package
            .messages
            .iter()
            .chain(&package.events)
            .chain(&package.commands)
            .collect();
        for message in messages {
            check("message", &message.full_name, &message.comment);
            for field in &message.fields {
                let name = format!("{}.{}", message.full_name, field.name);
                check("field", &name, &field.comment);
            }
            for (oneof, comment) in &message.oneofs {
                check("oneof", &format!("{}.{oneof}", message.full_name), comment);
            }
        }
        for e in &package.enums {
            check_enum(e, &mut check);
        }
    }
    missing
}

fn check_enum(e: &Enum, check: &mut impl FnMut(&str, &str, &Option<String>)) {
    check("enum", &e.full_name, &e.comment);
    for (value, _, comment) in &e.values {
        check("enum value", &format!("{}.{value}", e.full_name), comment);
    }
}
