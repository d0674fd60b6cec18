//! The run: every row in order, each against its reference.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use partnerhub_proto::profile::v1::ProgramKind;
use partnerhub_testkit::{Company, Suite, SuiteOptions, clients};
use tokio_util::sync::CancellationToken;

use crate::growth::{Growth, Lists};
use crate::load::LoadSettings;
use crate::report::{Machine, Report, Row};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Client settings of every load row.
    pub settings: LoadSettings,
    /// Quick mode (seconds; numbers are not results).
    pub quick: bool,
    /// Rows of the large size in row 7 (1 M in full mode).
    pub large: i64,
    /// The `partnerhub` binary for row 6.
    pub partnerhub: PathBuf,
    /// Only rows 1 and 2 (the ceiling and the read path, with the
    /// database read ceiling): a short loop for profiling the read path.
    pub read_only: bool,
}

/// Rate of the event latency measurement.
const EVENT_RATE: u32 = 500;
/// The small size of row 7.
const SMALL: i64 = 1_000;

/// Waits for a quiet machine before a row (at most 30 s) and says how long.
/// Not in quick mode: it runs beside the test suite, which is never quiet,
/// and its numbers are not results.
async fn quiet(plan: &Plan) {
    if plan.quick {
        return;
    }
    let waited = crate::report::settle(std::time::Duration::from_secs(30)).await;
    if waited > std::time::Duration::from_secs(2) {
        eprintln!("waited {:.1} s for a quiet machine", waited.as_secs_f64());
    }
}

/// Runs every row.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let machine = Machine::current();
    let settings = &plan.settings;
    let mut rows = Vec::new();

    // The ceiling is measured before the suite starts and again right after
    // the read row, and the higher of the two is kept: a disturbance during
    // one of them (a build, a checkpoint) cannot flatter the read's ratio.
    let stop_echo = CancellationToken::new();
    let echo_addr = crate::grpc::start_echo(stop_echo.clone()).await?;
    quiet(plan).await;
    let echo_before = crate::grpc::echo_ceiling(settings, echo_addr).await?;

    let suite = Suite::start_with(SuiteOptions {
        database_max_connections: Some(settings.pool_size),
        ..SuiteOptions::default()
    })
    .await?;
    suite.wait_serving().await?;
    let companies = enroll(&suite, settings.in_flight).await?;

    quiet(plan).await;
    let read = crate::grpc::read_path(settings, suite.profile, &companies).await?;
    quiet(plan).await;
    let echo_after = crate::grpc::echo_ceiling(settings, echo_addr).await?;
    stop_echo.cancel();
    eprintln!(
        "gRPC ceiling: {:.0} /s before the suite, {:.0} /s after the read row; the higher is the ceiling",
        echo_before.per_second, echo_after.per_second
    );
    let echo = if echo_after.per_second > echo_before.per_second {
        echo_after
    } else {
        echo_before
    };
    rows.push(Row::load(
        "grpc_ceiling",
        "1 gRPC ceiling: echo (health Check), best of 2",
        echo,
    ));
    rows.push(
        Row::load("read_path", "2 read: GetLegalProfile", read).at_least(
            echo.per_second,
            0.6,
            "gRPC ceiling",
        ),
    );

    let accounts = companies
        .iter()
        .map(|c| {
            partnerhub_platform::validate::resource_id(&c.account, "accounts")
                .ok()
                .and_then(|id| id.parse().ok())
                .with_context(|| format!("bad account {}", c.account))
        })
        .collect::<anyhow::Result<Vec<uuid::Uuid>>>()?;
    let profile_pool = suite.pool_of("profile", settings.pool_size).await?;
    quiet(plan).await;
    let select = crate::db::select_ceiling(settings, &profile_pool, &accounts).await?;
    profile_pool.close().await;
    rows.push(
        Row::load(
            "db_read_ceiling",
            "2 database read ceiling: the read's SELECT alone",
            select,
        )
        .context_ratio(
            read.per_second / select.per_second.max(f64::MIN_POSITIVE),
            "read ÷ this (context)",
        ),
    );
    if plan.read_only {
        suite.stop().await?;
        return Ok(Report {
            mode: "read only",
            settings: *settings,
            machine,
            rows,
            total_seconds: started.elapsed().as_secs_f64(),
        });
    }

    let pool = crate::db::fresh_pool(settings.pool_size).await?;
    quiet(plan).await;
    let database = crate::db::insert_ceiling(settings, &pool).await?;
    pool.close().await;
    rows.push(Row::load(
        "db_ceiling",
        "3 database ceiling: INSERT + COMMIT",
        database,
    ));
    quiet(plan).await;
    let write = crate::grpc::write_path(settings, suite.profile, &companies).await?;
    rows.push(
        Row::load("write_path", "3 write: UpdateLegalProfile", write).at_least(
            database.per_second,
            0.5,
            "database ceiling",
        ),
    );

    quiet(plan).await;
    let bus = crate::bus::ceiling(settings, partnerhub_testkit::AMQP_URL).await?;
    rows.push(Row {
        value: bus.per_second,
        ..Row::load(
            "bus_ceiling",
            "4 bus ceiling: publish+confirm, ack (quorum)",
            bus.publish,
        )
    });
    let pipeline =
        crate::events::Pipeline::start(partnerhub_testkit::AMQP_URL, settings.pool_size).await?;
    quiet(plan).await;
    let events = pipeline.throughput(settings).await?;
    quiet(plan).await;
    let latency = pipeline.latency_at(EVENT_RATE, settings.duration).await?;
    pipeline.stop().await?;
    rows.push(
        Row {
            value: events.per_second,
            ..Row::load(
                "event_path",
                "4 events: write→outbox→relay→inbox",
                events.publish,
            )
        }
        .at_least(bus.per_second, 0.5, "bus ceiling"),
    );
    rows.push(
        Row::latency(
            "event_latency",
            format!("4 events at {EVENT_RATE}/s: commit→consumer"),
            latency,
            0.99,
        )
        .value_at_most(50.0),
    );

    let calls = if plan.quick { 2_000 } else { 20_000 };
    let identity_url = format!("http://{}", suite.identity);
    quiet(plan).await;
    let per_call = crate::auth::per_call(&identity_url, &companies[0].token, calls).await?;
    rows.push(
        Row::figure(
            "auth_per_call",
            "5 auth: token + caller + rule, per call",
            per_call.as_secs_f64() * 1e6,
            "µs",
        )
        .value_at_most(20.0),
    );
    let sign_ins = crate::auth::sign_ins_per_second(if plan.quick { 3 } else { 30 }).await?;
    rows.push(Row::figure(
        "sign_ins_per_core",
        "5 sign-ins per core (argon2id)",
        sign_ins,
        "/s",
    ));

    let growth_company = clients::enrolled(&suite, "Growth", ProgramKind::Partner).await?;
    let growth = Growth::new(
        growth_company,
        suite.pool("identity").await?,
        suite.pool("profile").await?,
    )?;
    growth.grow_to(SMALL).await?;
    let small = growth
        .measure(settings, suite.identity, suite.profile)
        .await?;
    let seeded = Instant::now();
    growth.grow_to(plan.large).await?;
    let seed_time = seeded.elapsed();
    let large = growth
        .measure(settings, suite.identity, suite.profile)
        .await?;
    rows.extend(growth_rows(&small, &large, plan.large));
    rows.push(Row::figure(
        "seed_seconds",
        format!("7 seeding to {} rows per table", plan.large),
        seed_time.as_secs_f64(),
        "s",
    ));
    suite.stop().await?;

    quiet(plan).await;
    let process = crate::process::measure(settings, &plan.partnerhub).await?;
    rows.push(
        Row::figure(
            "start_to_serving",
            "6 start → all five SERVING (existing dbs)",
            process.start_to_serving.as_secs_f64() * 1e3,
            "ms",
        )
        .value_at_most(1000.0),
    );
    rows.push(
        Row::figure(
            "rss_idle",
            "6 RSS of serve all, idle",
            process.idle_rss_mib,
            "MiB",
        )
        .value_at_most(80.0),
    );
    rows.push(Row {
        stats: Some(process.load),
        ..Row::figure(
            "rss_load",
            "6 RSS of serve all, under ListMembers load",
            process.load_rss_mib,
            "MiB",
        )
    });

    Ok(Report {
        mode: if plan.quick { "quick" } else { "full" },
        settings: *settings,
        machine,
        rows,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// `count` enrolled companies, one per write worker.
async fn enroll(suite: &Suite, count: usize) -> anyhow::Result<Vec<Company>> {
    let mut companies = Vec::with_capacity(count);
    // Two at a time: sign-ups are argon2-bound, and the services' pools hold
    // three connections.
    for chunk in (0..count).collect::<Vec<_>>().chunks(2) {
        let batch = futures::future::try_join_all(chunk.iter().map(|i| async move {
            clients::enrolled(suite, &format!("Bench{i}"), ProgramKind::Partner).await
        }))
        .await
        .context("cannot enroll the bench companies")?;
        companies.extend(batch);
    }
    Ok(companies)
}

fn growth_rows(small: &Lists, large: &Lists, size: i64) -> Vec<Row> {
    let big = if size >= 1_000_000 {
        format!("{} M", size / 1_000_000)
    } else {
        format!("{} k", size / 1_000)
    };
    let pairs = [
        (
            "members_first_1k",
            "members_first_large",
            "ListMembers first page",
            small.members_first,
            large.members_first,
        ),
        (
            "members_middle_1k",
            "members_middle_large",
            "ListMembers middle page",
            small.members_middle,
            large.members_middle,
        ),
        (
            "locations_first_1k",
            "locations_first_large",
            "ListLocations first page",
            small.locations_first,
            large.locations_first,
        ),
        (
            "locations_middle_1k",
            "locations_middle_large",
            "ListLocations middle page",
            small.locations_middle,
            large.locations_middle,
        ),
    ];
    let mut rows = Vec::new();
    for (small_key, large_key, label, at_small, at_large) in pairs {
        let reference = at_small.p50_us / 1000.0;
        rows.push(Row::latency(
            small_key,
            format!("7 {label} at 1 k"),
            at_small,
            0.5,
        ));
        rows.push(
            Row::latency(large_key, format!("7 {label} at {big}"), at_large, 0.5).ratio_at_most(
                reference,
                1.5,
                "p50 at 1 k",
            ),
        );
    }
    rows
}
