//! Notification's gRPC services: a user's notifications and preferences
//! (their own only), and an account's delivery record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::error::{self, FieldViolation, invalid_argument};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{etag, page};
use partnerhub_proto::notification::v1::notification_service_server::NotificationService;
use partnerhub_proto::notification::v1::*;
use sqlx::{AssertSqlSafe, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog::{self, LOCALES};
use crate::outbound::{Mail, Outbound, delivery_name, short};
use crate::projection::{Address, Target};
use crate::templates::Templates;

/// Minutes between two verification mails to an address a user typed, per
/// user and per address.
const CHANGE_INTERVAL_MINUTES: i64 = 5;
/// Verification mails per account an hour (whichever of its users asks).
const ACCOUNT_MAILS_PER_HOUR: i64 = 10;

/// Records a verification mail from `user` (signed in to `account`) to
/// `address`, or refuses it: one per user and one per address every
/// [`CHANGE_INTERVAL_MINUTES`], [`ACCOUNT_MAILS_PER_HOUR`] per account. The
/// record is its own table, so blanking the address or verifying it in
/// between resets nothing.
async fn reserve_verification_mail(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    account: Option<Uuid>,
    address: &str,
) -> Result<(), Status> {
    let address = address.trim().to_lowercase();
    // One at a time: two users racing to the same address (or two users of
    // one account) must not both pass. Verification mails are rare.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('notification.verification_mails'))")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM verification_mails WHERE sent_at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    #[derive(sqlx::FromRow)]
    struct Recent {
        by_user: Option<DateTime<Utc>>,
        by_address: Option<DateTime<Utc>>,
        account_count: i64,
        account_oldest: Option<DateTime<Utc>>,
    }
    let Recent {
        by_user,
        by_address,
        account_count,
        account_oldest,
    } = sqlx::query_as(
        "SELECT max(sent_at) FILTER (WHERE user_id = $1) AS by_user,
                max(sent_at) FILTER (WHERE address = $3) AS by_address,
                count(*) FILTER (WHERE account_id = $2) AS account_count,
                min(sent_at) FILTER (WHERE account_id = $2) AS account_oldest
         FROM verification_mails
         WHERE sent_at > now() - interval '1 hour'
           AND (user_id = $1 OR address = $3 OR account_id = $2)",
    )
    .bind(user)
    .bind(account)
    .bind(&address)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let now = Utc::now();
    let interval = chrono::Duration::minutes(CHANGE_INTERVAL_MINUTES);
    let too_soon = |next: DateTime<Utc>, message: String| {
        error::rate_limited(
            "EMAIL_CHANGE_TOO_SOON",
            message,
            (next - now).to_std().unwrap_or_default(),
        )
    };
    if let Some(last) = by_user
        && last + interval > now
    {
        return Err(too_soon(
            last + interval,
            format!("a verification mail was sent less than {CHANGE_INTERVAL_MINUTES} minutes ago"),
        ));
    }
    if let Some(last) = by_address
        && last + interval > now
    {
        return Err(too_soon(
            last + interval,
            format!(
                "this address was sent a verification mail less than {CHANGE_INTERVAL_MINUTES} minutes ago"
            ),
        ));
    }
    if account.is_some()
        && account_count >= ACCOUNT_MAILS_PER_HOUR
        && let Some(oldest) = account_oldest
    {
        return Err(too_soon(
            oldest + chrono::Duration::hours(1),
            format!(
                "the account's users were sent {ACCOUNT_MAILS_PER_HOUR} verification mails in the last hour"
            ),
        ));
    }
    sqlx::query(
        "INSERT INTO verification_mails (id, user_id, account_id, address) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(account)
    .bind(&address)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// The caller's active account, as an id.
fn active_account(caller: &Caller) -> Option<Uuid> {
    caller
        .account
        .as_deref()
        .and_then(|a| Uuid::try_parse(a).ok())
}

/// Notification's handlers.
#[derive(Debug, Clone)]
pub struct Notifications {
    pool: PgPool,
    outbound: Arc<Outbound>,
    email_token_ttl: Duration,
}

impl Notifications {
    /// Handlers over `pool`, mailing through `outbound`.
    pub fn new(pool: PgPool, outbound: Arc<Outbound>, email_token_ttl: Duration) -> Self {
        Self {
            pool,
            outbound,
            email_token_ttl,
        }
    }
}

/// An enum filter of a list request: `None` for UNSPECIFIED (any), the
/// stored name otherwise, a violation for a value the enum does not have.
fn filter<E>(
    v: &mut Violations,
    field: &str,
    name: Result<&'static str, E>,
    prefix: &str,
) -> Option<String> {
    match name {
        Err(_) => {
            v.add(field, "is not one of the enum's values");
            None
        }
        Ok(n) if n.ends_with("_UNSPECIFIED") => None,
        Ok(n) => Some(short(n, prefix).to_owned()),
    }
}

fn db(e: sqlx::Error) -> Status {
    error::from_sqlx(&e)
}

/// The user a `users/{u}` name (or `users/me`) designates, who must be the
/// caller.
fn own_user(caller: &Caller, field: &str, name: &str) -> Result<Uuid, Status> {
    let id = if name == "users/me" {
        caller.user_id().unwrap_or_default().to_owned()
    } else {
        validate::resource_id(name, "users")
            .map_err(|e| invalid_argument(vec![FieldViolation::new(field, e)]))?
            .to_owned()
    };
    caller.require_self(&id)?;
    id.parse().map_err(|_| error::not_found("user", name))
}

/// `users/{u}/preferences` → the caller's id.
fn own_preferences(caller: &Caller, field: &str, name: &str) -> Result<Uuid, Status> {
    let user = name.strip_suffix("/preferences").ok_or_else(|| {
        invalid_argument(vec![FieldViolation::new(
            field,
            "must be `users/{user}/preferences`",
        )])
    })?;
    own_user(caller, field, user)
}

/// `users/{u}/notifications/{n}` → (user, notification), the user being
/// the caller.
fn own_notification(caller: &Caller, name: &str) -> Result<(Uuid, Uuid), Status> {
    let bad = || {
        invalid_argument(vec![FieldViolation::new(
            "name",
            "must be `users/{user}/notifications/{notification}`",
        )])
    };
    let (user, rest) = name.split_once("/notifications/").ok_or_else(bad)?;
    let user = own_user(caller, "name", user)?;
    let id = Uuid::try_parse(rest).map_err(|_| bad())?;
    Ok((user, id))
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    user_id: Uuid,
    account_id: Option<Uuid>,
    kind: String,
    workspace: String,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
    due_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    archived_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    link: String,
}

const NOTIFICATION_COLUMNS: &str =
    "id, user_id, account_id, kind, workspace, title, body, created_at,
    due_at, read_at, archived_at, resolved_at, link";

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Self {
        Notification {
            name: format!("users/{}/notifications/{}", r.user_id, r.id),
            kind: Kind::from_str_name(&format!("KIND_{}", r.kind)).unwrap_or_default() as i32,
            workspace: Workspace::from_str_name(&format!("WORKSPACE_{}", r.workspace))
                .unwrap_or_default() as i32,
            title: r.title,
            body: r.body,
            account: r
                .account_id
                .map(|a| format!("accounts/{a}"))
                .unwrap_or_default(),
            create_time: Some(timestamp(r.created_at)),
            due_time: r.due_at.map(timestamp),
            read_time: r.read_at.map(timestamp),
            archive_time: r.archived_at.map(timestamp),
            resolve_time: r.resolved_at.map(timestamp),
            link: r.link,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PreferencesRow {
    job_title: String,
    email_language: String,
    notification_email: String,
    pending_email: String,
    email_opt_outs: Vec<String>,
    workspace_opt_outs: Vec<String>,
    alternate_verified_email: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl Notifications {
    async fn preferences_row(&self, user: Uuid) -> Result<PreferencesRow, Status> {
        let row: Option<PreferencesRow> = sqlx::query_as(
            "SELECT job_title, email_language, notification_email, pending_email, email_opt_outs,
                    workspace_opt_outs, alternate_verified_email, version, updated_at
             FROM preferences WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.unwrap_or(PreferencesRow {
            job_title: String::new(),
            email_language: String::new(),
            notification_email: String::new(),
            pending_email: String::new(),
            email_opt_outs: Vec::new(),
            workspace_opt_outs: Vec::new(),
            alternate_verified_email: String::new(),
            version: 0,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }))
    }

    async fn preferences(&self, user: Uuid) -> Result<Preferences, Status> {
        let row = self.preferences_row(user).await?;
        let known: Option<(String, String)> =
            sqlx::query_as("SELECT locale, alternate_email FROM recipients WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let (locale, alternate_email) = known.unwrap_or_default();
        let language = if row.email_language.is_empty() {
            Templates::resolve_locale(&locale).to_owned()
        } else {
            row.email_language
        };
        let alternate_email_verified = !alternate_email.is_empty()
            && row
                .alternate_verified_email
                .eq_ignore_ascii_case(&alternate_email);
        Ok(Preferences {
            name: format!("users/{user}/preferences"),
            job_title: row.job_title,
            email_language: language,
            notification_email: row.notification_email,
            pending_notification_email: row.pending_email,
            email_opt_outs: row
                .email_opt_outs
                .iter()
                .filter_map(|c| Category::from_str_name(&format!("CATEGORY_{c}")))
                .map(|c| c as i32)
                .collect(),
            workspace_opt_outs: row
                .workspace_opt_outs
                .iter()
                .filter_map(|w| Workspace::from_str_name(&format!("WORKSPACE_{w}")))
                .map(|w| w as i32)
                .collect(),
            in_portal_opt_out: false,
            etag: etag::of(row.version),
            update_time: (row.version > 0).then(|| timestamp(row.updated_at)),
            alternate_email,
            alternate_email_verified,
        })
    }

    /// Queues `message` carrying `token` to `target` (in the user's email
    /// language when they chose one), in `tx`.
    async fn mail_token(
        &self,
        tx: &mut sqlx::PgConnection,
        user: Uuid,
        target: &Target,
        token: String,
        message: &'static catalog::Message,
    ) -> Result<(), Status> {
        // In this transaction: a second connection from the pool here could
        // wait on the one this transaction holds.
        let language: String =
            sqlx::query_scalar("SELECT email_language FROM preferences WHERE user_id = $1")
                .bind(user)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let mut target = target.clone();
        if !language.is_empty() {
            target.locale = language;
        }
        let params: BTreeMap<String, String> = [
            ("token".to_owned(), token),
            ("given_name".to_owned(), target.name.clone()),
            (
                "expires_hours".to_owned(),
                (self.email_token_ttl.as_secs() / 3600).to_string(),
            ),
        ]
        .into();
        let source_key = format!("verify_email:{}", Uuid::now_v7());
        let mail = Mail {
            source_key: &source_key,
            message,
            account: None,
            params: &params,
            address: Address::Preferred,
        };
        self.outbound
            .mail(tx, &mail, &target)
            .await
            .map(drop)
            .map_err(|e| error::internal(&e))
    }

    async fn list_deliveries_page(
        &self,
        caller: &Caller,
        req: ListDeliveriesRequest,
    ) -> Result<ListDeliveriesResponse, Status> {
        let account = validate::resource_id(&req.parent, "accounts")
            .ok()
            .and_then(|a| Uuid::try_parse(a).ok())
            .ok_or_else(|| {
                invalid_argument(vec![FieldViolation::new(
                    "parent",
                    "must be `accounts/{account}`",
                )])
            })?;
        caller.require(perm::DELIVERIES_READ, &account.to_string())?;
        let mut v = Violations::new();
        let status = filter(
            &mut v,
            "status",
            DeliveryStatus::try_from(req.status).map(|s| s.as_str_name()),
            "DELIVERY_STATUS_",
        );
        let page = page::Keyset::<(DateTime<Utc>, Uuid)>::read(
            &mut v,
            req.page_size,
            &req.page_token,
            &[&req.parent, status.as_deref().unwrap_or("")],
        );
        v.finish()?;
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            template: String,
            recipient: String,
            user_id: Option<Uuid>,
            locale: String,
            status: String,
            attempts: i32,
            last_error: String,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
        }
        let mut rows: Vec<Row> = sqlx::query_as(
            "SELECT id, template, recipient, user_id, locale, status, attempts, last_error,
                    created_at, updated_at
             FROM deliveries
             WHERE account_id = $1 AND ($2::text IS NULL OR status = $2)
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(account)
        .bind(&status)
        .bind(page.after.map(|a| a.0))
        .bind(page.after.map(|a| a.1))
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let next_page_token = page.finish(&mut rows, |last| (last.created_at, last.id));
        Ok(ListDeliveriesResponse {
            deliveries: rows
                .into_iter()
                .map(|r| Delivery {
                    name: delivery_name(Some(account), r.id),
                    template: r.template,
                    recipient: r.recipient,
                    user: r.user_id.map(|u| format!("users/{u}")).unwrap_or_default(),
                    locale: r.locale,
                    status: DeliveryStatus::from_str_name(&format!("DELIVERY_STATUS_{}", r.status))
                        .unwrap_or_default() as i32,
                    attempts: r.attempts,
                    last_error: r.last_error,
                    create_time: Some(timestamp(r.created_at)),
                    update_time: Some(timestamp(r.updated_at)),
                })
                .collect(),
            next_page_token,
        })
    }
}

/// Checks an update of preferences; returns the stored forms of the
/// opt-outs and the canonical language.
fn check_preferences(
    p: &Preferences,
    mask: &[String],
) -> Result<(Vec<String>, Vec<String>, String), Status> {
    let mut v = Violations::new();
    const FIELDS: &[&str] = &[
        "job_title",
        "email_language",
        "email_opt_outs",
        "workspace_opt_outs",
        "in_portal_opt_out",
    ];
    for path in mask {
        if !FIELDS.contains(&path.as_str()) {
            v.add("update_mask", format!("`{path}` cannot be updated here"));
        }
    }
    let touched = |f: &str| mask.is_empty() || mask.iter().any(|m| m == f);
    if touched("job_title") {
        v.check(
            "preferences.job_title",
            validate::text(&p.job_title, 0, 100),
        );
    }
    let mut language = String::new();
    if touched("email_language") {
        match LOCALES
            .iter()
            .find(|l| l.eq_ignore_ascii_case(p.email_language.trim()))
        {
            Some(l) => language = (*l).to_owned(),
            None => v.add(
                "preferences.email_language",
                format!("must be one of {}", LOCALES.join(", ")),
            ),
        }
    }
    let mut categories = Vec::new();
    if touched("email_opt_outs") {
        for (i, c) in p.email_opt_outs.iter().enumerate() {
            let field = format!("preferences.email_opt_outs[{i}]");
            match Category::try_from(*c) {
                Ok(Category::Transactional | Category::Promotional) => {
                    categories.push(
                        short(
                            Category::try_from(*c).unwrap_or_default().as_str_name(),
                            "CATEGORY_",
                        )
                        .to_owned(),
                    );
                }
                Ok(Category::Action) => v.add(
                    field,
                    "mail about mandatory and recommended actions cannot be turned off",
                ),
                Ok(Category::Security) => v.add(field, "security mail cannot be turned off"),
                _ => v.add(field, "is not a mail category"),
            }
        }
    }
    let mut workspaces = Vec::new();
    if touched("workspace_opt_outs") {
        for (i, w) in p.workspace_opt_outs.iter().enumerate() {
            match Workspace::try_from(*w) {
                Ok(Workspace::Unspecified) | Err(_) => v.add(
                    format!("preferences.workspace_opt_outs[{i}]"),
                    "is not a workspace",
                ),
                Ok(w) => workspaces.push(short(w.as_str_name(), "WORKSPACE_").to_owned()),
            }
        }
    }
    if touched("in_portal_opt_out") && p.in_portal_opt_out {
        v.add(
            "preferences.in_portal_opt_out",
            "in-portal notifications cannot be turned off",
        );
    }
    v.finish()?;
    categories.sort();
    categories.dedup();
    workspaces.sort();
    workspaces.dedup();
    Ok((categories, workspaces, language))
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let user = own_user(caller, "parent", &req.parent)?;
        let mut v = Violations::new();
        let kind = filter(
            &mut v,
            "kind",
            Kind::try_from(req.kind).map(|k| k.as_str_name()),
            "KIND_",
        );
        let workspace = filter(
            &mut v,
            "workspace",
            Workspace::try_from(req.workspace).map(|w| w.as_str_name()),
            "WORKSPACE_",
        );
        let page = page::Keyset::<(DateTime<Utc>, Uuid)>::read(
            &mut v,
            req.page_size,
            &req.page_token,
            &[
                &user.to_string(),
                &req.unread_only.to_string(),
                kind.as_deref().unwrap_or(""),
                workspace.as_deref().unwrap_or(""),
                &req.show_archived.to_string(),
            ],
        );
        v.finish()?;
        let mut rows: Vec<NotificationRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE user_id = $1
               AND (NOT $2 OR read_at IS NULL)
               AND ($3::text IS NULL OR kind = $3)
               AND ($4::text IS NULL OR workspace = $4)
               AND ($5 OR archived_at IS NULL)
               AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))
             ORDER BY created_at DESC, id DESC LIMIT $8"
        )))
        .bind(user)
        .bind(req.unread_only)
        .bind(&kind)
        .bind(&workspace)
        .bind(req.show_archived)
        .bind(page.after.map(|a| a.0))
        .bind(page.after.map(|a| a.1))
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let next_page_token = page.finish(&mut rows, |last| (last.created_at, last.id));
        Ok(Response::new(ListNotificationsResponse {
            notifications: rows.into_iter().map(Notification::from).collect(),
            next_page_token,
        }))
    }

    async fn get_unread_count(
        &self,
        request: Request<GetUnreadCountRequest>,
    ) -> Result<Response<GetUnreadCountResponse>, Status> {
        let caller = caller(&request)?;
        let user = own_user(caller, "parent", &request.get_ref().parent)?;
        let (unread_count, pending_mandatory_actions): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE read_at IS NULL),
                    count(*) FILTER (WHERE kind = 'MANDATORY_ACTION' AND resolved_at IS NULL)
             FROM notifications WHERE user_id = $1 AND archived_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(Response::new(GetUnreadCountResponse {
            unread_count,
            pending_mandatory_actions,
        }))
    }

    async fn mark_notification_read(
        &self,
        request: Request<MarkNotificationReadRequest>,
    ) -> Result<Response<Notification>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let (user, id) = own_notification(caller, name)?;
        let row: Option<NotificationRow> = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE notifications SET read_at = coalesce(read_at, now())
             WHERE user_id = $1 AND id = $2 RETURNING {NOTIFICATION_COLUMNS}"
        )))
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| Response::new(r.into()))
            .ok_or_else(|| error::not_found("notification", name))
    }

    async fn archive_notification(
        &self,
        request: Request<ArchiveNotificationRequest>,
    ) -> Result<Response<Notification>, Status> {
        let caller = caller(&request)?;
        let name = &request.get_ref().name;
        let (user, id) = own_notification(caller, name)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let current: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT kind, resolved_at FROM notifications WHERE user_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((kind, resolved)) = current else {
            return Err(error::not_found("notification", name));
        };
        if kind == "MANDATORY_ACTION" && resolved.is_none() {
            return Err(error::failed_precondition(
                "MANDATORY_ACTION_UNRESOLVED",
                name,
                "a mandatory action cannot be archived until it is done",
            ));
        }
        let row: NotificationRow = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE notifications SET archived_at = coalesce(archived_at, now())
             WHERE user_id = $1 AND id = $2 RETURNING {NOTIFICATION_COLUMNS}"
        )))
        .bind(user)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(row.into()))
    }

    async fn get_preferences(
        &self,
        request: Request<GetPreferencesRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let user = own_preferences(caller, "name", &request.get_ref().name)?;
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn update_preferences(
        &self,
        request: Request<UpdatePreferencesRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let Some(p) = req.preferences.as_ref() else {
            return Err(invalid_argument(vec![FieldViolation::new(
                "preferences",
                "is required",
            )]));
        };
        let user = own_preferences(caller, "preferences.name", &p.name)?;
        let mask: Vec<String> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let (categories, workspaces, language) = check_preferences(p, &mask)?;
        let touched = |f: &str| mask.is_empty() || mask.iter().any(|m| m == f);
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO preferences (user_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM preferences WHERE user_id = $1 FOR UPDATE")
                .bind(user)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if !p.etag.is_empty() {
            etag::check(&p.etag, version, &p.name)?;
        }
        sqlx::query(
            "UPDATE preferences SET
                 job_title = CASE WHEN $2 THEN $3 ELSE job_title END,
                 email_language = CASE WHEN $4 THEN $5 ELSE email_language END,
                 email_opt_outs = CASE WHEN $6 THEN $7 ELSE email_opt_outs END,
                 workspace_opt_outs = CASE WHEN $8 THEN $9 ELSE workspace_opt_outs END,
                 version = version + 1, updated_at = now()
             WHERE user_id = $1",
        )
        .bind(user)
        .bind(touched("job_title"))
        .bind(p.job_title.trim())
        .bind(touched("email_language"))
        .bind(&language)
        .bind(touched("email_opt_outs"))
        .bind(&categories)
        .bind(touched("workspace_opt_outs"))
        .bind(&workspaces)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn change_notification_email(
        &self,
        request: Request<ChangeNotificationEmailRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let user = own_preferences(caller, "name", &req.name)?;
        let email = req.email.trim();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO preferences (user_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let known: Option<(String, String, String)> =
            sqlx::query_as("SELECT email, given_name, locale FROM recipients WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let (sign_in, given_name, locale) = known.unwrap_or_default();
        if email.is_empty() || email.eq_ignore_ascii_case(&sign_in) {
            // Back to the sign-in email, which is verified already.
            sqlx::query(
                "UPDATE preferences SET notification_email = '', pending_email = '',
                     pending_token_hash = NULL, pending_expires_at = NULL,
                     version = version + 1, updated_at = now()
                 WHERE user_id = $1",
            )
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(Response::new(self.preferences(user).await?));
        }
        let mut v = Violations::new();
        v.check("email", validate::email(email));
        let target = Target::address(email, &given_name, &locale);
        if let Some(reason) =
            crate::outbound::suppression(&target, notification_email_message()?, Address::Preferred)
        {
            v.add(
                "email",
                reason
                    .split_once(": ")
                    .map(|(_, r)| r)
                    .unwrap_or(&reason)
                    .to_owned(),
            );
        }
        v.finish()?;
        // Verification mails are limited per user, address and account: the
        // address is anyone's, and this must not be a way to mail strangers.
        let ttl =
            chrono::Duration::from_std(self.email_token_ttl).unwrap_or(chrono::Duration::days(1));
        sqlx::query("SELECT 1 FROM preferences WHERE user_id = $1 FOR UPDATE")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        reserve_verification_mail(&mut tx, user, active_account(caller), email).await?;
        let token = partnerhub_platform::crypto::token();
        let expires = Utc::now() + ttl;
        sqlx::query(
            "UPDATE preferences SET pending_email = $2, pending_token_hash = $3,
                 pending_expires_at = $4, version = version + 1, updated_at = now()
             WHERE user_id = $1",
        )
        .bind(user)
        .bind(email)
        .bind(partnerhub_platform::crypto::token_hash(&token))
        .bind(expires)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        self.mail_token(
            &mut tx,
            user,
            &Target::address(email, &given_name, &locale),
            token,
            notification_email_message()?,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn send_alternate_email_verification(
        &self,
        request: Request<SendAlternateEmailVerificationRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let user = own_preferences(caller, "name", &req.name)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO preferences (user_id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let verified: String = sqlx::query_scalar(
            "SELECT alternate_verified_email FROM preferences WHERE user_id = $1 FOR UPDATE",
        )
        .bind(user)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let known: Option<(String, String, String)> = sqlx::query_as(
            "SELECT alternate_email, given_name, locale FROM recipients WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let (alternate, given_name, locale) = known.unwrap_or_default();
        let alternate = alternate.trim().to_owned();
        if alternate.is_empty() {
            return Err(error::failed_precondition(
                "NO_ALTERNATE_EMAIL",
                &req.name,
                "no alternate email is set: set one with identity's UpdateMyProfile first",
            ));
        }
        if verified.eq_ignore_ascii_case(&alternate) {
            drop(tx);
            return Ok(Response::new(self.preferences(user).await?));
        }
        reserve_verification_mail(&mut tx, user, active_account(caller), &alternate).await?;
        let token = partnerhub_platform::crypto::token();
        let ttl =
            chrono::Duration::from_std(self.email_token_ttl).unwrap_or(chrono::Duration::days(1));
        sqlx::query(
            "UPDATE preferences SET alternate_pending_email = $2, alternate_token_hash = $3,
                 alternate_expires_at = $4, version = version + 1, updated_at = now()
             WHERE user_id = $1",
        )
        .bind(user)
        .bind(&alternate)
        .bind(partnerhub_platform::crypto::token_hash(&token))
        .bind(Utc::now() + ttl)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let message = catalog::find("notification.verify_alternate_email").ok_or_else(|| {
            Status::internal("the catalog lacks notification.verify_alternate_email")
        })?;
        self.mail_token(
            &mut tx,
            user,
            &Target::address(&alternate, &given_name, &locale),
            token,
            message,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn verify_alternate_email(
        &self,
        request: Request<VerifyAlternateEmailRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let user = own_preferences(caller, "name", &req.name)?;
        mailed_token(&req.token)?;
        // The token proves the address it was mailed to, and only while that
        // is still the user's alternate email.
        let updated = sqlx::query(
            "UPDATE preferences p SET alternate_verified_email = p.alternate_pending_email,
                 alternate_pending_email = '', alternate_token_hash = NULL,
                 alternate_expires_at = NULL, version = version + 1, updated_at = now()
             FROM recipients r
             WHERE p.user_id = $1 AND r.user_id = p.user_id
               AND p.alternate_token_hash = $2 AND p.alternate_expires_at > now()
               AND lower(r.alternate_email) = lower(p.alternate_pending_email)",
        )
        .bind(user)
        .bind(partnerhub_platform::crypto::token_hash(&req.token))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if updated == 0 {
            return Err(token_refused("this user and alternate email"));
        }
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn verify_notification_email(
        &self,
        request: Request<VerifyNotificationEmailRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        let user = own_preferences(caller, "name", &req.name)?;
        mailed_token(&req.token)?;
        let updated = sqlx::query(
            "UPDATE preferences SET notification_email = pending_email, pending_email = '',
                 pending_token_hash = NULL, pending_expires_at = NULL,
                 version = version + 1, updated_at = now()
             WHERE user_id = $1 AND pending_token_hash = $2 AND pending_expires_at > now()",
        )
        .bind(user)
        .bind(partnerhub_platform::crypto::token_hash(&req.token))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if updated == 0 {
            return Err(token_refused("this user"));
        }
        Ok(Response::new(self.preferences(user).await?))
    }

    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let caller = caller(&request)?.clone();
        let req = request.into_inner();
        Ok(Response::new(
            self.list_deliveries_page(&caller, req).await?,
        ))
    }
}

fn notification_email_message() -> Result<&'static catalog::Message, Status> {
    catalog::find("notification.verify_email")
        .ok_or_else(|| Status::internal("the catalog lacks notification.verify_email"))
}

/// A token from a mail is present and of a sane length.
fn mailed_token(token: &str) -> Result<(), Status> {
    if token.is_empty() || token.len() > 200 {
        return Err(invalid_argument(vec![FieldViolation::new(
            "token",
            "is required (the token from the mail)",
        )]));
    }
    Ok(())
}

/// A mailed token that proves nothing (any other user's, spent or expired).
fn token_refused(valid_for: &str) -> Status {
    invalid_argument(vec![FieldViolation::new(
        "token",
        format!("is not valid for {valid_for}, was already used, or has expired"),
    )])
}
