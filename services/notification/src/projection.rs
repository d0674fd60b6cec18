//! The recipients projection: who can be notified, with which address,
//! language and roles, and the names and contacts of accounts, built from
//! identity's and profile's events so notifications keep working while those
//! services are down. Every write is applied once (the inbox) and is
//! order-tolerant: each fact carries its time, and an older fact never
//! overwrites a newer one.

use chrono::{DateTime, Utc};
use partnerhub_platform::bus::HandlerError;
use partnerhub_proto::identity::v1::{
    AccountCreated, AccountMerged, MemberRemoved, MemberRolesChanged, UserCreated, UserUpdated,
};
use partnerhub_proto::profile::v1::{
    Contact, ContactsChanged, EnrollmentSubmitted, LegalProfileChanged,
};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub use partnerhub_platform::bus::id_in as id_of;

/// The time of an event, which it must carry.
pub fn time_of(
    time: Option<prost_types::Timestamp>,
    what: &str,
) -> Result<DateTime<Utc>, HandlerError> {
    time.as_ref()
        .and_then(partnerhub_platform::time::from_timestamp)
        .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("{what} without its time")))
}

/// Records a new user and their first membership.
pub async fn user_created(tx: &mut PgConnection, event: &UserCreated) -> Result<(), HandlerError> {
    let user = id_of(&event.user, "users")?;
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.create_time, "UserCreated")?;
    upsert_user(
        tx,
        user,
        &event.email,
        &event.given_name,
        &event.family_name,
        &event.locale,
        None,
        time,
    )
    .await?;
    set_roles(tx, account, user, &event.roles, time).await
}

/// Records a user's new profile.
pub async fn user_updated(tx: &mut PgConnection, event: &UserUpdated) -> Result<(), HandlerError> {
    let user = id_of(&event.user, "users")?;
    let time = time_of(event.update_time, "UserUpdated")?;
    upsert_user(
        tx,
        user,
        &event.email,
        &event.given_name,
        &event.family_name,
        &event.locale,
        Some(&event.alternate_email),
        time,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn upsert_user(
    tx: &mut PgConnection,
    user: Uuid,
    email: &str,
    given_name: &str,
    family_name: &str,
    locale: &str,
    alternate_email: Option<&str>,
    time: DateTime<Utc>,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO recipients (user_id, email, given_name, family_name, locale, alternate_email, source_time)
         VALUES ($1, $2, $3, $4, $5, coalesce($6, ''), $7)
         ON CONFLICT (user_id) DO UPDATE SET
             email = EXCLUDED.email, given_name = EXCLUDED.given_name,
             family_name = EXCLUDED.family_name, locale = EXCLUDED.locale,
             alternate_email = coalesce($6, recipients.alternate_email),
             source_time = EXCLUDED.source_time
         WHERE recipients.source_time <= EXCLUDED.source_time",
    )
    .bind(user)
    .bind(email)
    .bind(given_name)
    .bind(family_name)
    .bind(locale)
    .bind(alternate_email)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a member's roles (a membership that starts, changes or moves).
pub async fn member_roles_changed(
    tx: &mut PgConnection,
    event: &MemberRolesChanged,
) -> Result<(), HandlerError> {
    let user = id_of(&event.user, "users")?;
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.update_time, "MemberRolesChanged")?;
    let roles: Vec<String> = event.new_roles.iter().map(|r| r.role.clone()).collect();
    set_roles(tx, account, user, &roles, time).await
}

/// Records that a member left an account (kept as an empty role set, so an
/// older role change cannot bring the membership back).
pub async fn member_removed(
    tx: &mut PgConnection,
    event: &MemberRemoved,
) -> Result<(), HandlerError> {
    let user = id_of(&event.user, "users")?;
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.remove_time, "MemberRemoved")?;
    set_roles(tx, account, user, &[], time).await
}

async fn set_roles(
    tx: &mut PgConnection,
    account: Uuid,
    user: Uuid,
    roles: &[String],
    time: DateTime<Utc>,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO recipient_roles (account_id, user_id, roles, source_time)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, user_id) DO UPDATE SET
             roles = EXCLUDED.roles, source_time = EXCLUDED.source_time
         WHERE recipient_roles.source_time <= EXCLUDED.source_time",
    )
    .bind(account)
    .bind(user)
    .bind(roles)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records an account's display name.
pub async fn account_created(
    tx: &mut PgConnection,
    event: &AccountCreated,
) -> Result<(), HandlerError> {
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.create_time, "AccountCreated")?;
    sqlx::query(
        "INSERT INTO accounts (account_id, display_name, display_time) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET
             display_name = EXCLUDED.display_name, display_time = EXCLUDED.display_time
         WHERE accounts.display_time <= EXCLUDED.display_time",
    )
    .bind(account)
    .bind(&event.display_name)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records where a merged account went.
pub async fn account_merged(
    tx: &mut PgConnection,
    event: &AccountMerged,
) -> Result<(), HandlerError> {
    let source = id_of(&event.source_account, "accounts")?;
    let target = id_of(&event.target_account, "accounts")?;
    sqlx::query(
        "INSERT INTO accounts (account_id, merged_into) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET merged_into = EXCLUDED.merged_into",
    )
    .bind(source)
    .bind(target)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn contact_json(contact: Option<&Contact>) -> serde_json::Value {
    match contact {
        Some(c) if !c.email.is_empty() => json!({
            "name": c.given_name,
            "email": c.email,
        }),
        _ => serde_json::Value::Null,
    }
}

/// Records the legal name and primary contact of an enrollment.
pub async fn enrollment_submitted(
    tx: &mut PgConnection,
    event: &EnrollmentSubmitted,
) -> Result<(), HandlerError> {
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.submit_time, "EnrollmentSubmitted")?;
    legal(
        tx,
        account,
        &event.legal_name,
        event.primary_contact.as_ref(),
        time,
    )
    .await
}

/// Records a new legal name or primary contact.
pub async fn legal_profile_changed(
    tx: &mut PgConnection,
    event: &LegalProfileChanged,
) -> Result<(), HandlerError> {
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.change_time, "LegalProfileChanged")?;
    legal(
        tx,
        account,
        &event.legal_name,
        event.primary_contact.as_ref(),
        time,
    )
    .await
}

async fn legal(
    tx: &mut PgConnection,
    account: Uuid,
    legal_name: &str,
    primary: Option<&Contact>,
    time: DateTime<Utc>,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO accounts (account_id, legal_name, legal_time, contacts, contacts_time)
         VALUES ($1, $2, $3, jsonb_build_object('primary', $4::jsonb), $3)
         ON CONFLICT (account_id) DO UPDATE SET
             legal_name = CASE WHEN accounts.legal_time <= $3 THEN $2 ELSE accounts.legal_name END,
             legal_time = greatest(accounts.legal_time, $3),
             contacts = CASE WHEN accounts.contacts_time <= $3
                 THEN accounts.contacts || jsonb_build_object('primary', $4::jsonb)
                 ELSE accounts.contacts END,
             contacts_time = greatest(accounts.contacts_time, $3)",
    )
    .bind(account)
    .bind(legal_name)
    .bind(time)
    .bind(contact_json(primary))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records the primary, legal and security contacts.
pub async fn contacts_changed(
    tx: &mut PgConnection,
    event: &ContactsChanged,
) -> Result<(), HandlerError> {
    let account = id_of(&event.account, "accounts")?;
    let time = time_of(event.change_time, "ContactsChanged")?;
    let contacts = json!({
        "primary": contact_json(event.primary_contact.as_ref()),
        "legal": contact_json(event.legal_contact.as_ref()),
        "security": contact_json(event.security_contact.as_ref()),
    });
    sqlx::query(
        "INSERT INTO accounts (account_id, contacts, contacts_time) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET
             contacts = EXCLUDED.contacts, contacts_time = EXCLUDED.contacts_time
         WHERE accounts.contacts_time <= EXCLUDED.contacts_time",
    )
    .bind(account)
    .bind(contacts)
    .bind(time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Where and how to reach someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The user, when the address belongs to a known user.
    pub user: Option<Uuid>,
    /// Address mail goes to (may be empty: nowhere to send).
    pub email: String,
    /// Name used in greetings (may be empty).
    pub name: String,
    /// Locale to write in.
    pub locale: String,
    /// Mail categories the user turned off.
    pub category_opt_outs: Vec<String>,
    /// Workspaces the user turned off.
    pub workspace_opt_outs: Vec<String>,
    /// The address is an alternate email its owner has not proved yet
    /// (mail to it is suppressed).
    pub unverified: bool,
}

impl Target {
    /// Someone who is not (known as) a user.
    pub fn address(email: &str, name: &str, locale: &str) -> Self {
        Self {
            user: None,
            email: email.to_owned(),
            name: name.to_owned(),
            locale: locale.to_owned(),
            category_opt_outs: Vec::new(),
            workspace_opt_outs: Vec::new(),
            unverified: false,
        }
    }
}

/// Which of a user's addresses to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// The verified notification email, else the sign-in email.
    Preferred,
    /// The sign-in email (security mail that must reach the account itself).
    SignIn,
    /// The alternate email (billing notices), empty when unset; mail to it
    /// is suppressed until its owner verified it.
    Alternate,
}

/// A known user as a target, or `None` while identity has not told us.
pub async fn user_target(
    tx: &mut PgConnection,
    user: Uuid,
    address: Address,
) -> Result<Option<Target>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        email: String,
        alternate_email: String,
        given_name: String,
        locale: String,
        notification_email: Option<String>,
        alternate_verified_email: Option<String>,
        email_language: Option<String>,
        email_opt_outs: Option<Vec<String>>,
        workspace_opt_outs: Option<Vec<String>>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT r.email, r.alternate_email, r.given_name, r.locale,
                p.notification_email, p.alternate_verified_email, p.email_language, p.email_opt_outs, p.workspace_opt_outs
         FROM recipients r LEFT JOIN preferences p USING (user_id)
         WHERE r.user_id = $1",
    )
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| {
        let unverified = address == Address::Alternate
            && !r.alternate_email.is_empty()
            && !r
                .alternate_verified_email
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(&r.alternate_email));
        let email = match address {
            Address::SignIn => r.email,
            Address::Alternate => r.alternate_email,
            Address::Preferred => r
                .notification_email
                .filter(|e| !e.is_empty())
                .unwrap_or(r.email),
        };
        Target {
            user: Some(user),
            email,
            name: r.given_name,
            locale: r
                .email_language
                .filter(|l| !l.is_empty())
                .unwrap_or(r.locale),
            category_opt_outs: r.email_opt_outs.unwrap_or_default(),
            workspace_opt_outs: r.workspace_opt_outs.unwrap_or_default(),
            unverified,
        }
    }))
}

/// The users holding any of `roles` in `account`.
pub async fn holders(
    tx: &mut PgConnection,
    account: Uuid,
    roles: &[&str],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    sqlx::query_scalar(
        "SELECT user_id FROM recipient_roles WHERE account_id = $1 AND roles && $2 ORDER BY user_id",
    )
    .bind(account)
    .bind(&roles)
    .fetch_all(&mut *tx)
    .await
}

/// An account's contact (`primary`, `legal`, `security`) as a target: the
/// matching user's language and preferences when the address is a user's.
pub async fn contact_target(
    tx: &mut PgConnection,
    account: Uuid,
    which: &str,
) -> Result<Option<Target>, sqlx::Error> {
    let contact: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT contacts -> $2 ->> 'email', contacts -> $2 ->> 'name' FROM accounts WHERE account_id = $1",
    )
    .bind(account)
    .bind(which)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Some(email), name)) = contact else {
        return Ok(None);
    };
    let user = member_by_email(tx, account, &email).await?;
    if let Some(user) = user
        && let Some(target) = user_target(tx, user, Address::Preferred).await?
    {
        // A contact who is a user is reached like any user: at their
        // verified notification email, in their language.
        return Ok(Some(target));
    }
    Ok(Some(Target::address(
        &email,
        &name.unwrap_or_default(),
        "en-US",
    )))
}

/// The member of `account` whose sign-in email is `email`. Only a member
/// counts: anyone can sign up with any address, and must not receive
/// another account's mail at an address of their choosing.
pub async fn member_by_email(
    tx: &mut PgConnection,
    account: Uuid,
    email: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r.user_id FROM recipients r
         JOIN recipient_roles m ON m.user_id = r.user_id AND m.account_id = $2
         WHERE lower(r.email) = lower($1) AND cardinality(m.roles) > 0
         LIMIT 1",
    )
    .bind(email)
    .bind(account)
    .fetch_optional(&mut *tx)
    .await
}

/// The name to show for an account: its legal name, else its display name,
/// else its resource name.
pub async fn account_name(tx: &mut PgConnection, account: Uuid) -> Result<String, sqlx::Error> {
    let name: Option<String> = sqlx::query_scalar(
        "SELECT coalesce(nullif(legal_name, ''), nullif(display_name, '')) FROM accounts WHERE account_id = $1",
    )
    .bind(account)
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    Ok(name.unwrap_or_else(|| format!("accounts/{account}")))
}
