//! Every message notification can send: its id, mail category, workspace and
//! the parameters its templates use. Templates live in
//! `templates/<locale>/<id>.j2`, one file per message and locale, with the
//! blocks `subject`, `summary` (the one-sentence in-portal body), `text` and
//! `html`. A test renders each of them in every locale with exactly these
//! parameters, strictly: a missing one fails the test.

use partnerhub_proto::notification::v1::{Category, Workspace};

/// One message.
#[derive(Debug)]
pub struct Message {
    /// Stable id (`merge.invitation_received`); also the template name.
    pub id: &'static str,
    /// Mail category: decides whether an opt-out may suppress it.
    pub category: Category,
    /// Workspace of the mail and of its in-portal notification.
    pub workspace: Workspace,
    /// Parameters the templates use, besides the globals `portal_url`,
    /// `recipient_name` and `locale`.
    pub params: &'static [&'static str],
}

/// Locales every message is written in; the first is the last fallback.
pub const LOCALES: &[&str] = &["en-US", "fr-FR"];

/// The messages.
pub const MESSAGES: &[Message] = &[
    // Commands from identity (they carry a token).
    Message {
        id: "identity.invitation",
        category: Category::Security,
        workspace: Workspace::AccountSettings,
        params: &["token", "account_name", "expires_days"],
    },
    Message {
        id: "identity.password_reset",
        category: Category::Security,
        workspace: Workspace::Security,
        params: &["token", "given_name", "expires_minutes"],
    },
    // Identity's events.
    Message {
        id: "identity.welcome",
        category: Category::Transactional,
        workspace: Workspace::AccountSettings,
        params: &["given_name", "sign_in_email", "account_name"],
    },
    Message {
        id: "identity.password_changed",
        category: Category::Security,
        workspace: Workspace::Security,
        params: &["given_name", "change_time"],
    },
    // A command from verification (it carries a token).
    Message {
        id: "verification.email_ownership",
        category: Category::Action,
        workspace: Workspace::AccountSettings,
        params: &["token", "legal_name", "expires_hours"],
    },
    // Verification's events.
    Message {
        id: "verification.status_changed",
        category: Category::Action,
        workspace: Workspace::AccountSettings,
        // `status` is NONE, PENDING, AUTHORIZED or REJECTED; `sub_status`
        // ENTRY, EMAIL_OWNERSHIP, EMAIL_DOMAIN, EMPLOYMENT_VERIFICATION,
        // BUSINESS_VERIFICATION, DECISION or OTHER.
        params: &["account_name", "status", "sub_status"],
    },
    Message {
        id: "verification.documents_requested",
        category: Category::Action,
        workspace: Workspace::AccountSettings,
        // `document_types`: comma-separated ids such as
        // `business_registration, tax_certificate`; `due_date`: YYYY-MM-DD.
        params: &["account_name", "reason", "document_types", "due_date"],
    },
    // Profile's events.
    Message {
        id: "profile.agreement_required",
        category: Category::Action,
        workspace: Workspace::Membership,
        // `program`: the program's name (`Microsoft AI Cloud Partner Program`).
        params: &["account_name", "program"],
    },
    // Merge's events.
    Message {
        id: "merge.invitation_received",
        category: Category::Action,
        workspace: Workspace::AccountSettings,
        // `expire_date`: YYYY-MM-DD.
        params: &["initiator_name", "invitee_name", "expire_date"],
    },
    Message {
        id: "merge.invitation_accepted",
        category: Category::Action,
        workspace: Workspace::AccountSettings,
        params: &["initiator_name", "invitee_name"],
    },
    Message {
        id: "merge.invitation_rejected",
        category: Category::Transactional,
        workspace: Workspace::AccountSettings,
        params: &["initiator_name", "invitee_name", "reason"],
    },
    Message {
        id: "merge.completed",
        category: Category::Transactional,
        workspace: Workspace::AccountSettings,
        params: &[
            "initiator_name",
            "invitee_name",
            "locations_moved",
            "members_moved",
        ],
    },
    // The billing system's events (to the alternate email).
    Message {
        id: "billing.invoice_overdue",
        category: Category::Action,
        workspace: Workspace::Billing,
        // `amount`: decimal with its currency code (`1234.50 EUR`);
        // `due_date`: YYYY-MM-DD.
        params: &["account_name", "invoice_id", "amount", "due_date"],
    },
    Message {
        id: "billing.payment_late",
        category: Category::Action,
        workspace: Workspace::Billing,
        params: &["account_name", "payment_id", "days_late"],
    },
    // Notification's own mail (it carries a token).
    Message {
        id: "notification.verify_email",
        category: Category::Security,
        workspace: Workspace::Security,
        params: &["token", "given_name", "expires_hours"],
    },
    Message {
        id: "notification.verify_alternate_email",
        category: Category::Security,
        workspace: Workspace::Security,
        params: &["token", "given_name", "expires_hours"],
    },
];

/// The message with that id.
pub fn find(id: &str) -> Option<&'static Message> {
    MESSAGES.iter().find(|m| m.id == id)
}
