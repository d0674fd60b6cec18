//! Cross-account isolation over every RPC, generated from the descriptor
//! set: company B owns one of everything (legal profile, a second location,
//! a second user, a tenant, tax and payout profiles, its program, a
//! verification case, notifications, a merge invitation). A's Global admin
//! then calls every RPC that names a resource with B's real resource names
//! (see `requests.rs`) and must get NOT_FOUND or PERMISSION_DENIED; every
//! row of B in the five databases is the same before and after.
//!
//! Two controls keep the test honest: the same requests naming A's own
//! resources get past the ownership check (so B's names were well-formed),
//! and the snapshot does see a change B makes itself.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use partnerhub_proto::profile::v1::{
    SetPayoutHoldRequest, payout_service_client::PayoutServiceClient,
};
use partnerhub_testkit::errors::violated_fields;
use partnerhub_testkit::{Company, Suite, clients};
use tonic::Code;

use crate::common::with_token;
use crate::owners::furnished;
use crate::requests::{Builder, Owner};
use crate::rpcs::{self, Descriptors, Rpc};

/// RPCs that act only on the caller or on data every signed-in user may
/// read: there is no resource of another account to name.
const CALLER_SCOPED: &[(&str, &str)] = &[
    (
        "/partnerhub.identity.v1.AccountService/CreateAccount",
        "opens a new account for the caller",
    ),
    (
        "/partnerhub.identity.v1.AccountService/ListMyAccounts",
        "the caller's own memberships",
    ),
    (
        "/partnerhub.identity.v1.AuthService/ChangePassword",
        "the caller's own password",
    ),
    (
        "/partnerhub.identity.v1.AuthService/CheckSession",
        "whether the caller's own token is still good",
    ),
    (
        "/partnerhub.identity.v1.SelfService/GetMyPermissions",
        "the caller's roles in its active account",
    ),
    (
        "/partnerhub.identity.v1.RoleService/ListRoles",
        "the role catalogue, the same for everyone",
    ),
    (
        "/partnerhub.identity.v1.RoleService/GetRole",
        "the role catalogue, the same for everyone",
    ),
    (
        "/partnerhub.profile.v1.IdentifierService/LookupPartner",
        "resolves a global partner id for a merge: callers who may invite to merge, rate-limited per user and account",
    ),
    (
        "/partnerhub.verification.v1.VerificationService/LookupDuns",
        "the business directory, no account data",
    ),
    (
        "/partnerhub.verification.v1.VerificationService/ValidateAddress",
        "postal rules, no account data",
    ),
];

/// RPCs that may refuse the caller's own resources in the control run: a
/// rule of the RPC, or the state an earlier control call left behind.
const OWN_REFUSED: &[(&str, &str)] = &[
    (
        "/partnerhub.identity.v1.MemberService/ResetPassword",
        "RemoveMember removed the member just before",
    ),
    (
        "/partnerhub.merge.v1.MergeService/AcceptMergeInvitation",
        "the owner sent the invitation: only the invitee answers it",
    ),
    (
        "/partnerhub.merge.v1.MergeService/RejectMergeInvitation",
        "the owner sent the invitation: only the invitee answers it",
    ),
];

/// RPCs that name B's resource but answer OK without touching it (the
/// snapshot proves nothing changed): refusing would tell the caller that
/// the secret it sent is someone's.
const SILENT: &[(&str, &str)] = &[(
    "/partnerhub.identity.v1.AuthService/SignOut",
    "another user's refresh token is ignored",
)];

/// Per table of each service's database: how many rows mention one of
/// `ids` and the md5 of those rows' JSON, sorted.
async fn snapshot(suite: &Suite, ids: &[String]) -> anyhow::Result<Snapshot> {
    let patterns: Vec<String> = ids
        .iter()
        .flat_map(|id| [format!("%{id}%"), format!("%{}%", id.replace('-', ""))])
        .collect();
    let mut out = BTreeMap::new();
    for (service, _) in suite.addresses() {
        let pool = suite.pool(service).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'
             AND tablename <> '_sqlx_migrations' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await?;
        for table in tables {
            let sql = format!(
                "SELECT count(*), coalesce(md5(string_agg(j, E'\\n' ORDER BY j)), '')
                 FROM (SELECT row_to_json(t)::text AS j FROM \"{table}\" t) s
                 WHERE j LIKE ANY($1)"
            );
            let row: (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&patterns)
                .fetch_one(&pool)
                .await
                .with_context(|| format!("snapshot of {service}.{table}"))?;
            out.insert(format!("{service}.{table}"), row);
        }
        pool.close().await;
    }
    Ok(out)
}

/// A snapshot once it stopped changing (events in flight have landed).
async fn settled(suite: &Suite, ids: &[String]) -> anyhow::Result<Snapshot> {
    let mut last = snapshot(suite, ids).await?;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = snapshot(suite, ids).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    anyhow::bail!("B's rows never stopped changing")
}

/// Rows of B per table: count and md5.
type Snapshot = BTreeMap<String, (i64, String)>;

/// The RPCs to call with another account's names, and the ones left out
/// with the reason.
fn partition(rpcs: Vec<Rpc>) -> (Vec<Rpc>, Vec<String>) {
    let mut covered = Vec::new();
    let mut excluded = Vec::new();
    for rpc in rpcs {
        if rpc.is_public() {
            excluded.push(format!("{} (public: no caller)", rpc.path));
        } else if rpc.is_platform() {
            excluded.push(format!("{} (platform: service accounts only)", rpc.path));
        } else if let Some((_, why)) = CALLER_SCOPED.iter().find(|(p, _)| *p == rpc.path) {
            excluded.push(format!("{} (caller-scoped: {why})", rpc.path));
        } else {
            covered.push(rpc);
        }
    }
    (covered, excluded)
}

/// Calls `rpc` as `caller` with a request naming `owner`'s resources;
/// `Err` when the request cannot be built. The answer is `None` for OK.
async fn probe(
    suite: &Suite,
    descriptors: &Descriptors,
    rpc: &Rpc,
    owner: &Owner,
    caller: &Company,
) -> anyhow::Result<Result<(String, Option<tonic::Status>), String>> {
    let built = match Builder::new(descriptors, owner, rpc).build() {
        Ok(built) if !built.names.is_empty() => built,
        Ok(_) => {
            return Ok(Err(format!(
                "{}: names no resource (a new RPC? teach requests.rs or list it)",
                rpc.path
            )));
        }
        Err(problems) => {
            return Ok(Err(format!(
                "{}: cannot build: {}",
                rpc.path,
                problems.join("; ")
            )));
        }
    };
    let outcome = rpcs::call(
        &rpc.channel(suite)?,
        &rpc.path,
        Some(&caller.token),
        built.body,
    )
    .await?;
    let answer = match &outcome {
        Ok(()) => "OK".to_owned(),
        Err(s) => format!("{:?} {} {:?}", s.code(), s.message(), violated_fields(s)),
    };
    Ok(Ok((
        format!("{} {:?}: {answer}", rpc.path, built.names),
        outcome.err(),
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rpc_reaches_another_accounts_resources() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.wait_serving().await?;
    let [c, d] = [
        clients::enrolled(
            &suite,
            "Litware",
            partnerhub_proto::profile::v1::ProgramKind::Partner,
        )
        .await?,
        clients::enrolled(
            &suite,
            "Northwind",
            partnerhub_proto::profile::v1::ProgramKind::Partner,
        )
        .await?,
    ];
    let (a, a_owns) = furnished(&suite, "Contoso", &d).await?;
    let (b, b_owns) = furnished(&suite, "Fabrikam", &c).await?;
    let ids: Vec<String> = b_owns
        .ids
        .iter()
        .filter(|(k, _)| **k != "programs")
        .map(|(_, v)| v.clone())
        .collect();
    let before = settled(&suite, &ids).await?;
    for service in [
        "identity",
        "profile",
        "verification",
        "notification",
        "merge",
    ] {
        let rows: i64 = before
            .iter()
            .filter(|(t, _)| t.starts_with(&format!("{service}.")))
            .map(|(_, (n, _))| n)
            .sum();
        assert!(
            rows > 0,
            "B has no rows in {service}'s database: {before:?}"
        );
    }

    let descriptors = Descriptors::builtin()?;
    let (covered, excluded) = partition(descriptors.rpcs());
    let mut answers = Vec::new();
    let mut bad = Vec::new();
    for rpc in &covered {
        let (line, refusal) = match probe(&suite, &descriptors, rpc, &b_owns, &a).await? {
            Ok(answer) => answer,
            Err(problem) => {
                bad.push(problem);
                continue;
            }
        };
        let code = refusal.as_ref().map(tonic::Status::code);
        let silent = SILENT.iter().any(|(p, _)| *p == rpc.path);
        if !(matches!(code, Some(Code::NotFound | Code::PermissionDenied))
            || silent && code.is_none())
        {
            bad.push(line.clone());
        }
        answers.push(line);
    }
    let after = settled(&suite, &ids).await?;
    let changed: Vec<String> = before
        .iter()
        .filter(|(table, row)| after.get(*table) != Some(row))
        .map(|(table, row)| format!("{table}: {row:?} -> {:?}", after.get(table)))
        .collect();
    println!(
        "isolation: {} RPCs called with another account's names, {} excluded; {} rows of B in {} tables unchanged",
        answers.len(),
        excluded.len(),
        before.values().map(|(n, _)| n).sum::<i64>(),
        before.len()
    );
    println!("excluded:\n{}", excluded.join("\n"));
    assert!(
        bad.is_empty(),
        "{} RPCs reached or failed on B's resources:\n{}\n\nall answers:\n{}",
        bad.len(),
        bad.join("\n"),
        answers.join("\n")
    );
    assert!(
        changed.is_empty(),
        "B's rows changed:\n{}",
        changed.join("\n")
    );
    assert!(answers.len() >= 60, "only {} RPCs covered", answers.len());

    // Controls: the same requests naming A's own resources get past the
    // ownership check (so B's names were well-formed and really B's)...
    let mut misaddressed = Vec::new();
    for rpc in &covered {
        if let Ok((line, Some(refusal))) = probe(&suite, &descriptors, rpc, &a_owns, &a).await?
            && matches!(refusal.code(), Code::NotFound | Code::PermissionDenied)
            && !OWN_REFUSED.iter().any(|(p, _)| *p == rpc.path)
        {
            misaddressed.push(line);
        }
    }
    assert!(
        misaddressed.is_empty(),
        "refused on the caller's own resources:\n{}",
        misaddressed.join("\n")
    );
    // ...and the snapshot sees a change B makes itself.
    PayoutServiceClient::new(Suite::channel(suite.profile)?)
        .set_payout_hold(with_token(
            &b.token,
            SetPayoutHoldRequest {
                name: format!("{}/payoutSettings", b.account),
                hold_payouts: true,
            },
        )?)
        .await?;
    assert_ne!(
        settled(&suite, &ids).await?,
        after,
        "the snapshot missed B's own change"
    );
    suite.stop().await
}
