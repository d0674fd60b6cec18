//! `partnerhub api-reference`: the Markdown API reference
//! (`docs/api-reference.md`) generated from the proto comments that the
//! embedded descriptor set keeps (protoc's source info), and the check that
//! every element of the API has a comment.

mod comments;
mod markdown;
mod model;
mod undocumented;

use anyhow::Context;
use partnerhub_platform::auth::AccessRules;
use prost::Message;
use prost_types::FileDescriptorSet;

/// The command that regenerates the committed page.
pub const REGENERATE: &str = "cargo run -q -p partnerhub -- api-reference > docs/api-reference.md";

/// The page for the encoded `FileDescriptorSet` `descriptors` (compiled with
/// source info) and the access rules read from it.
pub fn render(descriptors: &[u8]) -> anyhow::Result<String> {
    let set = decode(descriptors)?;
    let rules = AccessRules::from_descriptor_set(descriptors)
        .context("reading the access rules from the descriptor set")?;
    markdown::page(&model::packages(&set), &rules).context("writing the Markdown")
}

/// The page of partnerhub's own APIs.
pub fn builtin() -> anyhow::Result<String> {
    render(partnerhub_proto::FILE_DESCRIPTOR_SET)
}

/// Every element of the `partnerhub.*` packages without a leading comment
/// (`kind full.name`).
pub fn undocumented(descriptors: &[u8]) -> anyhow::Result<Vec<String>> {
    Ok(undocumented::undocumented(&model::packages(&decode(
        descriptors,
    )?)))
}

fn decode(descriptors: &[u8]) -> anyhow::Result<FileDescriptorSet> {
    FileDescriptorSet::decode(descriptors).context("decoding the descriptor set")
}

#[cfg(test)]
mod tests;
