//! Verification's gRPC service.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{idempotency, page};
use partnerhub_proto::verification::v1::verification_service_server::VerificationService;
use partnerhub_proto::verification::v1::*;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::address::{self, Validation};
use crate::cases::{
    self, CHECK_COLUMNS, CheckRow, Engine, Move, check_name, proto_kind, proto_status,
};
use crate::directory;
use crate::domain::{CheckState, MAX_APPEALS};

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 3 * 1024 * 1024;
/// Documents one check may hold (uploads and appeals together).
pub const MAX_DOCUMENTS_PER_CHECK: i64 = 5;
/// Bytes of documents one check may hold.
pub const MAX_BYTES_PER_CHECK: i64 = 10 * 1024 * 1024;
/// Documents one account may hold, over all its checks and cases.
pub const MAX_DOCUMENTS_PER_ACCOUNT: i64 = 25;
/// Bytes of documents one account may hold.
pub const MAX_BYTES_PER_ACCOUNT: i64 = 40 * 1024 * 1024;
/// The platform permission of reviewers (held by service accounts).
pub const REVIEW_PERMISSION: &str = "platform.verification.reviews.decide";
/// How often a verification email may be resent.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Verification's handlers.
#[derive(Debug, Clone)]
pub struct Verification {
    pool: PgPool,
    engine: Arc<Engine>,
    sealer: Option<Arc<Sealer>>,
}

impl Verification {
    /// Handlers over `pool`, moving checks through `engine`, sealing
    /// documents with `sealer` (without one, uploads are refused).
    pub fn new(pool: PgPool, engine: Arc<Engine>, sealer: Option<Arc<Sealer>>) -> Self {
        Self {
            pool,
            engine,
            sealer,
        }
    }
}

/// What a document's content is sealed to: its own id, so a sealed content
/// cannot be moved to another row.
fn document_context(id: Uuid) -> Vec<u8> {
    format!("verification.document:{id}").into_bytes()
}

/// Seals the documents stored in clear (before sealing existed), a few at a
/// time, until none is left or `stop`. Reads meanwhile open sealed rows and
/// return clear ones as they are.
pub async fn seal_stored_documents(pool: PgPool, sealer: Arc<Sealer>, stop: CancellationToken) {
    let mut sealed = 0u64;
    while !stop.is_cancelled() {
        match seal_batch(&pool, &sealer).await {
            Ok(0) => break,
            Ok(n) => sealed += n,
            Err(e) => {
                tracing::warn!(error = %e, "Sealing stored documents failed; retrying in a minute.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
            }
        }
    }
    if sealed > 0 {
        tracing::info!(sealed, "Sealed documents stored in clear.");
    }
}

/// Seals up to 20 documents stored in clear; how many it sealed.
async fn seal_batch(pool: &PgPool, sealer: &Sealer) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT id, content FROM documents WHERE content_kid IS NULL
         ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let n = rows.len() as u64;
    for (id, content) in rows {
        let (kid, sealed) = sealer
            .seal(&content, &document_context(id))
            .map_err(|e| sqlx::Error::Protocol(format!("sealing document {id}: {e}")))?;
        sqlx::query("UPDATE documents SET content = $2, content_kid = $3 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .bind(kid)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n)
}

fn db(e: sqlx::Error) -> Status {
    error::from_sqlx(&e)
}

fn bad(field: &str, description: impl Into<String>) -> Status {
    invalid_argument(vec![FieldViolation::new(field, description)])
}

fn account_of(field: &str, name: &str) -> Result<Uuid, Status> {
    validate::resource_id(name, "accounts")
        .ok()
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or_else(|| bad(field, "must be `accounts/{account}`"))
}

/// `accounts/{a}/verifications/{v}/checks/{c}` → (account, case, check).
fn check_ids(field: &str, name: &str) -> Result<(Uuid, Uuid, Uuid), Status> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["accounts", a, "verifications", v, "checks", c] => {
            match (Uuid::try_parse(a), Uuid::try_parse(v), Uuid::try_parse(c)) {
                (Ok(a), Ok(v), Ok(c)) => Ok((a, v, c)),
                _ => Err(bad(field, "has malformed ids")),
            }
        }
        _ => Err(bad(
            field,
            "must be `accounts/{account}/verifications/{verification}/checks/{check}`",
        )),
    }
}

/// Locks a check named `name` (of `account`, when the caller is bound to
/// one); another account's check is NOT_FOUND.
async fn lock_check(
    tx: &mut PgConnection,
    name: &str,
    ids: (Uuid, Uuid, Uuid),
) -> Result<CheckRow, Status> {
    let (account, case, id) = ids;
    let row: Option<CheckRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {CHECK_COLUMNS} FROM checks WHERE id = $1 AND account_id = $2 AND case_id = $3 FOR UPDATE"
    )))
    .bind(id)
    .bind(account)
    .bind(case)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    row.ok_or_else(|| error::not_found("check", name))
}

fn check_message(row: &CheckRow, history: Vec<CheckTransition>) -> Check {
    let suggested = row
        .details
        .get("suggested_address")
        .and_then(|a| serde_json::from_value::<AddressJson>(a.clone()).ok())
        .map(|a| PostalAddress {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            postal_code: a.postal_code,
            country: a.country,
        });
    Check {
        name: check_name(row),
        kind: proto_kind(&row.kind).into(),
        status: proto_status(&row.status).into(),
        reason: if row.superseded {
            "SUPERSEDED".into()
        } else {
            row.reason.clone()
        },
        message: row.message.clone(),
        in_review: row.in_review,
        appeals: row.appeals,
        requested_documents: row
            .requested_documents
            .iter()
            .filter_map(|d| DocumentType::from_str_name(&format!("DOCUMENT_TYPE_{d}")))
            .map(|d| d as i32)
            .collect(),
        suggested_address: suggested,
        history,
        update_time: Some(timestamp(row.updated_at)),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AddressJson {
    line1: String,
    line2: String,
    city: String,
    state: String,
    postal_code: String,
    country: String,
}

/// Refuses a document of `size` bytes that would take check `check` or
/// account `account` over its quota (RESOURCE_EXHAUSTED, reason
/// CHECK_DOCUMENT_QUOTA or ACCOUNT_DOCUMENT_QUOTA). Serialized per account,
/// so concurrent uploads cannot both squeeze under it.
async fn document_quota(
    tx: &mut PgConnection,
    account: Uuid,
    check: Uuid,
    size: i64,
    subject: &str,
) -> Result<(), Status> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('verification.documents:' || $1::text))")
        .bind(account)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let (check_count, check_bytes, account_count, account_bytes): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE check_id = $2),
                    coalesce(sum(size_bytes) FILTER (WHERE check_id = $2), 0)::bigint,
                    count(*),
                    coalesce(sum(size_bytes), 0)::bigint
             FROM documents WHERE account_id = $1",
        )
        .bind(account)
        .bind(check)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    const MIB: i64 = 1024 * 1024;
    if check_count >= MAX_DOCUMENTS_PER_CHECK || check_bytes + size > MAX_BYTES_PER_CHECK {
        return Err(quota_refusal(
            "CHECK_DOCUMENT_QUOTA",
            subject,
            format!(
                "a check holds at most {MAX_DOCUMENTS_PER_CHECK} documents and {} MiB; this one holds {check_count} ({:.1} MiB)",
                MAX_BYTES_PER_CHECK / MIB,
                check_bytes as f64 / MIB as f64
            ),
        ));
    }
    if account_count >= MAX_DOCUMENTS_PER_ACCOUNT || account_bytes + size > MAX_BYTES_PER_ACCOUNT {
        return Err(quota_refusal(
            "ACCOUNT_DOCUMENT_QUOTA",
            &format!("accounts/{account}"),
            format!(
                "an account holds at most {MAX_DOCUMENTS_PER_ACCOUNT} documents and {} MiB; this one holds {account_count} ({:.1} MiB)",
                MAX_BYTES_PER_ACCOUNT / MIB,
                account_bytes as f64 / MIB as f64
            ),
        ));
    }
    Ok(())
}

/// RESOURCE_EXHAUSTED with a reason, naming what is full.
fn quota_refusal(reason: &str, subject: &str, description: String) -> Status {
    error::refused(
        tonic::Code::ResourceExhausted,
        reason,
        format!("{subject}: {description}"),
    )
}

fn doc_type_name(t: DocumentType) -> &'static str {
    t.as_str_name().trim_start_matches("DOCUMENT_TYPE_")
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    account_id: Uuid,
    check_id: Uuid,
    case_id: Uuid,
    doc_type: String,
    content_type: String,
    size_bytes: i64,
    comment: String,
    uploaded_by: String,
    created_at: DateTime<Utc>,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Self {
        Document {
            name: format!("accounts/{}/documents/{}", r.account_id, r.id),
            check: format!(
                "accounts/{}/verifications/{}/checks/{}",
                r.account_id, r.case_id, r.check_id
            ),
            r#type: DocumentType::from_str_name(&format!("DOCUMENT_TYPE_{}", r.doc_type))
                .unwrap_or_default()
                .into(),
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            comment: r.comment,
            uploaded_by: r.uploaded_by,
            create_time: Some(timestamp(r.created_at)),
        }
    }
}

impl Verification {
    async fn list_verifications_page(
        &self,
        caller: &Caller,
        req: &ListVerificationsRequest,
    ) -> Result<ListVerificationsResponse, Status> {
        let account = account_of("parent", &req.parent)?;
        caller.require(perm::VERIFICATION_READ, &account.to_string())?;
        let mut v = Violations::new();
        let page = page::Keyset::<(DateTime<Utc>, Uuid)>::read(
            &mut v,
            req.page_size,
            &req.page_token,
            &[&req.parent],
        );
        v.finish()?;
        let mut conn = self.pool.acquire().await.map_err(db)?;
        #[derive(sqlx::FromRow)]
        struct CaseRow {
            id: Uuid,
            trigger: String,
            location: String,
            state: String,
            created_at: DateTime<Utc>,
            closed_at: Option<DateTime<Utc>>,
        }
        let mut cases: Vec<CaseRow> = sqlx::query_as(
            "SELECT id, trigger, location, state, created_at, closed_at FROM cases
             WHERE account_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(account)
        .bind(page.after.map(|a| a.0))
        .bind(page.after.map(|a| a.1))
        .bind(page.limit())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let next_page_token = page.finish(&mut cases, |last| (last.created_at, last.id));
        let mut verifications = Vec::with_capacity(cases.len());
        for case in cases {
            let rows: Vec<CheckRow> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {CHECK_COLUMNS} FROM checks WHERE case_id = $1 ORDER BY id"
            )))
            .bind(case.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
            let mut checks = Vec::with_capacity(rows.len());
            for row in rows {
                let history = if req.show_history {
                    let steps: Vec<(String, String, String, String, DateTime<Utc>)> =
                        sqlx::query_as(
                            "SELECT old_status, new_status, reason, actor, changed_at
                             FROM check_history WHERE check_id = $1 ORDER BY id",
                        )
                        .bind(row.id)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db)?;
                    steps
                        .into_iter()
                        .map(|(old, new, reason, actor, at)| CheckTransition {
                            old_status: proto_status(&old).into(),
                            new_status: proto_status(&new).into(),
                            reason,
                            actor,
                            time: Some(timestamp(at)),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                checks.push(check_message(&row, history));
            }
            verifications.push(Verification_ {
                name: format!("accounts/{account}/verifications/{}", case.id),
                trigger: case.trigger,
                location: case.location,
                state: case.state,
                checks,
                create_time: Some(timestamp(case.created_at)),
                close_time: case.closed_at.map(timestamp),
            });
        }
        Ok(ListVerificationsResponse {
            verifications,
            next_page_token,
        })
    }

    async fn confirm(&self, req: &ConfirmEmailOwnershipRequest) -> Result<Check, Status> {
        if req.token.is_empty() || req.token.len() > 200 {
            return Err(bad("token", "is required (the token from the mail)"));
        }
        let expected_account = match req.account.as_str() {
            "" => None,
            name => Some(account_of("account", name)?),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        #[derive(sqlx::FromRow)]
        struct TokenRow {
            check_id: Uuid,
            account_id: Uuid,
            email: String,
            expires_at: DateTime<Utc>,
            used_at: Option<DateTime<Utc>>,
            revoked_at: Option<DateTime<Utc>>,
        }
        let token: Option<TokenRow> = sqlx::query_as(
            "SELECT check_id, account_id, email, expires_at, used_at, revoked_at
             FROM email_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(partnerhub_platform::crypto::token_hash(&req.token))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(token) = token else {
            return Err(bad("token", "is not a valid verification token"));
        };
        if expected_account.is_some_and(|a| a != token.account_id) {
            return Err(bad(
                "token",
                "is not a valid verification token for this account",
            ));
        }
        if token.used_at.is_some() {
            return Err(bad("token", "was already used"));
        }
        if token.revoked_at.is_some() {
            return Err(bad(
                "token",
                "was replaced by a newer one: use the latest mail",
            ));
        }
        if token.expires_at <= Utc::now() {
            return Err(bad(
                "token",
                "has expired: ask for a new verification email",
            ));
        }
        sqlx::query("UPDATE email_tokens SET used_at = now() WHERE token_hash = $1")
            .bind(partnerhub_platform::crypto::token_hash(&req.token))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let row: CheckRow = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM checks WHERE id = $1 FOR UPDATE"
        )))
        .bind(token.check_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if row.superseded {
            return Err(bad(
                "token",
                "belongs to a check that a newer change replaced",
            ));
        }
        if row.status == "REJECTED" {
            return Err(error::failed_precondition(
                "CHECK_REJECTED",
                &check_name(&row),
                "a reviewer rejected this check: the link no longer passes it",
            ));
        }
        let row = if row.status == "PASSED" {
            row
        } else {
            cases::transition(
                &mut tx,
                &row,
                Move {
                    state: CheckState::Passed,
                    reason: "EMAIL_CONFIRMED",
                    message: &format!("{} confirmed.", token.email),
                    in_review: false,
                    documents: None,
                    appeal: false,
                    actor: cases::SYSTEM,
                },
            )
            .await
            .map_err(db)?
        };
        tx.commit().await.map_err(db)?;
        Ok(check_message(&row, Vec::new()))
    }

    async fn resend(
        &self,
        caller: &Caller,
        req: &ResendVerificationEmailRequest,
    ) -> Result<ResendVerificationEmailResponse, Status> {
        let account = account_of("account", &req.account)?;
        caller.require(perm::VERIFICATION_WRITE, &account.to_string())?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row: Option<CheckRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM checks
             WHERE account_id = $1 AND kind = 'EMAIL_OWNERSHIP' AND NOT superseded AND status = 'ACTION_REQUIRED'
             ORDER BY id DESC LIMIT 1 FOR UPDATE"
        )))
        .bind(account)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(error::failed_precondition(
                "NO_EMAIL_CHECK_PENDING",
                &req.account,
                "no email-ownership check is waiting for a confirmation",
            ));
        };
        let last: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT max(created_at) FROM email_tokens WHERE check_id = $1")
                .bind(row.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let interval =
            chrono::Duration::from_std(RESEND_INTERVAL).unwrap_or(chrono::Duration::days(1));
        if let Some(last) = last {
            let next = last + interval;
            let now = Utc::now();
            if next > now {
                let wait = (next - now).to_std().unwrap_or(RESEND_INTERVAL);
                return Err(error::rate_limited(
                    "RESEND_TOO_SOON",
                    format!(
                        "a verification email was sent less than 24 hours ago; try again after {next}"
                    ),
                    wait,
                ));
            }
        }
        let (email, legal_name): (String, String) =
            sqlx::query_as("SELECT primary_email, legal_name FROM accounts WHERE account_id = $1")
                .bind(account)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .unwrap_or_default();
        let sent = self
            .engine
            .mail_token(&mut tx, row.id, account, &email, &legal_name)
            .await
            .map_err(|e| error::internal(&e))?;
        tx.commit().await.map_err(db)?;
        Ok(ResendVerificationEmailResponse {
            next_allowed_time: Some(timestamp(sent + interval)),
        })
    }

    async fn upload(
        &self,
        caller: &Caller,
        req: &UploadDocumentRequest,
    ) -> Result<Document, Status> {
        let ids = check_ids("check", &req.check)?;
        caller.require(perm::VERIFICATION_WRITE, &ids.0.to_string())?;
        let mut v = Violations::new();
        let doc_type = match DocumentType::try_from(req.r#type) {
            Ok(DocumentType::Unspecified) | Err(_) => {
                v.add("type", "must be a document type");
                DocumentType::Unspecified
            }
            Ok(t) => t,
        };
        let mut content_type = "";
        if req.content.is_empty() {
            v.add("content", "is required");
        } else if req.content.len() > MAX_DOCUMENT_BYTES {
            v.add(
                "content",
                format!("must be at most {MAX_DOCUMENT_BYTES} bytes"),
            );
        } else {
            match infer::get(&req.content).map(|t| t.mime_type()) {
                Some(t @ ("application/pdf" | "image/png" | "image/jpeg")) => content_type = t,
                Some(other) => v.add(
                    "content",
                    format!("is {other}; only PDF, PNG and JPEG files are accepted"),
                ),
                None => v.add(
                    "content",
                    "is not a PDF, PNG or JPEG file (checked by its content)",
                ),
            }
        }
        // Line breaks are fine in a comment; other control characters are not.
        v.check(
            "comment",
            validate::text(&req.comment.replace(['\n', '\r', '\t'], " "), 0, 1000),
        );
        v.finish()?;
        let Some(sealer) = self.sealer.as_deref() else {
            return Err(error::failed_precondition(
                "DOCUMENT_KEYS_MISSING",
                &req.check,
                "documents are sealed at rest and this deployment has no keys \
                 (PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS): uploads are refused",
            ));
        };
        let scope = format!("verification.upload:{}", caller.resource_name());
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(previous) =
            idempotency::replay::<Document>(&mut tx, &scope, &req.request_id, req).await?
        {
            return Ok(previous);
        }
        let row = lock_check(&mut tx, &req.check, ids).await?;
        if row.superseded {
            return Err(error::failed_precondition(
                "CHECK_SUPERSEDED",
                &req.check,
                "a newer change replaced this check; upload to the new one",
            ));
        }
        if row.kind == "EMAIL_OWNERSHIP" {
            return Err(error::failed_precondition(
                "CONFIRM_EMAIL_INSTEAD",
                &req.check,
                "email ownership is proven with the mailed link, not a document",
            ));
        }
        if row.status == "PASSED" {
            return Err(error::failed_precondition(
                "CHECK_PASSED",
                &req.check,
                "the check passed and needs no document",
            ));
        }
        let appeal = row.status == "ACTION_REQUIRED" || row.status == "REJECTED";
        if appeal && row.appeals >= MAX_APPEALS {
            return Err(error::failed_precondition(
                "APPEALS_EXHAUSTED",
                &req.check,
                format!("the check was already sent back to review {MAX_APPEALS} times"),
            ));
        }
        let size = i64::try_from(req.content.len()).unwrap_or(i64::MAX);
        document_quota(&mut tx, ids.0, ids.2, size, &req.check).await?;
        let id = Uuid::now_v7();
        let actor = caller.resource_name();
        let (kid, sealed) = sealer
            .seal(&req.content, &document_context(id))
            .map_err(|e| error::internal(&std::io::Error::other(e)))?;
        let stored: DocumentRow = sqlx::query_as(
            "INSERT INTO documents (id, account_id, check_id, doc_type, content_type, size_bytes, content, comment, uploaded_by, content_kid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11)
             RETURNING id, account_id, check_id, $10::uuid AS case_id, doc_type, content_type, size_bytes, comment, uploaded_by, created_at",
        )
        .bind(id)
        .bind(ids.0)
        .bind(ids.2)
        .bind(doc_type_name(doc_type))
        .bind(content_type)
        .bind(size)
        .bind(&sealed)
        .bind(req.comment.trim())
        .bind(&actor)
        .bind(ids.1)
        .bind(&kid)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if appeal {
            cases::transition(
                &mut tx,
                &row,
                Move {
                    state: CheckState::Pending,
                    reason: "DOCUMENTS_UPLOADED",
                    message: "Documents were uploaded: a reviewer checks them.",
                    in_review: true,
                    documents: None,
                    appeal: true,
                    actor: &actor,
                },
            )
            .await
            .map_err(db)?;
        }
        let document = Document::from(stored);
        idempotency::remember(&mut tx, &scope, &req.request_id, &document).await?;
        tx.commit().await.map_err(db)?;
        Ok(document)
    }

    async fn decide(
        &self,
        caller: &Caller,
        name: &str,
        change: impl FnOnce(
            &CheckRow,
        )
            -> Result<(CheckState, String, String, Option<Vec<String>>), Status>,
    ) -> Result<Check, Status> {
        let ids = check_ids("check", name)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = lock_check(&mut tx, name, ids).await?;
        if row.superseded {
            return Err(error::failed_precondition(
                "CHECK_SUPERSEDED",
                name,
                "a newer change replaced this check",
            ));
        }
        if row.status == "PASSED" {
            return Err(error::failed_precondition(
                "CHECK_PASSED",
                name,
                "the check is PASSED; nothing is left to decide",
            ));
        }
        let (state, reason, message, documents) = change(&row)?;
        if row.kind == "EMAIL_OWNERSHIP" && state != CheckState::Passed {
            // The mailed link must not undo a reviewer's decision.
            sqlx::query(
                "UPDATE email_tokens SET revoked_at = now()
                 WHERE check_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(row.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        let actor = caller.resource_name();
        let row = cases::transition(
            &mut tx,
            &row,
            Move {
                state,
                reason: &reason,
                message: &message,
                in_review: false,
                documents,
                appeal: false,
                actor: &actor,
            },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(check_message(&row, Vec::new()))
    }
}

/// The proto `Verification` (renamed: the handler struct has that name).
type Verification_ = partnerhub_proto::verification::v1::Verification;

#[tonic::async_trait]
impl VerificationService for Verification {
    async fn get_verification_status(
        &self,
        request: Request<GetVerificationStatusRequest>,
    ) -> Result<Response<VerificationStatus>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let account =
            validate::account_of(name, "verificationStatus").map_err(|e| bad("name", e))?;
        caller.require(perm::VERIFICATION_READ, account)?;
        let id: Uuid = account
            .parse()
            .map_err(|_| error::not_found("verificationStatus", name))?;
        let row: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT status, sub_status, updated_at FROM account_status WHERE account_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let status = match row {
            None => VerificationStatus {
                name: name.clone(),
                status: Status_::None.into(),
                sub_status: SubStatus::Unspecified.into(),
                update_time: None,
            },
            Some((status, sub_status, updated_at)) => VerificationStatus {
                name: name.clone(),
                status: Status_::from_str_name(&format!("STATUS_{status}"))
                    .unwrap_or(Status_::Unspecified)
                    .into(),
                sub_status: SubStatus::from_str_name(&format!("SUB_STATUS_{sub_status}"))
                    .unwrap_or(SubStatus::Unspecified)
                    .into(),
                update_time: Some(timestamp(updated_at)),
            },
        };
        Ok(Response::new(status))
    }

    async fn list_verifications(
        &self,
        request: Request<ListVerificationsRequest>,
    ) -> Result<Response<ListVerificationsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_verifications_page(caller, request.get_ref())
                .await?,
        ))
    }

    async fn confirm_email_ownership(
        &self,
        request: Request<ConfirmEmailOwnershipRequest>,
    ) -> Result<Response<ConfirmEmailOwnershipResponse>, Status> {
        let check = self.confirm(request.get_ref()).await?;
        Ok(Response::new(ConfirmEmailOwnershipResponse {
            check: Some(check),
        }))
    }

    async fn resend_verification_email(
        &self,
        request: Request<ResendVerificationEmailRequest>,
    ) -> Result<Response<ResendVerificationEmailResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(self.resend(caller, request.get_ref()).await?))
    }

    async fn lookup_duns(
        &self,
        request: Request<LookupDunsRequest>,
    ) -> Result<Response<LookupDunsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let country = req.country.trim().to_ascii_uppercase();
        if !country.is_empty()
            && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            v.add("country", "must be an ISO 3166-1 alpha-2 code");
        }
        let duns = if req.duns_number.trim().is_empty() {
            if req.name.trim().is_empty() {
                v.add("name", "is required when no DUNS number is given");
            }
            v.check("name", validate::text(req.name.trim(), 0, 200));
            None
        } else {
            match directory::parse_duns(&req.duns_number) {
                Ok(d) => Some(d),
                Err(e) => {
                    v.add("duns_number", e);
                    None
                }
            }
        };
        v.finish()?;
        let unavailable = |e: directory::DirectoryError| error::unavailable(&e);
        let found = match duns {
            Some(duns) => self
                .engine
                .directory()
                .lookup(&duns)
                .await
                .map_err(unavailable)?
                .map(|c| vec![(c, 1.0)])
                .unwrap_or_default(),
            None => self
                .engine
                .directory()
                .search(req.name.trim(), &country, 10)
                .await
                .map_err(unavailable)?,
        };
        Ok(Response::new(LookupDunsResponse {
            companies: found
                .into_iter()
                .map(|(c, score)| DirectoryCompany {
                    duns_number: c.duns,
                    name: c.name,
                    address: Some(PostalAddress {
                        line1: c.line1,
                        city: c.city,
                        postal_code: c.postal_code,
                        country: c.country,
                        ..PostalAddress::default()
                    }),
                    score,
                })
                .collect(),
        }))
    }

    async fn validate_address(
        &self,
        request: Request<ValidateAddressRequest>,
    ) -> Result<Response<ValidateAddressResponse>, Status> {
        let Some(a) = request.get_ref().address.clone() else {
            return Err(bad("address", "is required"));
        };
        let input = address::PostalAddress {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            postal_code: a.postal_code,
            country: a.country,
        };
        let (covered, suggested) = match address::validate(&input) {
            Validation::NotCovered => (false, None),
            Validation::Valid => (true, None),
            Validation::Suggested(s) => (true, Some(s)),
            Validation::Invalid(problems) => {
                return Err(invalid_argument(
                    problems
                        .into_iter()
                        .map(|(field, problem)| {
                            FieldViolation::new(format!("address.{field}"), problem)
                        })
                        .collect(),
                ));
            }
        };
        Ok(Response::new(ValidateAddressResponse {
            covered,
            suggested_address: suggested.map(|s| PostalAddress {
                line1: s.line1,
                line2: s.line2,
                city: s.city,
                state: s.state,
                postal_code: s.postal_code,
                country: s.country,
            }),
        }))
    }

    async fn upload_document(
        &self,
        request: Request<UploadDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(self.upload(caller, request.get_ref()).await?))
    }

    async fn list_documents(
        &self,
        request: Request<ListDocumentsRequest>,
    ) -> Result<Response<ListDocumentsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let account = account_of("parent", &req.parent)?;
        caller.require(perm::VERIFICATION_READ, &account.to_string())?;
        let mut v = Violations::new();
        let page = page::Keyset::<(DateTime<Utc>, Uuid)>::read(
            &mut v,
            req.page_size,
            &req.page_token,
            &[&req.parent],
        );
        v.finish()?;
        let mut rows: Vec<DocumentRow> = sqlx::query_as(
            "SELECT d.id, d.account_id, d.check_id, c.case_id, d.doc_type, d.content_type, d.size_bytes,
                    d.comment, d.uploaded_by, d.created_at
             FROM documents d JOIN checks c ON c.id = d.check_id
             WHERE d.account_id = $1 AND ($2::timestamptz IS NULL OR (d.created_at, d.id) < ($2, $3))
             ORDER BY d.created_at DESC, d.id DESC LIMIT $4",
        )
        .bind(account)
        .bind(page.after.map(|a| a.0))
        .bind(page.after.map(|a| a.1))
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let next_page_token = page.finish(&mut rows, |last| (last.created_at, last.id));
        Ok(Response::new(ListDocumentsResponse {
            documents: rows.into_iter().map(Document::from).collect(),
            next_page_token,
        }))
    }

    async fn list_pending_reviews(
        &self,
        request: Request<ListPendingReviewsRequest>,
    ) -> Result<Response<ListPendingReviewsResponse>, Status> {
        let caller = caller(&request)?;
        caller.require_platform(REVIEW_PERMISSION)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let page = page::Keyset::<(DateTime<Utc>, Uuid)>::read(
            &mut v,
            req.page_size,
            &req.page_token,
            &["reviews"],
        );
        v.finish()?;
        let mut rows: Vec<CheckRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM checks
             WHERE in_review AND NOT superseded
               AND ($1::timestamptz IS NULL OR (review_since, id) > ($1, $2))
             ORDER BY review_since, id LIMIT $3"
        )))
        .bind(page.after.map(|a| a.0))
        .bind(page.after.map(|a| a.1))
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let next_page_token = page.finish(&mut rows, |last| {
            (last.review_since.unwrap_or(last.updated_at), last.id)
        });
        Ok(Response::new(ListPendingReviewsResponse {
            checks: rows.iter().map(|r| check_message(r, Vec::new())).collect(),
            next_page_token,
        }))
    }

    async fn get_document_content(
        &self,
        request: Request<GetDocumentContentRequest>,
    ) -> Result<Response<DocumentContent>, Status> {
        let caller = caller(&request)?;
        caller.require_platform(REVIEW_PERMISSION)?;
        let name = &request.get_ref().name;
        let parts: Vec<&str> = name.split('/').collect();
        let (account, id) = match parts.as_slice() {
            ["accounts", a, "documents", d] => match (Uuid::try_parse(a), Uuid::try_parse(d)) {
                (Ok(a), Ok(d)) => (a, d),
                _ => return Err(bad("name", "has malformed ids")),
            },
            _ => {
                return Err(bad(
                    "name",
                    "must be `accounts/{account}/documents/{document}`",
                ));
            }
        };
        let row: Option<(Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT content, content_kid FROM documents WHERE id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some((stored, kid)) = row else {
            return Err(error::not_found("document", name));
        };
        let content = match kid {
            // Stored before sealing; sealed at the next start with keys.
            None => stored,
            Some(kid) => self
                .sealer
                .as_deref()
                .and_then(|s| s.open(&kid, &stored, &document_context(id)))
                .ok_or_else(|| {
                    error::failed_precondition(
                        "DOCUMENT_KEY_UNAVAILABLE",
                        name,
                        format!("the document is sealed with key {kid}, which this deployment does not hold"),
                    )
                })?,
        };
        let document: DocumentRow = sqlx::query_as(
            "SELECT d.id, d.account_id, d.check_id, c.case_id, d.doc_type, d.content_type, d.size_bytes,
                    d.comment, d.uploaded_by, d.created_at
             FROM documents d JOIN checks c ON c.id = d.check_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(Response::new(DocumentContent {
            document: Some(document.into()),
            content,
        }))
    }

    async fn request_documents(
        &self,
        request: Request<RequestDocumentsRequest>,
    ) -> Result<Response<Check>, Status> {
        let caller = caller(&request)?;
        caller.require_platform(REVIEW_PERMISSION)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let mut types = Vec::new();
        if req.types.is_empty() {
            v.add("types", "name at least one document type");
        }
        for (i, t) in req.types.iter().enumerate() {
            match DocumentType::try_from(*t) {
                Ok(DocumentType::Unspecified) | Err(_) => {
                    v.add(format!("types[{i}]"), "is not a document type")
                }
                Ok(t) => types.push(doc_type_name(t).to_owned()),
            }
        }
        v.check("reason", validate::text(req.reason.trim(), 1, 500));
        check_ids("check", &req.check)
            .map_err(|e| v.add("check", e.message().to_owned()))
            .ok();
        v.finish()?;
        let mut seen = std::collections::HashSet::new();
        types.retain(|t| seen.insert(t.clone()));
        let reason = req.reason.trim().to_owned();
        let check = self
            .decide(caller, &req.check, move |row| {
                if row.kind == "EMAIL_OWNERSHIP" {
                    return Err(error::failed_precondition(
                        "CONFIRM_EMAIL_INSTEAD",
                        &check_name(row),
                        "email ownership is proven with the mailed link, not documents",
                    ));
                }
                // Documents the partner could not send: decide instead.
                if row.appeals >= MAX_APPEALS {
                    return Err(error::failed_precondition(
                        "APPEALS_EXHAUSTED",
                        &check_name(row),
                        format!("the check used its {MAX_APPEALS} appeals: pass or reject it"),
                    ));
                }
                Ok((
                    CheckState::ActionRequired,
                    "DOCUMENTS_REQUESTED".to_owned(),
                    reason,
                    Some(types),
                ))
            })
            .await?;
        Ok(Response::new(check))
    }

    async fn decide_check(
        &self,
        request: Request<DecideCheckRequest>,
    ) -> Result<Response<Check>, Status> {
        let caller = caller(&request)?;
        caller.require_platform(REVIEW_PERMISSION)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let decision = Decision::try_from(req.decision).unwrap_or(Decision::Unspecified);
        if decision == Decision::Unspecified {
            v.add("decision", "must be PASS or REJECT");
        }
        if decision == Decision::Reject || !req.reason.trim().is_empty() {
            v.check("reason", validate::text(req.reason.trim(), 1, 500));
        }
        check_ids("check", &req.check)
            .map_err(|e| v.add("check", e.message().to_owned()))
            .ok();
        v.finish()?;
        let reason = req.reason.trim().to_owned();
        let check = self
            .decide(caller, &req.check, move |_| {
                Ok(match decision {
                    Decision::Pass => (
                        CheckState::Passed,
                        "REVIEWER_PASSED".to_owned(),
                        if reason.is_empty() {
                            "Passed by a reviewer.".to_owned()
                        } else {
                            reason
                        },
                        None,
                    ),
                    _ => (
                        CheckState::Rejected,
                        "REVIEWER_REJECTED".to_owned(),
                        reason,
                        None,
                    ),
                })
            })
            .await?;
        Ok(Response::new(check))
    }
}

/// The proto account status enum (the handler's `Status` is tonic's).
type Status_ = partnerhub_proto::verification::v1::Status;
