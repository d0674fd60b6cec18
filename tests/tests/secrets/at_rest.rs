//! What the services stored: no secret in any row of any table, bank and tax
//! numbers sealed (not even six digits of them in clear), passwords as
//! argon2id with the stated parameters, mailed and refresh tokens only as
//! SHA-256 hashes.

use partnerhub_platform::crypto::token_hash;
use partnerhub_testkit::Suite;
use sqlx::PgPool;

use crate::scan::{Secret, digit_windows, hits};

/// The PHC prefix of every stored password: argon2id, version 19, 19 MiB,
/// 2 passes, 1 lane (the argon2 crate's defaults, as `password.rs` says).
pub const ARGON2_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Every row of every table of `pool`, as JSON text, with its table.
async fn every_row(pool: &PgPool) -> anyhow::Result<Vec<(String, String)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await?;
    let mut rows = Vec::new();
    for table in tables {
        let sql = format!("SELECT row_to_json(t)::text FROM \"{table}\" t");
        let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?;
        rows.extend(texts.into_iter().map(|t| (table.clone(), t)));
    }
    Ok(rows)
}

/// Scans every row of every service database for `secrets`; returns the
/// number of rows read and the hits.
pub async fn scan_databases(
    suite: &Suite,
    secrets: &[Secret],
) -> anyhow::Result<(usize, Vec<(String, String)>)> {
    let mut count = 0;
    let mut found = Vec::new();
    for (service, _) in suite.addresses() {
        let pool = suite.pool(service).await?;
        let rows = every_row(&pool).await?;
        count += rows.len();
        found.extend(hits(
            secrets,
            rows.iter()
                .map(|(table, text)| (format!("{service}.{table}"), text.as_bytes())),
        ));
        pool.close().await;
    }
    Ok((count, found))
}

/// The bank and tax numbers are sealed: the stored rows (times and ids
/// aside) hold no run of six digits of them, in clear or as bytes.
pub async fn numbers_are_sealed(suite: &Suite, numbers: &[&str]) -> anyhow::Result<usize> {
    let pool = suite.pool("profile").await?;
    let mut rows: Vec<String> = Vec::new();
    for table in ["payout_profiles", "tax_profiles"] {
        let sql = format!(
            "SELECT (to_jsonb(t) - 'id' - 'account_id' - 'created_at' - 'updated_at' - 'version')::text
             FROM {table} t"
        );
        rows.extend(
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await?,
        );
    }
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT number_sealed FROM payout_profiles WHERE number_sealed IS NOT NULL
         UNION ALL SELECT tin_sealed FROM tax_profiles",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    anyhow::ensure!(sealed.len() >= 2, "expected a sealed bank and tax number");
    let windows: Vec<Secret> = numbers
        .iter()
        .flat_map(|n| digit_windows(n, 6))
        .map(|w| Secret::text("digits", w.clone(), &w))
        .collect();
    let places = rows
        .iter()
        .map(|r| ("profile row".to_owned(), r.as_bytes()))
        .chain(
            sealed
                .iter()
                .map(|s| ("sealed value".to_owned(), s.as_slice())),
        );
    let found = hits(&windows, places);
    anyhow::ensure!(
        found.is_empty(),
        "bank or tax digits stored in clear: {found:?}"
    );
    Ok(rows.len())
}

/// Every stored password is an argon2id hash with the stated parameters.
pub async fn passwords_are_argon2id(suite: &Suite) -> anyhow::Result<usize> {
    let pool = suite.pool("identity").await?;
    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    let wrong: Vec<&String> = hashes
        .iter()
        .filter(|h| !h.starts_with(ARGON2_PREFIX))
        .collect();
    anyhow::ensure!(!hashes.is_empty(), "no password stored");
    anyhow::ensure!(
        wrong.is_empty(),
        "hashes without {ARGON2_PREFIX}: {wrong:?}"
    );
    Ok(hashes.len())
}

/// Each of `tokens` is stored as its SHA-256 in `service`.`table`, and every
/// stored hash there is 32 bytes.
pub async fn tokens_are_hashed(
    suite: &Suite,
    service: &str,
    table: &str,
    tokens: &[&str],
) -> anyhow::Result<()> {
    let pool = suite.pool(service).await?;
    let sql = format!("SELECT token_hash FROM {table}");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    anyhow::ensure!(
        stored.iter().all(|h| h.len() == 32),
        "{service}.{table} holds a value that is not a SHA-256"
    );
    for token in tokens {
        anyhow::ensure!(
            stored.contains(&token_hash(token)),
            "{service}.{table} does not hold the hash of a token it issued"
        );
    }
    Ok(())
}
