//! Cases and checks in the database: opening a case runs its automatic
//! checks; every transition is kept as history, emits `CheckStatusChanged`,
//! and recomputes the account's status (emitting
//! `VerificationStatusChanged` when it moves). Everything happens in the
//! caller's transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_proto::notification::v1::SendMail;
use partnerhub_proto::verification::v1::{
    CheckKind, CheckStatus, CheckStatusChanged, DocumentsRequested, Status as VerificationState,
    SubStatus, VerificationStatusChanged,
};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::address::{self, PostalAddress, Validation};
use crate::directory::{self, BusinessDirectory, DirectoryError, Verdict};
use crate::domain::{self, CheckState, CheckView, Kind};
use crate::email_rules::{self, EmailFinding};

/// Source name of verification's events.
pub const SOURCE: &str = "verification";
/// The actor of automatic transitions.
pub const SYSTEM: &str = "verification";

/// Why the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The business directory failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// What a case checks.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// Legal name (or a location's business name).
    pub name: String,
    /// Address.
    pub address: PostalAddress,
    /// Primary contact's email.
    pub email: String,
    /// Domains known to be the company's.
    pub company_domains: Vec<String>,
    /// DUNS number given at enrollment, if any.
    pub duns: String,
    /// The legal name, for mails.
    pub legal_name: String,
}

/// A check row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckRow {
    /// Id.
    pub id: Uuid,
    /// Case.
    pub case_id: Uuid,
    /// Account.
    pub account_id: Uuid,
    /// Kind (stored name).
    pub kind: String,
    /// Status (stored name).
    pub status: String,
    /// Why.
    pub reason: String,
    /// Said to the partner.
    pub message: String,
    /// Waiting for a reviewer.
    pub in_review: bool,
    /// Appeals used.
    pub appeals: i32,
    /// Documents asked for.
    pub requested_documents: Vec<String>,
    /// Findings.
    pub details: serde_json::Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Re-run by a newer case.
    pub superseded: bool,
    /// Since when it waits for a reviewer.
    pub review_since: Option<DateTime<Utc>>,
}

/// Columns of [`CheckRow`].
pub const CHECK_COLUMNS: &str = "id, case_id, account_id, kind, status, reason, message, in_review,
    appeals, requested_documents, details, updated_at, superseded, review_since";

/// `accounts/{a}/verifications/{v}/checks/{c}`.
pub fn check_name(row: &CheckRow) -> String {
    format!(
        "accounts/{}/verifications/{}/checks/{}",
        row.account_id, row.case_id, row.id
    )
}

/// The proto kind of a stored kind.
pub fn proto_kind(kind: &str) -> CheckKind {
    CheckKind::from_str_name(&format!("CHECK_KIND_{kind}")).unwrap_or_default()
}

/// The proto status of a stored status.
pub fn proto_status(status: &str) -> CheckStatus {
    CheckStatus::from_str_name(&format!("CHECK_STATUS_{status}")).unwrap_or_default()
}

/// A new check's outcome.
#[derive(Debug, Clone)]
struct Outcome {
    state: CheckState,
    reason: String,
    message: String,
    in_review: bool,
    documents: Vec<&'static str>,
    details: serde_json::Value,
}

impl Outcome {
    fn new(state: CheckState, reason: &str, message: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.to_owned(),
            message: message.into(),
            in_review: false,
            documents: Vec::new(),
            details: json!({}),
        }
    }
    fn documents(mut self, documents: &[&'static str]) -> Self {
        self.documents = documents.to_vec();
        self
    }
    fn review(mut self) -> Self {
        self.in_review = true;
        self
    }
    fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

const BUSINESS_DOCUMENTS: &[&str] = &[
    "BUSINESS_REGISTRATION",
    "TAX_CERTIFICATE",
    "UTILITY_RECEIPT",
];
const EMPLOYMENT_DOCUMENTS: &[&str] = &["DOMAIN_OWNERSHIP_PROOF", "EMPLOYMENT_LETTER"];

/// Opens cases and moves checks.
#[derive(Debug, Clone)]
pub struct Engine {
    directory: Arc<dyn BusinessDirectory>,
    token_ttl: Duration,
}

impl Engine {
    /// An engine matching businesses in `directory`, mailing tokens that
    /// live `token_ttl`.
    pub fn new(directory: Arc<dyn BusinessDirectory>, token_ttl: Duration) -> Self {
        Self {
            directory,
            token_ttl,
        }
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<dyn BusinessDirectory> {
        &self.directory
    }

    /// How long an email token works.
    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Opens a case of `kinds` for `account` (once per `source_key`),
    /// supersedes the same kinds in older open cases, runs the automatic
    /// checks and updates the status.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_case(
        &self,
        tx: &mut PgConnection,
        account: Uuid,
        source_key: &str,
        trigger: &str,
        location: &str,
        kinds: &[Kind],
        subject: &Subject,
    ) -> Result<Option<Uuid>, EngineError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        // Decide every outcome first: the directory may fail, and nothing
        // is then written.
        let mut outcomes = Vec::new();
        // The business check first: a clear directory match vouches for the
        // web domain the directory records for the company.
        let business = if kinds.contains(&Kind::Business) {
            Some(self.business(subject).await?)
        } else {
            None
        };
        let mut domains = subject.company_domains.clone();
        let vouched = business.as_ref().and_then(|(_, d)| d.clone());
        domains.extend(vouched.clone());
        let email = email_rules::check(&subject.email, &domains);
        for kind in kinds {
            let outcome = match kind {
                Kind::EmailOwnership => Outcome::new(
                    CheckState::ActionRequired,
                    "CONFIRM_EMAIL",
                    format!(
                        "Confirm the primary contact's email with the link mailed to {}.",
                        subject.email
                    ),
                ),
                Kind::EmailDomain => match &email {
                    EmailFinding::Refused { reason, message } => {
                        Outcome::new(CheckState::Rejected, reason, message.clone())
                    }
                    _ => Outcome::new(
                        CheckState::Passed,
                        "BUSINESS_DOMAIN",
                        "A business email domain.",
                    ),
                },
                Kind::Employment => match &email {
                    EmailFinding::Owned => Outcome::new(
                        CheckState::Passed,
                        "DOMAIN_OWNED",
                        "The email domain is the company's.",
                    ),
                    EmailFinding::NeedsDocuments { reason, message } => {
                        Outcome::new(CheckState::ActionRequired, reason, message.clone())
                            .documents(EMPLOYMENT_DOCUMENTS)
                    }
                    // A refused address is not the company's either: the
                    // check asks for proof, so it never waits on nobody.
                    EmailFinding::Refused { .. } => Outcome::new(
                        CheckState::ActionRequired,
                        email_rules::DOMAIN_NOT_OWNED,
                        "The primary contact's email is not on a domain of the company: change the contact or prove the employment.",
                    )
                    .documents(EMPLOYMENT_DOCUMENTS),
                },
                Kind::Business => business
                    .clone()
                    .map(|(outcome, _)| outcome)
                    .unwrap_or_else(|| Outcome::new(CheckState::Pending, "", "")),
                Kind::Address => address_outcome(&subject.address),
            };
            outcomes.push((*kind, outcome));
        }
        let case = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO cases (id, account_id, source_key, trigger, location) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (source_key) DO NOTHING",
        )
        .bind(case)
        .bind(account)
        .bind(source_key)
        .bind(trigger)
        .bind(location)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        // The same kinds in older open cases no longer count (for a
        // location case, only that location's).
        let kind_names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let superseded: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE checks SET superseded = true, updated_at = now()
             WHERE account_id = $1 AND case_id <> $2 AND NOT superseded AND kind = ANY($3)
               AND status <> 'PASSED'
               AND case_id IN (SELECT id FROM cases WHERE account_id = $1 AND state = 'OPEN' AND location = $4)
             RETURNING id",
        )
        .bind(account)
        .bind(case)
        .bind(&kind_names)
        .bind(location)
        .fetch_all(&mut *tx)
        .await?;
        if !superseded.is_empty() {
            sqlx::query("UPDATE email_tokens SET revoked_at = now() WHERE check_id = ANY($1) AND used_at IS NULL")
                .bind(&superseded)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(domain) = &vouched {
            sqlx::query("UPDATE accounts SET directory_domain = $2 WHERE account_id = $1")
                .bind(account)
                .bind(domain)
                .execute(&mut *tx)
                .await?;
        }
        for (kind, outcome) in outcomes {
            let check = self.insert_check(tx, case, account, kind, &outcome).await?;
            if kind == Kind::EmailOwnership {
                self.mail_token(tx, check, account, &subject.email, &subject.legal_name)
                    .await?;
            }
        }
        close_finished_cases(tx, account).await?;
        refresh_status(tx, account, Some(case)).await?;
        Ok(Some(case))
    }

    /// The business check's outcome and, on a clear match, the web domain
    /// the directory records for the company.
    async fn business(&self, subject: &Subject) -> Result<(Outcome, Option<String>), EngineError> {
        let a = &subject.address;
        let found = if !subject.duns.is_empty() {
            self.directory
                .lookup(&subject.duns)
                .await?
                .map(|c| (c, None))
        } else {
            self.directory
                .search(&subject.name, &a.country, 1)
                .await?
                .into_iter()
                .next()
                .map(|(c, s)| (c, Some(s)))
        };
        let Some((company, _)) = found else {
            return Ok((
                if subject.duns.is_empty() {
                    Outcome::new(
                        CheckState::Pending,
                        "MANUAL_ENTRY",
                        "Entered by hand: a reviewer checks the company.",
                    )
                    .review()
                } else {
                    Outcome::new(
                        CheckState::ActionRequired,
                        "DUNS_NOT_FOUND",
                        format!("No company with DUNS number {} was found.", subject.duns),
                    )
                    .documents(BUSINESS_DOCUMENTS)
                },
                None,
            ));
        };
        let score = directory::score(
            &company,
            &subject.name,
            &a.line1,
            &a.city,
            &a.postal_code,
            &a.country,
        );
        let details = json!({
            "duns": company.duns,
            "directory_name": company.name,
            "name_score": score.name,
            "address_score": score.address,
            "overall": score.overall,
        });
        let verdict = directory::verdict(&score);
        let vouched = (verdict == Verdict::Clear && !company.domain.is_empty())
            .then(|| company.domain.clone());
        let outcome = match verdict {
            Verdict::Clear => Outcome::new(
                CheckState::Passed,
                "DIRECTORY_MATCH",
                format!("Matches {} (DUNS {}).", company.name, company.duns),
            ),
            Verdict::Weak => Outcome::new(
                CheckState::ActionRequired,
                "WEAK_MATCH",
                format!(
                    "Only a weak match with {} (DUNS {}): send documents proving the company and its address.",
                    company.name, company.duns
                ),
            )
            .documents(BUSINESS_DOCUMENTS),
            Verdict::NoMatch if subject.duns.is_empty() => Outcome::new(
                CheckState::Pending,
                "MANUAL_ENTRY",
                "No directory match: a reviewer checks the company.",
            )
            .review(),
            Verdict::NoMatch => Outcome::new(
                CheckState::ActionRequired,
                "NO_MATCH",
                format!(
                    "The company does not match DUNS {}: correct the name and address or send documents.",
                    company.duns
                ),
            )
            .documents(BUSINESS_DOCUMENTS),
        }
        .details(details);
        Ok((outcome, vouched))
    }

    async fn insert_check(
        &self,
        tx: &mut PgConnection,
        case: Uuid,
        account: Uuid,
        kind: Kind,
        outcome: &Outcome,
    ) -> Result<Uuid, EngineError> {
        let id = Uuid::now_v7();
        let documents: Vec<String> = outcome.documents.iter().map(|d| (*d).to_owned()).collect();
        sqlx::query(
            "INSERT INTO checks (id, case_id, account_id, kind, status, reason, message, in_review,
                 requested_documents, details, review_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $8 THEN now() END)",
        )
        .bind(id)
        .bind(case)
        .bind(account)
        .bind(kind.as_str())
        .bind(outcome.state.as_str())
        .bind(&outcome.reason)
        .bind(&outcome.message)
        .bind(outcome.in_review)
        .bind(&documents)
        .bind(&outcome.details)
        .execute(&mut *tx)
        .await?;
        history(
            tx,
            id,
            "PENDING",
            outcome.state.as_str(),
            &outcome.reason,
            SYSTEM,
        )
        .await?;
        let row = check(tx, id).await?;
        check_event(tx, &row, CheckStatus::Unspecified).await?;
        if !documents.is_empty() {
            documents_requested(tx, &row, &documents, &outcome.message).await?;
        }
        Ok(id)
    }

    /// Mails a new email-ownership token for `check` (revoking older ones).
    pub async fn mail_token(
        &self,
        tx: &mut PgConnection,
        check: Uuid,
        account: Uuid,
        email: &str,
        legal_name: &str,
    ) -> Result<DateTime<Utc>, EngineError> {
        sqlx::query("UPDATE email_tokens SET revoked_at = now() WHERE check_id = $1 AND used_at IS NULL AND revoked_at IS NULL")
            .bind(check)
            .execute(&mut *tx)
            .await?;
        let token = partnerhub_platform::crypto::token();
        let expires = Utc::now()
            + chrono::Duration::from_std(self.token_ttl).unwrap_or(chrono::Duration::days(3));
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, check_id, account_id, email, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(partnerhub_platform::crypto::token_hash(&token))
        .bind(check)
        .bind(account)
        .bind(email)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        let account_name = format!("accounts/{account}");
        let mail = SendMail {
            template: "verification.email_ownership".into(),
            to: email.to_owned(),
            locale: String::new(),
            params: [
                ("token".to_owned(), token),
                ("legal_name".to_owned(), legal_name.to_owned()),
                (
                    "expires_hours".to_owned(),
                    (self.token_ttl.as_secs() / 3600).to_string(),
                ),
            ]
            .into(),
            user: String::new(),
            account: account_name.clone(),
            dedup_key: format!("email_ownership:{}", Uuid::now_v7()),
        };
        outbox::send_command(tx, SOURCE, "notification", &account_name, &mail).await?;
        Ok(Utc::now())
    }
}

fn address_outcome(address: &PostalAddress) -> Outcome {
    match address::validate(address) {
        Validation::NotCovered | Validation::Valid => Outcome::new(
            CheckState::Passed,
            "ADDRESS_VALID",
            "The address follows the postal authority's format.",
        ),
        Validation::Suggested(s) => Outcome::new(
            CheckState::ActionRequired,
            "ADDRESS_NOT_STANDARD",
            "Update the address to the postal authority's format suggested.",
        )
        .details(json!({ "suggested_address": {
            "line1": s.line1, "line2": s.line2, "city": s.city, "state": s.state,
            "postal_code": s.postal_code, "country": s.country,
        }})),
        Validation::Invalid(problems) => Outcome::new(
            CheckState::ActionRequired,
            "ADDRESS_INVALID",
            problems
                .iter()
                .map(|(field, problem)| format!("{field}: {problem}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

async fn history(
    tx: &mut PgConnection,
    check: Uuid,
    old: &str,
    new: &str,
    reason: &str,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO check_history (check_id, old_status, new_status, reason, actor) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(check)
    .bind(old)
    .bind(new)
    .bind(reason)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Reads a check.
pub async fn check(tx: &mut PgConnection, id: Uuid) -> Result<CheckRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CHECK_COLUMNS} FROM checks WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await
}

async fn check_event(
    tx: &mut PgConnection,
    row: &CheckRow,
    old: CheckStatus,
) -> Result<(), sqlx::Error> {
    outbox::publish_event(
        tx,
        SOURCE,
        &check_name(row),
        &CheckStatusChanged {
            account: format!("accounts/{}", row.account_id),
            check: check_name(row),
            kind: proto_kind(&row.kind).into(),
            old_status: old.into(),
            status: proto_status(&row.status).into(),
            reason: row.reason.clone(),
            change_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    Ok(())
}

async fn documents_requested(
    tx: &mut PgConnection,
    row: &CheckRow,
    documents: &[String],
    reason: &str,
) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    outbox::publish_event(
        tx,
        SOURCE,
        &check_name(row),
        &DocumentsRequested {
            account: format!("accounts/{}", row.account_id),
            verification: format!("accounts/{}/verifications/{}", row.account_id, row.case_id),
            check: row.kind.to_lowercase(),
            document_types: documents.iter().map(|d| d.to_lowercase()).collect(),
            reason: reason.to_owned(),
            request_time: Some(timestamp(now)),
            due_time: Some(timestamp(now + chrono::Duration::days(30))),
        },
    )
    .await?;
    Ok(())
}

/// A change of one check.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    /// New status.
    pub state: CheckState,
    /// Why.
    pub reason: &'a str,
    /// Said to the partner.
    pub message: &'a str,
    /// Waiting for a reviewer afterwards.
    pub in_review: bool,
    /// Documents asked for (replacing earlier ones) when set.
    pub documents: Option<Vec<String>>,
    /// Counts as an appeal.
    pub appeal: bool,
    /// Who.
    pub actor: &'a str,
}

/// Moves a check (locked by the caller with `FOR UPDATE`), keeps the
/// history, emits its event (and a documents request), closes finished
/// cases and refreshes the account's status.
pub async fn transition(
    tx: &mut PgConnection,
    before: &CheckRow,
    change: Move<'_>,
) -> Result<CheckRow, sqlx::Error> {
    sqlx::query(
        "UPDATE checks SET status = $2, reason = $3, message = $4, in_review = $5,
             requested_documents = coalesce($6, requested_documents),
             appeals = appeals + CASE WHEN $7 THEN 1 ELSE 0 END,
             review_since = CASE WHEN $5 THEN coalesce(review_since, now()) END,
             version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(before.id)
    .bind(change.state.as_str())
    .bind(change.reason)
    .bind(change.message)
    .bind(change.in_review)
    .bind(&change.documents)
    .bind(change.appeal)
    .execute(&mut *tx)
    .await?;
    history(
        tx,
        before.id,
        &before.status,
        change.state.as_str(),
        change.reason,
        change.actor,
    )
    .await?;
    let row = check(tx, before.id).await?;
    check_event(tx, &row, proto_status(&before.status)).await?;
    if let Some(documents) = change.documents.as_ref().filter(|d| !d.is_empty()) {
        documents_requested(tx, &row, documents, change.message).await?;
    }
    close_finished_cases(tx, row.account_id).await?;
    refresh_status(tx, row.account_id, Some(row.case_id)).await?;
    Ok(row)
}

/// Closes the open cases whose counting checks all passed.
async fn close_finished_cases(tx: &mut PgConnection, account: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cases SET state = 'CLOSED', closed_at = now()
         WHERE account_id = $1 AND state = 'OPEN'
           AND NOT EXISTS (SELECT 1 FROM checks
                           WHERE checks.case_id = cases.id AND NOT superseded AND status <> 'PASSED')",
    )
    .bind(account)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Recomputes the account's status from the checks that count; records and
/// announces a change.
pub async fn refresh_status(
    tx: &mut PgConnection,
    account: Uuid,
    case: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    // Serialise status changes of one account.
    let current: Option<(String, String)> = sqlx::query_as(
        "SELECT status, sub_status FROM account_status WHERE account_id = $1 FOR UPDATE",
    )
    .bind(account)
    .fetch_optional(&mut *tx)
    .await?;
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.kind, c.status, c.in_review FROM checks c JOIN cases k ON k.id = c.case_id
         WHERE c.account_id = $1 AND k.account_id = $1 AND k.state = 'OPEN' AND NOT c.superseded",
    )
    .bind(account)
    .fetch_all(&mut *tx)
    .await?;
    let views: Vec<CheckView> = rows
        .iter()
        .filter_map(|(kind, status, in_review)| {
            Some(CheckView {
                kind: Kind::parse(kind)?,
                state: CheckState::parse(status)?,
                in_review: *in_review,
            })
        })
        .collect();
    let (status, sub_status) = match domain::account_status(&views) {
        Some(s) => s,
        // No open case: every case passed.
        None if current.is_some() => ("AUTHORIZED", "DECISION"),
        None => return Ok(()),
    };
    let (old_status, old_sub) = current.unwrap_or_else(|| ("NONE".into(), String::new()));
    if old_status == status && old_sub == sub_status {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO account_status (account_id, status, sub_status, updated_at, rejected_at)
         VALUES ($1, $2, $3, now(), CASE WHEN $2 = 'REJECTED' THEN now() END)
         ON CONFLICT (account_id) DO UPDATE SET
             status = EXCLUDED.status, sub_status = EXCLUDED.sub_status, updated_at = now(),
             rejected_at = CASE WHEN EXCLUDED.status <> 'REJECTED' THEN NULL
                                ELSE coalesce(account_status.rejected_at, now()) END,
             suspension_requested_at = CASE WHEN EXCLUDED.status <> 'REJECTED' THEN NULL
                                ELSE account_status.suspension_requested_at END",
    )
    .bind(account)
    .bind(status)
    .bind(sub_status)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO status_history (account_id, old_status, status, sub_status, case_id)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account)
    .bind(&old_status)
    .bind(status)
    .bind(sub_status)
    .bind(case)
    .execute(&mut *tx)
    .await?;
    let account_name = format!("accounts/{account}");
    let state =
        |s: &str| VerificationState::from_str_name(&format!("STATUS_{s}")).unwrap_or_default();
    outbox::publish_event(
        tx,
        SOURCE,
        &account_name,
        &VerificationStatusChanged {
            account: account_name.clone(),
            old_status: state(&old_status).into(),
            status: state(status).into(),
            sub_status: SubStatus::from_str_name(&format!("SUB_STATUS_{sub_status}"))
                .unwrap_or_default()
                .into(),
            verification: case
                .map(|c| format!("{account_name}/verifications/{c}"))
                .unwrap_or_default(),
            change_time: Some(timestamp(Utc::now())),
        },
    )
    .await?;
    tracing::info!(%account, from = %old_status, to = status, sub_status, "Verification status changed.");
    Ok(())
}
