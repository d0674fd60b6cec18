//! Generates Rust for every `.proto` under the workspace's `proto/` and writes
//! the encoded descriptor set (with imports) used for reflection and for the
//! per-RPC access rules. prost-build passes protoc `--include_source_info` by
//! default, so the set keeps the proto comments: reflection serves them
//! (`grpcurl describe`) and `partnerhub api-reference` renders them. Do not
//! call `skip_source_info()`: the API reference test would fail.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Type names (`prost::Name`) give every event its CloudEvents type and
    // routing key: the fully-qualified protobuf name.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("partnerhub_descriptor.bin"))
        .compile_with_config(config, &files, &[root, include])?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
