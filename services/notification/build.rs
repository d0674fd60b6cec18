//! Rebuilds when a migration or a template is added, and embeds every
//! template found under `templates/<locale>/<message>.j2`.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("templates");
    let mut entries = Vec::new();
    for locale in std::fs::read_dir(&root)? {
        let locale = locale?.path();
        if !locale.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", locale.display());
        for file in std::fs::read_dir(&locale)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "j2") {
                println!("cargo:rerun-if-changed={}", file.display());
                let locale_name = locale.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let message = file.file_stem().and_then(|n| n.to_str()).unwrap_or("");
                entries.push((locale_name.to_owned(), message.to_owned(), file.clone()));
            }
        }
    }
    entries.sort();
    let mut code = String::from("&[\n");
    for (locale, message, path) in entries {
        writeln!(
            code,
            "    ({locale:?}, {message:?}, include_str!({:?})),",
            path.display().to_string()
        )?;
    }
    code.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("templates.rs");
    std::fs::write(out, code)?;
    Ok(())
}
