//! PostgreSQL: a pool from a URL, the database created when missing, and the
//! platform's and the service's migrations run at start (sqlx holds an
//! advisory lock, so replicas can start together).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// Migrations every service database gets: outbox, inbox, idempotency. Their
/// versions are below 1000; a service's own start at 1000.
pub static PLATFORM_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates the database named in `url` if it does not exist.
pub async fn create_if_missing(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url).context("invalid database URL")?;
    let name = options
        .get_database()
        .context("the database URL names no database")?
        .to_owned();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("cannot reach PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        // The name is quoted as an identifier above.
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "Created database."),
            // Another replica created it first.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("cannot create the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Connects a pool of at most `max_connections` to `url`.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("invalid database URL")?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("cannot connect to the database")
}

/// Runs the platform migrations and the service's own as one ordered set
/// (the versions are disjoint), under sqlx's advisory lock.
pub async fn migrate(pool: &PgPool, service: &sqlx::migrate::Migrator) -> anyhow::Result<()> {
    let all = PLATFORM_MIGRATIONS
        .iter()
        .chain(service.iter())
        .cloned()
        .collect::<Vec<_>>();
    sqlx::migrate::Migrator::with_migrations(all)
        .run(pool)
        .await
        .context("database migrations failed")?;
    Ok(())
}

/// Creates the database if missing, connects and migrates.
pub async fn prepare(
    url: &str,
    max_connections: u32,
    service: &sqlx::migrate::Migrator,
) -> anyhow::Result<PgPool> {
    create_if_missing(url).await?;
    let pool = connect(url, max_connections).await?;
    migrate(&pool, service).await?;
    Ok(pool)
}
