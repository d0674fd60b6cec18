//! What triggers what: one row per (message type, condition) naming the
//! message, who receives the mail, and the in-portal notification or action
//! it leaves. [`facts`] reads each event into the few facts the rows use;
//! [`Notifier`] applies the projection, then the rows, then the
//! resolutions, all in the consumer's transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use partnerhub_platform::bus::{Handler, HandlerError, IncomingMessage};
use partnerhub_proto::billing::v1::{InvoiceOverdue, PaymentLate};
use partnerhub_proto::identity::v1::{
    AccountCreated, AccountMerged, MemberRemoved, MemberRolesChanged, PasswordChanged, UserCreated,
    UserUpdated,
};
use partnerhub_proto::merge::v1::{
    MergeCompleted, MergeConfirmed, MergeInvitationAccepted, MergeInvitationCancelled,
    MergeInvitationCreated, MergeInvitationExpired, MergeInvitationRejected,
};
use partnerhub_proto::notification::v1::Kind;
use partnerhub_proto::profile::v1::{
    ContactsChanged, EnrollmentSubmitted, LegalProfileChanged, ProgramKind, ProgramStatusChanged,
};
use partnerhub_proto::verification::v1::{DocumentsRequested, Status, VerificationStatusChanged};
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::catalog;
use crate::outbound::{Mail, Outbound, Portal};
use crate::projection::{self, Address, id_of, time_of};

/// Roles that answer for verification and compliance.
const COMPLIANCE: &[&str] = &["global_admin", "compliance_admin"];
/// Roles that run merges.
const ACCOUNT_ADMINS: &[&str] = &["global_admin", "account_admin"];
/// Roles that receive billing notices.
const BILLING: &[&str] = &["global_admin", "billing_admin"];
/// Roles that accept agreements.
const GLOBAL: &[&str] = &["global_admin"];

/// Who receives a mail.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// The user the event is about, at their preferred address.
    TheUser,
    /// The user the event is about, at their sign-in address (security
    /// notices reach the account itself).
    TheUserSignIn,
    /// The account's primary contact.
    PrimaryContact,
    /// Holders of these roles in the event's account.
    Holders(&'static [&'static str]),
    /// Holders of these roles in the other account of a merge (the invitee).
    InviteeHolders(&'static [&'static str]),
    /// The alternate email of holders of these roles in the event's account.
    AlternateOf(&'static [&'static str]),
}

/// The in-portal side of a row.
#[derive(Debug, Clone, Copy)]
pub struct PortalRule {
    /// Kind.
    pub kind: Kind,
    /// Action key pattern (`{key}` is the facts' key), for actions.
    pub action: Option<&'static str>,
    /// Days until a mandatory action is due (unless the event says).
    pub due_days: Option<i64>,
    /// Portal path.
    pub link: &'static str,
}

/// One row of the table.
#[derive(Debug)]
pub struct Trigger {
    /// Message type (a protobuf full name).
    pub on: &'static str,
    /// Condition on the facts, described in `when_text`.
    pub when: fn(&Facts) -> bool,
    /// The condition, for people.
    pub when_text: &'static str,
    /// Message id in the catalog.
    pub message: &'static str,
    /// Who receives the mail (every audience; a person counted once).
    pub mail_to: &'static [Audience],
    /// The in-portal notification for the users among them.
    pub portal: Option<PortalRule>,
}

fn always(_: &Facts) -> bool {
    true
}
fn became(status: &'static str) -> impl Fn(&Facts) -> bool {
    move |f| f.status == status && f.old_status != status
}
fn became_pending(f: &Facts) -> bool {
    became("PENDING")(f)
}
fn became_authorized(f: &Facts) -> bool {
    became("AUTHORIZED")(f)
}
fn became_rejected(f: &Facts) -> bool {
    became("REJECTED")(f)
}
fn became_qualified(f: &Facts) -> bool {
    became("QUALIFIED")(f)
}

const VERIFICATION_PAGE: &str = "/account/verification";
const MERGES_PAGE: &str = "/account/merges";

/// The table.
pub const TRIGGERS: &[Trigger] = &[
    Trigger {
        on: "partnerhub.identity.v1.UserCreated",
        when: always,
        when_text: "always (sign-up, or created by an admin)",
        message: "identity.welcome",
        mail_to: &[Audience::TheUser],
        portal: None,
    },
    Trigger {
        on: "partnerhub.identity.v1.PasswordChanged",
        when: always,
        when_text: "always (a security notice)",
        message: "identity.password_changed",
        mail_to: &[Audience::TheUserSignIn],
        portal: None,
    },
    Trigger {
        on: "partnerhub.verification.v1.VerificationStatusChanged",
        when: became_pending,
        when_text: "the status became PENDING",
        message: "verification.status_changed",
        mail_to: &[Audience::PrimaryContact, Audience::Holders(COMPLIANCE)],
        portal: Some(PortalRule {
            kind: Kind::MandatoryAction,
            action: Some("verification"),
            due_days: Some(30),
            link: VERIFICATION_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.verification.v1.VerificationStatusChanged",
        when: became_authorized,
        when_text: "the status became AUTHORIZED (resolves the verification actions)",
        message: "verification.status_changed",
        mail_to: &[Audience::PrimaryContact, Audience::Holders(COMPLIANCE)],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: VERIFICATION_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.verification.v1.VerificationStatusChanged",
        when: became_rejected,
        when_text: "the status became REJECTED",
        message: "verification.status_changed",
        mail_to: &[Audience::PrimaryContact, Audience::Holders(COMPLIANCE)],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: VERIFICATION_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.verification.v1.DocumentsRequested",
        when: always,
        when_text: "always",
        message: "verification.documents_requested",
        mail_to: &[Audience::PrimaryContact, Audience::Holders(COMPLIANCE)],
        portal: Some(PortalRule {
            kind: Kind::MandatoryAction,
            action: Some("verification_documents"),
            due_days: Some(30),
            link: VERIFICATION_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.profile.v1.ProgramStatusChanged",
        when: became_qualified,
        when_text: "a program became QUALIFIED (its agreement is missing)",
        message: "profile.agreement_required",
        mail_to: &[Audience::Holders(GLOBAL)],
        portal: Some(PortalRule {
            kind: Kind::MandatoryAction,
            action: Some("agreement:{key}"),
            due_days: Some(30),
            link: "/programs/agreements",
        }),
    },
    Trigger {
        on: "partnerhub.merge.v1.MergeInvitationCreated",
        when: always,
        when_text: "always (to the invitee)",
        message: "merge.invitation_received",
        mail_to: &[Audience::InviteeHolders(ACCOUNT_ADMINS)],
        portal: Some(PortalRule {
            kind: Kind::RecommendedAction,
            action: Some("merge:{key}:answer"),
            due_days: None,
            link: MERGES_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.merge.v1.MergeInvitationAccepted",
        when: always,
        when_text: "always (to the initiator, who must confirm)",
        message: "merge.invitation_accepted",
        mail_to: &[Audience::Holders(ACCOUNT_ADMINS)],
        portal: Some(PortalRule {
            kind: Kind::RecommendedAction,
            action: Some("merge:{key}:confirm"),
            due_days: None,
            link: MERGES_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.merge.v1.MergeInvitationRejected",
        when: always,
        when_text: "always (to the initiator)",
        message: "merge.invitation_rejected",
        mail_to: &[Audience::Holders(ACCOUNT_ADMINS)],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: MERGES_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.merge.v1.MergeCompleted",
        when: always,
        when_text: "always (to both sides)",
        message: "merge.completed",
        mail_to: &[
            Audience::Holders(ACCOUNT_ADMINS),
            Audience::InviteeHolders(ACCOUNT_ADMINS),
        ],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: MERGES_PAGE,
        }),
    },
    Trigger {
        on: "partnerhub.billing.v1.InvoiceOverdue",
        when: always,
        when_text: "always (to the alternate email, never the preferred one)",
        message: "billing.invoice_overdue",
        mail_to: &[Audience::AlternateOf(BILLING)],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: "/billing/invoices",
        }),
    },
    Trigger {
        on: "partnerhub.billing.v1.PaymentLate",
        when: always,
        when_text: "always (to the alternate email, never the preferred one)",
        message: "billing.payment_late",
        mail_to: &[Audience::AlternateOf(BILLING)],
        portal: Some(PortalRule {
            kind: Kind::Transactional,
            action: None,
            due_days: None,
            link: "/billing/payments",
        }),
    },
];

/// Message types that only update the projection or resolve actions.
const PROJECTION_AND_RESOLUTION_ONLY: &[&str] = &[
    "partnerhub.identity.v1.AccountCreated",
    "partnerhub.identity.v1.AccountMerged",
    "partnerhub.identity.v1.UserUpdated",
    "partnerhub.identity.v1.MemberRolesChanged",
    "partnerhub.identity.v1.MemberRemoved",
    "partnerhub.profile.v1.EnrollmentSubmitted",
    "partnerhub.profile.v1.LegalProfileChanged",
    "partnerhub.profile.v1.ContactsChanged",
    "partnerhub.merge.v1.MergeInvitationCancelled",
    "partnerhub.merge.v1.MergeInvitationExpired",
    "partnerhub.merge.v1.MergeConfirmed",
];

/// Every message type notification's events queue is bound to.
pub fn subscribed() -> Vec<String> {
    let mut types: Vec<String> = TRIGGERS
        .iter()
        .map(|t| t.on)
        .chain(PROJECTION_AND_RESOLUTION_ONLY.iter().copied())
        .map(str::to_owned)
        .collect();
    types.sort();
    types.dedup();
    types
}

/// What the rows need to know about an event.
#[derive(Debug, Default)]
pub struct Facts {
    /// The account the event is about (the initiator of a merge).
    pub account: Option<Uuid>,
    /// The invitee of a merge.
    pub invitee: Option<Uuid>,
    /// The user the event is about.
    pub user: Option<Uuid>,
    /// A status the rows test (verification, program).
    pub status: String,
    /// The status before.
    pub old_status: String,
    /// What action keys are made of (a merge id, a program).
    pub key: String,
    /// Template parameters (account names are added by the notifier).
    pub params: BTreeMap<String, String>,
    /// When a mandatory action is due, if the event says.
    pub due: Option<DateTime<Utc>>,
    /// When the fact happened.
    pub time: DateTime<Utc>,
    /// Actions it resolves: (account, key).
    pub resolves: Vec<(Uuid, String)>,
}

fn params<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn merge_id(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

fn status_name(status: i32) -> String {
    Status::try_from(status)
        .map(|s| s.as_str_name().trim_start_matches("STATUS_").to_owned())
        .unwrap_or_default()
}

fn program_name(program: i32) -> String {
    match ProgramKind::try_from(program).unwrap_or(ProgramKind::Unspecified) {
        ProgramKind::Partner => "Partner Program".into(),
        ProgramKind::CspIndirectReseller => "Cloud Solution Provider (indirect reseller)".into(),
        ProgramKind::CspDirectBill => "Cloud Solution Provider (direct bill)".into(),
        ProgramKind::CspIndirectProvider => "Cloud Solution Provider (indirect provider)".into(),
        ProgramKind::Referrals => "Referrals".into(),
        other => other
            .as_str_name()
            .trim_start_matches("PROGRAM_KIND_")
            .to_owned(),
    }
}

fn minor_units(amount: i64, currency: &str) -> String {
    let digits = iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    let scale = 10_i64.pow(u32::from(digits));
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    let scale = scale.unsigned_abs();
    if digits == 0 {
        format!("{sign}{amount} {currency}")
    } else {
        format!(
            "{sign}{}.{:0width$} {currency}",
            amount / scale,
            amount % scale,
            width = usize::from(digits)
        )
    }
}

/// Applies the projection part of an event and reads its facts; `None`
/// for events that trigger nothing.
async fn facts(
    tx: &mut PgConnection,
    message: &IncomingMessage,
) -> Result<Option<Facts>, HandlerError> {
    let t = message.message_type.as_str();
    let facts = if t == UserCreated::full_name() {
        let e: UserCreated = message.decode()?;
        projection::user_created(tx, &e).await?;
        let account = id_of(&e.account, "accounts")?;
        Facts {
            account: Some(account),
            user: Some(id_of(&e.user, "users")?),
            params: params([
                ("given_name", e.given_name.clone()),
                ("sign_in_email", e.email.clone()),
            ]),
            time: time_of(e.create_time, "UserCreated")?,
            ..Facts::default()
        }
    } else if t == PasswordChanged::full_name() {
        let e: PasswordChanged = message.decode()?;
        let time = time_of(e.change_time, "PasswordChanged")?;
        let user = id_of(&e.user, "users")?;
        let given_name = sqlx::query_scalar("SELECT given_name FROM recipients WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or_default();
        Facts {
            user: Some(user),
            params: params([
                ("given_name", given_name),
                ("change_time", time.format("%Y-%m-%d %H:%M UTC").to_string()),
            ]),
            time,
            ..Facts::default()
        }
    } else if t == VerificationStatusChanged::full_name() {
        let e: VerificationStatusChanged = message.decode()?;
        let account = id_of(&e.account, "accounts")?;
        let status = status_name(e.status);
        let sub_status = partnerhub_proto::verification::v1::SubStatus::try_from(e.sub_status)
            .map(|s| s.as_str_name().trim_start_matches("SUB_STATUS_").to_owned())
            .unwrap_or_default();
        let time = time_of(e.change_time, "VerificationStatusChanged")?;
        let resolves = if status == "AUTHORIZED" {
            vec![
                (account, "verification".to_owned()),
                (account, "verification_documents".to_owned()),
            ]
        } else {
            Vec::new()
        };
        Facts {
            account: Some(account),
            old_status: status_name(e.old_status),
            params: params([("status", status.clone()), ("sub_status", sub_status)]),
            status,
            time,
            resolves,
            ..Facts::default()
        }
    } else if t == DocumentsRequested::full_name() {
        let e: DocumentsRequested = message.decode()?;
        let time = time_of(e.request_time, "DocumentsRequested")?;
        let due = e
            .due_time
            .as_ref()
            .and_then(partnerhub_platform::time::from_timestamp)
            .unwrap_or(time + Duration::days(30));
        Facts {
            account: Some(id_of(&e.account, "accounts")?),
            params: params([
                ("reason", e.reason.clone()),
                ("document_types", e.document_types.join(", ")),
                ("due_date", due.format("%Y-%m-%d").to_string()),
            ]),
            due: Some(due),
            time,
            ..Facts::default()
        }
    } else if t == ProgramStatusChanged::full_name() {
        let e: ProgramStatusChanged = message.decode()?;
        let account = id_of(&e.account, "accounts")?;
        let key = ProgramKind::try_from(e.program)
            .map(|p| {
                p.as_str_name()
                    .trim_start_matches("PROGRAM_KIND_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let status = e
            .new_status
            .trim_start_matches("PROGRAM_STATUS_")
            .to_owned();
        let time = time_of(e.change_time, "ProgramStatusChanged")?;
        let resolves = if status == "ACTIVE" {
            vec![(account, format!("agreement:{key}"))]
        } else {
            Vec::new()
        };
        Facts {
            account: Some(account),
            old_status: e
                .old_status
                .trim_start_matches("PROGRAM_STATUS_")
                .to_owned(),
            status,
            params: params([("program", program_name(e.program))]),
            key,
            time,
            resolves,
            ..Facts::default()
        }
    } else if t == MergeInvitationCreated::full_name() {
        let e: MergeInvitationCreated = message.decode()?;
        let expire = time_of(e.expire_time, "MergeInvitationCreated")?;
        merge_facts(
            &e.merge_invitation,
            &e.initiator,
            &e.invitee,
            Utc::now(),
            params([("expire_date", expire.format("%Y-%m-%d").to_string())]),
            &[],
        )?
    } else if t == MergeInvitationAccepted::full_name() {
        merge_event::<MergeInvitationAccepted>(
            message,
            |_| BTreeMap::new(),
            &[Side::Invitee("answer")],
        )?
    } else if t == MergeInvitationRejected::full_name() {
        merge_event::<MergeInvitationRejected>(
            message,
            |e| params([("reason", e.reason.clone())]),
            &[Side::Invitee("answer")],
        )?
    } else if t == MergeInvitationCancelled::full_name() {
        merge_event::<MergeInvitationCancelled>(message, |_| BTreeMap::new(), ANY_ANSWER)?
    } else if t == MergeInvitationExpired::full_name() {
        merge_event::<MergeInvitationExpired>(message, |_| BTreeMap::new(), ANY_ANSWER)?
    } else if t == MergeConfirmed::full_name() {
        merge_event::<MergeConfirmed>(message, |_| BTreeMap::new(), &[Side::Initiator("confirm")])?
    } else if t == MergeCompleted::full_name() {
        merge_event::<MergeCompleted>(
            message,
            |e| {
                params([
                    ("locations_moved", e.locations_moved.to_string()),
                    ("members_moved", e.members_moved.to_string()),
                ])
            },
            ANY_ANSWER,
        )?
    } else if t == InvoiceOverdue::full_name() {
        let e: InvoiceOverdue = message.decode()?;
        let due = time_of(e.due_time, "InvoiceOverdue")?;
        Facts {
            account: Some(id_of(&e.account, "accounts")?),
            params: params([
                ("invoice_id", e.invoice_id.clone()),
                ("amount", minor_units(e.amount_due_minor, &e.currency)),
                ("due_date", due.format("%Y-%m-%d").to_string()),
            ]),
            time: Utc::now(),
            ..Facts::default()
        }
    } else if t == PaymentLate::full_name() {
        let e: PaymentLate = message.decode()?;
        Facts {
            account: Some(id_of(&e.account, "accounts")?),
            params: params([
                ("payment_id", e.payment_id.clone()),
                ("days_late", e.days_late.to_string()),
            ]),
            time: Utc::now(),
            ..Facts::default()
        }
    } else {
        projection_only(tx, message).await?;
        return Ok(None);
    };
    Ok(Some(facts))
}

enum Side {
    Initiator(&'static str),
    Invitee(&'static str),
}

/// Both sides' open merge actions: the invitee's answer and the initiator's
/// confirmation.
const ANY_ANSWER: &[Side] = &[Side::Invitee("answer"), Side::Initiator("confirm")];

/// A merge event after the invitation: its invitation, sides and time.
trait MergeEvent: prost::Message + prost::Name + Default {
    fn sides(&self) -> (&str, &str, &str, Option<prost_types::Timestamp>);
}

macro_rules! merge_events {
    ($($event:ty),*) => {$(
        impl MergeEvent for $event {
            fn sides(&self) -> (&str, &str, &str, Option<prost_types::Timestamp>) {
                (&self.merge_invitation, &self.initiator, &self.invitee, self.change_time)
            }
        }
    )*};
}

merge_events!(
    MergeInvitationAccepted,
    MergeInvitationRejected,
    MergeInvitationCancelled,
    MergeInvitationExpired,
    MergeConfirmed,
    MergeCompleted
);

fn merge_event<E: MergeEvent>(
    message: &IncomingMessage,
    extra: impl FnOnce(&E) -> BTreeMap<String, String>,
    resolves: &[Side],
) -> Result<Facts, HandlerError> {
    let event: E = message.decode()?;
    let (name, initiator, invitee, time) = event.sides();
    let time = time_of(time, E::NAME)?;
    merge_facts(name, initiator, invitee, time, extra(&event), resolves)
}

fn merge_facts(
    name: &str,
    initiator: &str,
    invitee: &str,
    time: DateTime<Utc>,
    params: BTreeMap<String, String>,
    resolves: &[Side],
) -> Result<Facts, HandlerError> {
    let key = merge_id(name);
    let initiator = id_of(initiator, "accounts")?;
    let invitee = id_of(invitee, "accounts")?;
    Ok(Facts {
        account: Some(initiator),
        invitee: Some(invitee),
        resolves: resolves
            .iter()
            .map(|side| match side {
                Side::Initiator(what) => (initiator, format!("merge:{key}:{what}")),
                Side::Invitee(what) => (invitee, format!("merge:{key}:{what}")),
            })
            .collect(),
        key,
        params,
        time,
        ..Facts::default()
    })
}

async fn projection_only(
    tx: &mut PgConnection,
    message: &IncomingMessage,
) -> Result<(), HandlerError> {
    let t = message.message_type.as_str();
    if t == AccountCreated::full_name() {
        projection::account_created(tx, &message.decode()?).await
    } else if t == AccountMerged::full_name() {
        projection::account_merged(tx, &message.decode()?).await
    } else if t == UserUpdated::full_name() {
        projection::user_updated(tx, &message.decode()?).await
    } else if t == MemberRolesChanged::full_name() {
        projection::member_roles_changed(tx, &message.decode()?).await
    } else if t == MemberRemoved::full_name() {
        projection::member_removed(tx, &message.decode()?).await
    } else if t == EnrollmentSubmitted::full_name() {
        projection::enrollment_submitted(tx, &message.decode()?).await
    } else if t == LegalProfileChanged::full_name() {
        projection::legal_profile_changed(tx, &message.decode()?).await
    } else if t == ContactsChanged::full_name() {
        projection::contacts_changed(tx, &message.decode()?).await
    } else {
        tracing::debug!(message_type = t, "Ignored a message of no interest.");
        Ok(())
    }
}

/// Notification's events handler.
#[derive(Debug, Clone)]
pub struct Notifier {
    outbound: Arc<Outbound>,
}

impl Notifier {
    /// A handler writing through `outbound`.
    pub fn new(outbound: Arc<Outbound>) -> Self {
        Self { outbound }
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &IncomingMessage,
    ) -> Result<(), HandlerError> {
        let Some(mut facts) = facts(tx, message).await? else {
            return Ok(());
        };
        // Resolutions first: an action this very event would create (none
        // does today) must not be resolved by it.
        for (account, key) in &facts.resolves {
            let resolved = self.outbound.resolve(tx, *account, key, facts.time).await?;
            tracing::debug!(%account, key, resolved, "Actions resolved.");
        }
        let rows: Vec<&Trigger> = TRIGGERS
            .iter()
            .filter(|row| row.on == message.message_type && (row.when)(&facts))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(account) = facts.account {
            let name = projection::account_name(tx, account).await?;
            facts.params.insert("account_name".into(), name.clone());
            facts.params.insert("initiator_name".into(), name);
        }
        if let Some(invitee) = facts.invitee {
            let name = projection::account_name(tx, invitee).await?;
            facts.params.insert("invitee_name".into(), name);
        }
        let source_key = format!("event:{}", message.id);
        for row in rows {
            self.apply_row(tx, row, &facts, &source_key).await?;
        }
        Ok(())
    }

    async fn apply_row(
        &self,
        tx: &mut PgConnection,
        row: &Trigger,
        facts: &Facts,
        source_key: &str,
    ) -> Result<(), HandlerError> {
        let message = catalog::find(row.message).ok_or_else(|| {
            HandlerError::Permanent(anyhow::anyhow!(
                "no message {:?} in the catalog",
                row.message
            ))
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for audience in row.mail_to {
            let (targets, address) = targets(tx, *audience, facts).await?;
            for target in targets {
                let key = target
                    .user
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| target.email.to_lowercase());
                if !seen.insert(key) {
                    continue;
                }
                // Each side's deliveries and actions belong to its account.
                let account = match audience {
                    Audience::InviteeHolders(_) => facts.invitee,
                    _ => facts.account,
                };
                let mail = Mail {
                    source_key,
                    message,
                    account,
                    params: &facts.params,
                    address,
                };
                self.outbound.mail(tx, &mail, &target).await?;
                let (Some(portal), Some(_)) = (row.portal, target.user) else {
                    continue;
                };
                // In-portal texts use the preferred language, whatever
                // address the mail went to.
                let notification = Portal {
                    kind: portal.kind,
                    action_key: portal.action.map(|a| a.replace("{key}", &facts.key)),
                    due: match portal.kind {
                        Kind::MandatoryAction => facts
                            .due
                            .or(portal.due_days.map(|d| facts.time + Duration::days(d))),
                        _ => None,
                    },
                    link: portal.link.to_owned(),
                };
                self.outbound
                    .notify(
                        tx,
                        source_key,
                        message,
                        &target,
                        account,
                        &facts.params,
                        &notification,
                        facts.time,
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

async fn targets(
    tx: &mut PgConnection,
    audience: Audience,
    facts: &Facts,
) -> Result<(Vec<projection::Target>, Address), HandlerError> {
    let mut out = Vec::new();
    let address = match audience {
        Audience::TheUserSignIn => Address::SignIn,
        Audience::AlternateOf(_) => Address::Alternate,
        _ => Address::Preferred,
    };
    match audience {
        Audience::TheUser | Audience::TheUserSignIn => {
            if let Some(user) = facts.user {
                match projection::user_target(tx, user, address).await? {
                    Some(t) => out.push(t),
                    // Identity's UserCreated has not arrived yet: try again
                    // later rather than lose the mail.
                    None => {
                        return Err(HandlerError::Transient(anyhow::anyhow!(
                            "user {user} is not known yet"
                        )));
                    }
                }
            }
        }
        Audience::PrimaryContact => {
            if let Some(account) = facts.account
                && let Some(t) = projection::contact_target(tx, account, "primary").await?
            {
                out.push(t);
            }
        }
        Audience::Holders(roles) | Audience::AlternateOf(roles) => {
            if let Some(account) = facts.account {
                for user in projection::holders(tx, account, roles).await? {
                    if let Some(t) = projection::user_target(tx, user, address).await? {
                        out.push(t);
                    }
                }
            }
        }
        Audience::InviteeHolders(roles) => {
            if let Some(account) = facts.invitee {
                for user in projection::holders(tx, account, roles).await? {
                    if let Some(t) = projection::user_target(tx, user, address).await? {
                        out.push(t);
                    }
                }
            }
        }
    }
    Ok((out, address))
}

impl Handler for Notifier {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        message: &'a IncomingMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.apply(tx, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_catalog_message() {
        for row in TRIGGERS {
            assert!(catalog::find(row.message).is_some(), "{}", row.message);
        }
    }

    #[test]
    fn amounts_use_the_currency_exponent() {
        assert_eq!(minor_units(123_450, "EUR"), "1234.50 EUR");
        assert_eq!(minor_units(5, "USD"), "0.05 USD");
        assert_eq!(minor_units(1200, "JPY"), "1200 JPY");
        assert_eq!(minor_units(-150, "EUR"), "-1.50 EUR");
    }
}
