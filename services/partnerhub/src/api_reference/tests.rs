use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::source_code_info::Location;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet, MessageOptions, MethodDescriptorProto,
    ServiceDescriptorProto, SourceCodeInfo, field_descriptor_proto::Label,
    field_descriptor_proto::Type,
};

use super::{REGENERATE, builtin, render, undocumented};

#[test]
fn the_committed_api_reference_matches_the_protos() -> anyhow::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api-reference.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == builtin()?,
        "docs/api-reference.md is not what the protos say; regenerate: {REGENERATE}"
    );
    Ok(())
}

#[test]
fn every_element_of_every_partnerhub_package_has_a_comment() -> anyhow::Result<()> {
    let missing = undocumented(partnerhub_proto::FILE_DESCRIPTOR_SET)?;
    assert!(
        missing.is_empty(),
        "{} element(s) of proto/partnerhub without a leading comment:\n{}",
        missing.len(),
        missing.join("\n")
    );
    Ok(())
}

#[test]
fn the_embedded_descriptor_set_keeps_the_comments() -> anyhow::Result<()> {
    let page = builtin()?;
    // The comment of options.proto's AccessRule and the rule of an RPC.
    assert!(page.contains("AccessRule says who may call an RPC."));
    assert!(page.contains(
        "##### LegalProfileService.GetLegalProfile\n\n[`GetLegalProfileRequest`](#partnerhub-profile-v1-getlegalprofilerequest) → [`LegalProfile`](#partnerhub-profile-v1-legalprofile)  \nAccess: permission `profile.legal.read`"
    ));
    assert!(page.contains("##### AuthService.SignUp\n"));
    // The introduction of commands.proto, detached from its first message.
    assert!(page.contains("### Commands\n\nCommands to the notification service"));
    Ok(())
}

#[test]
fn every_link_of_the_page_has_its_anchor() -> anyhow::Result<()> {
    let page = builtin()?;
    let anchors: BTreeSet<&str> = page
        .split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let links: BTreeSet<&str> = page
        .split("](#")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    assert!(links.len() > 100, "too few links: {}", links.len());
    let dangling: Vec<_> = links.difference(&anchors).collect();
    assert!(dangling.is_empty(), "links without an anchor: {dangling:?}");
    Ok(())
}

/// A small package: one commented service whose RPC has no comment, one
/// message with a commented map field and an uncommented field, one enum.
fn sample() -> FileDescriptorSet {
    let field =
        |name: &str, number: i32, kind: Type, type_name: &str, label: Label| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(kind.into()),
            type_name: (!type_name.is_empty()).then(|| type_name.into()),
            label: Some(label.into()),
            ..Default::default()
        };
    let comment = |path: Vec<i32>, text: &str| Location {
        path,
        leading_comments: Some(format!(" {text}\n")),
        ..Default::default()
    };
    let entry = DescriptorProto {
        name: Some("LabelsEntry".into()),
        field: vec![
            field("key", 1, Type::String, "", Label::Optional),
            field(
                "value",
                2,
                Type::Enum,
                ".partnerhub.test.v1.Color",
                Label::Optional,
            ),
        ],
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("partnerhub/test/v1/test.proto".into()),
        package: Some("partnerhub.test.v1".into()),
        service: vec![ServiceDescriptorProto {
            name: Some("PaintService".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Paint".into()),
                input_type: Some(".partnerhub.test.v1.Canvas".into()),
                output_type: Some(".partnerhub.test.v1.Canvas".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        message_type: vec![DescriptorProto {
            name: Some("Canvas".into()),
            field: vec![
                field(
                    "labels",
                    1,
                    Type::Message,
                    ".partnerhub.test.v1.Canvas.LabelsEntry",
                    Label::Repeated,
                ),
                field("width_px", 2, Type::Int32, "", Label::Optional),
            ],
            nested_type: vec![entry],
            ..Default::default()
        }],
        enum_type: vec![EnumDescriptorProto {
            name: Some("Color".into()),
            value: vec![EnumValueDescriptorProto {
                name: Some("COLOR_UNSPECIFIED".into()),
                number: Some(0),
                ..Default::default()
            }],
            ..Default::default()
        }],
        source_code_info: Some(SourceCodeInfo {
            location: vec![
                comment(vec![6, 0], "Paints | canvases."),
                comment(vec![4, 0], "A canvas."),
                comment(vec![4, 0, 2, 0], "Labels by name."),
                comment(vec![5, 0], "A color."),
            ],
        }),
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }
}

#[test]
fn elements_without_a_comment_are_named() -> anyhow::Result<()> {
    let missing = undocumented(&sample().encode_to_vec())?;
    assert_eq!(
        missing,
        [
            "rpc partnerhub.test.v1.PaintService.Paint",
            "field partnerhub.test.v1.Canvas.width_px",
            "enum value partnerhub.test.v1.Color.COLOR_UNSPECIFIED",
        ]
    );
    let mut stripped = sample();
    stripped.file[0].source_code_info = None;
    assert_eq!(undocumented(&stripped.encode_to_vec())?.len(), 7);
    Ok(())
}

#[test]
fn the_page_shows_maps_links_comments_and_missing_rules() -> anyhow::Result<()> {
    let page = render(&sample().encode_to_vec())?;
    assert!(page.contains("## partnerhub.test.v1"));
    assert!(page.contains("Paints | canvases."));
    assert!(page.contains(
        "| `labels` | 1 | map&lt;`string`, [`Color`](#partnerhub-test-v1-color)&gt; | map | Labels by name. |"
    ));
    assert!(page.contains("| `width_px` | 2 | `int32` |  |  |"));
    assert!(page.contains("Access: no rule: every call is refused"));
    assert!(
        !page.contains("LabelsEntry"),
        "map entries are not messages"
    );
    Ok(())
}
