//! The command line (clap derive): global options and the command groups.

use clap::{Args, Parser, Subcommand};

use crate::commands::{
    accounts, auth, locations, me, merge, notifications, profile, programs, roles, users,
    verification,
};
use crate::output::Format;

const LONG_ABOUT: &str = "\
Drive partnerhub from a terminal or a script.

Start with `partnerctl signup` (a new user and account) or `partnerctl login`.
The session (token pair) and the endpoints used are stored in
$PARTNERCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/partnerctl, else
~/.config/partnerctl (file session.json, mode 0600). The access token is
renewed by itself with the refresh token.

Exit codes:
  0  ok
  1  unexpected error
  2  usage error (bad flags or arguments)
  3  not logged in, or the session expired (UNAUTHENTICATED)
  4  permission denied (PERMISSION_DENIED)
  5  not found (NOT_FOUND)
  6  invalid input (INVALID_ARGUMENT, OUT_OF_RANGE); every field violation is printed
  7  conflict (ALREADY_EXISTS, ABORTED: stale etag, FAILED_PRECONDITION)
  8  unavailable, rate limited or timed out (UNAVAILABLE, RESOURCE_EXHAUSTED,
     DEADLINE_EXCEEDED): try again later (the retry delay is printed when known)

Errors go to stderr; with --output json as one JSON object {\"error\": {...}}.";

/// partnerctl: drive partnerhub from a terminal or a script.
#[derive(Debug, Parser)]
#[command(name = "partnerctl", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format and endpoints. An endpoint given here (or by its
/// environment variable) wins over the one saved at login, which wins over
/// the default.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table, env = "PARTNERCTL_OUTPUT")]
    pub output: Format,
    /// Identity's gRPC endpoint [default: http://127.0.0.1:50051].
    #[arg(long, global = true, env = "PARTNERCTL_IDENTITY_URL")]
    pub identity_url: Option<String>,
    /// Profile's gRPC endpoint [default: http://127.0.0.1:50052].
    #[arg(long, global = true, env = "PARTNERCTL_PROFILE_URL")]
    pub profile_url: Option<String>,
    /// Verification's gRPC endpoint [default: http://127.0.0.1:50053].
    #[arg(long, global = true, env = "PARTNERCTL_VERIFICATION_URL")]
    pub verification_url: Option<String>,
    /// Notification's gRPC endpoint [default: http://127.0.0.1:50054].
    #[arg(long, global = true, env = "PARTNERCTL_NOTIFICATION_URL")]
    pub notification_url: Option<String>,
    /// Merge's gRPC endpoint [default: http://127.0.0.1:50055].
    #[arg(long, global = true, env = "PARTNERCTL_MERGE_URL")]
    pub merge_url: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a user and a new account, and log in.
    Signup(auth::SignupArgs),
    /// Log in with email and password; stores the session.
    Login(auth::LoginArgs),
    /// End the session and forget it.
    Logout,
    /// Change your password (also the way out of a temporary one).
    Password(auth::PasswordArgs),
    /// Show who is logged in, and where.
    Whoami,
    /// Your accounts (the account picker).
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Users of the active account.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The roles of partnerhub.
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// About yourself.
    #[command(subcommand)]
    Me(me::MeCommand),
    /// The organization profile.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Business locations.
    #[command(subcommand)]
    Locations(locations::LocationsCommand),
    /// Programs and agreements.
    #[command(subcommand)]
    Programs(programs::ProgramsCommand),
    /// Company verification.
    #[command(subcommand)]
    Verification(verification::VerificationCommand),
    /// Your in-portal notifications.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Account merges.
    #[command(subcommand)]
    Merge(merge::MergeCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}
