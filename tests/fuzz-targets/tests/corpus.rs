//! Replays every committed fuzz corpus file (hand-made seeds and the
//! minimised inputs of fixed findings) through the fuzz target bodies,
//! without libFuzzer: a cheap regression check in the normal test run.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use partnerhub_fuzz_targets::{TARGETS, events};
use prost::Message;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn every_corpus_file_passes_its_target() -> anyhow::Result<()> {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target.name);
        let files = files_in(&dir)?;
        ensure!(!files.is_empty(), "{} has no seed", dir.display());
        for file in files {
            let data = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            if catch_unwind(AssertUnwindSafe(|| (target.run)(&data))).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    ensure!(failures.is_empty(), "failing corpus files: {failures:#?}");
    ensure!(replayed >= 9 * 5, "only {replayed} corpus files");
    Ok(())
}

#[test]
fn every_fuzz_target_has_a_body_and_a_body_a_target() -> anyhow::Result<()> {
    let on_disk: BTreeSet<String> = files_in(&fuzz_dir().join("fuzz_targets"))?
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .collect();
    let bodies: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    ensure!(
        on_disk == bodies,
        "fuzz_targets/ {on_disk:?} vs bodies {bodies:?}"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml"))?;
    for name in &bodies {
        ensure!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "tests/fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
    Ok(())
}

#[test]
fn the_events_target_knows_every_event_and_command() -> anyhow::Result<()> {
    let set = prost_types::FileDescriptorSet::decode(partnerhub_proto::FILE_DESCRIPTOR_SET)?;
    let declared: BTreeSet<String> = set
        .file
        .iter()
        .filter(|f| {
            let name = f.name();
            name.starts_with("partnerhub/")
                && (name.ends_with("/events.proto") || name.ends_with("/commands.proto"))
        })
        .flat_map(|f| {
            f.message_type
                .iter()
                .map(move |m| format!("{}.{}", f.package(), m.name()))
        })
        .collect();
    let fuzzed: BTreeSet<String> = events::TYPES.iter().map(|t| (t.full_name)()).collect();
    ensure!(
        declared.len() > 30,
        "only {} messages declared",
        declared.len()
    );
    ensure!(
        declared == fuzzed,
        "not fuzzed: {:?}; not declared: {:?}",
        declared.difference(&fuzzed).collect::<Vec<_>>(),
        fuzzed.difference(&declared).collect::<Vec<_>>()
    );
    Ok(())
}

/// The hand-made seeds reach the paths where the properties are checked:
/// a signed token is accepted, a page token decodes, a wire envelope is
/// read, and each address and CSV seed ends the way its name says.
#[test]
fn the_seeds_reach_the_accepting_paths() -> anyhow::Result<()> {
    use partnerhub_fuzz_targets::{access_token, page_token};
    use partnerhub_platform::page;
    use partnerhub_verification::address::{self, PostalAddress, Validation};

    let seed = |target: &str, name: &str| -> anyhow::Result<Vec<u8>> {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        std::fs::read(&path).with_context(|| format!("{}", path.display()))
    };
    let token = seed("access_token", "raw-signed")?;
    let token = String::from_utf8(token.get(1..).unwrap_or_default().to_vec())?;
    ensure!(
        access_token::verify(&token).is_some(),
        "the signed seed is refused"
    );
    ensure!(access_token::verify(&format!("{token}x")).is_none());

    let token = seed("page_token", "timed-key")?;
    let token = String::from_utf8(token.get(1..).unwrap_or_default().to_vec())?;
    let key = page::decode::<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>(
        &token,
        &page_token::fingerprint(),
    );
    ensure!(
        matches!(key, Ok(Some(_))),
        "the page token seed is refused: {key:?}"
    );

    let wire = seed("envelope", "wire-cloudevent")?;
    let (payload, properties) =
        lapin::protocol::basic::parse_properties(wire.get(1..).unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut delivery =
        lapin::message::Delivery::mock(1, "".into(), "".into(), false, payload.to_vec());
    delivery.properties = properties;
    let message = partnerhub_platform::bus::IncomingMessage::from_delivery(&delivery)
        .map_err(|e| anyhow::anyhow!(e))?;
    ensure!(message.message_type == "partnerhub.identity.v1.UserCreated");

    let text = String::from_utf8(seed("address", "ru-cyrillic")?)?;
    let f: Vec<&str> = text.split('\n').collect();
    let entered = PostalAddress {
        line1: f[0].into(),
        line2: f[1].into(),
        city: f[2].into(),
        state: f[3].into(),
        postal_code: f[4].into(),
        country: f[5].into(),
    };
    ensure!(matches!(
        address::validate(&entered),
        Validation::Suggested(_)
    ));

    let csv = String::from_utf8(seed("csv_import", "good")?)?;
    ensure!(partnerhub_identity::domain::csv_import::parse(&csv).is_ok());
    Ok(())
}
