//! Every SQL statement of identity, by area.

pub mod accounts;
pub mod activity;
pub mod invitations;
pub mod members;
pub mod tokens;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An account row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// ACTIVE, SUSPENDED, MERGED or DISABLED.
    pub state: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// For MERGED: the target.
    pub merged_into: Option<Uuid>,
}

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Sign-in email as entered.
    pub email: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Locale.
    pub locale: String,
    /// PHC string; `None` for an invited user who has not accepted yet.
    pub password_hash: Option<String>,
    /// Alternate email.
    pub alternate_email: Option<String>,
    /// Home directory.
    pub home_account_id: Option<Uuid>,
    /// A temporary password must be changed.
    pub must_change_password: bool,
    /// Removed from the directory.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Columns of [`UserRow`], for SELECTs (prefix with a table alias as needed).
pub const USER_COLUMNS: &str = "u.id, u.email, u.given_name, u.family_name, u.locale, u.password_hash, \
     u.alternate_email, u.home_account_id, u.must_change_password, u.deleted_at, u.created_at";

/// A membership with its user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// The user.
    #[sqlx(flatten)]
    pub user: UserRow,
    /// Account.
    pub account_id: Uuid,
    /// Role ids.
    pub roles: Vec<String>,
    /// Location scopes (role → location ids).
    pub scopes: sqlx::types::Json<BTreeMap<String, Vec<String>>>,
    /// ACTIVE, INVITED or DELETED.
    pub state: String,
    /// Etag version.
    pub version: i64,
    /// Joined or invited at.
    pub member_since: DateTime<Utc>,
}

/// Columns of [`MemberRow`] over `memberships m JOIN users u`.
pub const MEMBER_COLUMNS: &str = "u.id, u.email, u.given_name, u.family_name, u.locale, u.password_hash, \
     u.alternate_email, u.home_account_id, u.must_change_password, u.deleted_at, u.created_at, \
     m.account_id, m.roles, m.scopes, m.state, m.version, m.created_at AS member_since";
