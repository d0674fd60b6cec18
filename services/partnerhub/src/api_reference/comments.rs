//! The leading comments that protoc keeps in a file's `source_code_info`,
//! looked up by the element's source path.

use std::collections::HashMap;

use prost_types::FileDescriptorProto;

/// Field numbers of `google/protobuf/descriptor.proto` that make up source
/// paths (`[MESSAGE, 3, FIELD, 1]` is the second field of the fourth message).
pub mod path {
    /// `FileDescriptorProto.message_type`.
    pub const MESSAGE: i32 = 4;
    /// `FileDescriptorProto.enum_type`.
    pub const ENUM: i32 = 5;
    /// `FileDescriptorProto.service`.
    pub const SERVICE: i32 = 6;
    /// `DescriptorProto.field`.
    pub const FIELD: i32 = 2;
    /// `DescriptorProto.nested_type`.
    pub const NESTED_MESSAGE: i32 = 3;
    /// `DescriptorProto.enum_type`.
    pub const NESTED_ENUM: i32 = 4;
    /// `DescriptorProto.oneof_decl`.
    pub const ONEOF: i32 = 8;
    /// `EnumDescriptorProto.value`.
    pub const ENUM_VALUE: i32 = 2;
    /// `ServiceDescriptorProto.method`.
    pub const METHOD: i32 = 2;
}

/// The non-empty leading comments of one file, by source path, and the
/// detached comments before its first message.
#[derive(Debug, Default)]
pub struct Comments {
    leading: HashMap<Vec<i32>, String>,
    intro: Option<String>,
}

impl Comments {
    /// Reads the comments of `file`; a file compiled without source info has
    /// none.
    pub fn of(file: &FileDescriptorProto) -> Self {
        let leading = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter_map(|location| {
                let text = tidy(location.leading_comments.as_deref()?);
                (!text.is_empty()).then(|| (location.path.clone(), text))
            })
            .collect();
        // A file's introduction: the comment blocks separated by a blank
        // line from its first message (as in `events.proto`).
        let intro = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .find(|location| location.path == [path::MESSAGE, 0])
            .map(|location| {
                location
                    .leading_detached_comments
                    .iter()
                    .map(|block| tidy(block))
                    .filter(|block| !block.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .filter(|text| !text.is_empty());
        Self { leading, intro }
    }

    /// The detached comments before the file's first message, if any.
    pub fn intro(&self) -> Option<String> {
        self.intro.clone()
    }

    /// The leading comment of the element at `path`, if it has one.
    pub fn leading(&self, path: &[i32]) -> Option<String> {
        self.leading.get(path).cloned()
    }
}

/// Removes the space after `//` from every line and the blank lines around
/// the text.
fn tidy(raw: &str) -> String {
    raw.lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn comment_lines_lose_the_space_after_the_slashes() {
        assert_eq!(
            tidy(" First line.\n Second:\n   indented.\n\n"),
            "First line.\nSecond:\n  indented."
        );
        assert_eq!(tidy(" \n"), "");
    }
}
