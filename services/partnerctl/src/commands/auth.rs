//! Signing up, in and out, and changing one's password.

use clap::Args;
use partnerhub_proto::identity::v1::{
    ChangePasswordRequest, Session as SessionMessage, SignInRequest, SignOutRequest, SignUpRequest,
    auth_service_client::AuthServiceClient,
};
use tonic::Code;

use crate::client::{Context, Service, rpc};
use crate::commands::args::password;
use crate::error::CliResult;
use crate::output::{Format, emit};

/// `partnerctl signup`.
#[derive(Debug, Args)]
pub struct SignupArgs {
    /// Work email; becomes the sign-in name.
    #[arg(long)]
    pub email: String,
    /// First name.
    #[arg(long)]
    pub given_name: String,
    /// Last name.
    #[arg(long)]
    pub family_name: String,
    /// Display name of the new account (default: the email's domain).
    #[arg(long, default_value = "")]
    pub account_name: String,
    /// Preferred locale, `en-US` or `fr-FR`.
    #[arg(long, default_value = "")]
    pub locale: String,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `partnerctl login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Sign-in email.
    #[arg(long)]
    pub email: String,
    /// Account to sign in to (`accounts/{id}` or its id); default: your first.
    #[arg(long, default_value = "")]
    pub account: String,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `partnerctl password`.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the current password, then the new one, from the first two
    /// lines of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Signs a new user up and stores the session.
pub async fn signup(ctx: &mut Context, args: SignupArgs) -> CliResult {
    let password = password(args.password_stdin, "New password: ")?;
    let session = AuthServiceClient::new(ctx.channel(Service::Identity)?)
        .sign_up(SignUpRequest {
            email: args.email,
            given_name: args.given_name,
            family_name: args.family_name,
            password,
            account_display_name: args.account_name,
            locale: args.locale,
        })
        .await
        .map_err(|status| ctx.locate(Service::Identity, status))?
        .into_inner();
    store(ctx, session, "Signed up")
}

/// Signs in and stores the session.
pub async fn login(ctx: &mut Context, args: LoginArgs) -> CliResult {
    let password = password(args.password_stdin, "Password: ")?;
    let account = if args.account.is_empty() || args.account.contains('/') {
        args.account
    } else {
        format!("accounts/{}", args.account)
    };
    let session = AuthServiceClient::new(ctx.channel(Service::Identity)?)
        .sign_in(SignInRequest {
            email: args.email,
            password,
            account,
        })
        .await
        .map_err(|status| ctx.locate(Service::Identity, status))?
        .into_inner();
    store(ctx, session, "Logged in")
}

/// Stores `session` and prints it without its tokens (they are in the
/// session file only).
pub fn store(ctx: &mut Context, mut message: SessionMessage, verb: &str) -> CliResult {
    let stored = ctx.save_session(message.clone())?;
    message.refresh_token.clear();
    if let Some(token) = message.access_token.as_mut() {
        token.token.clear();
    }
    if stored.password_change_required {
        eprintln!("You must change your temporary password first: `partnerctl password`.");
    }
    ctx.printer.done(
        &message,
        &format!(
            "{verb} as {} in {} ({}).",
            stored.email, stored.account_display_name, stored.account
        ),
    )
}

/// Ends the session at identity and forgets it.
pub async fn logout(ctx: &mut Context) -> CliResult {
    let refresh_token = ctx.session()?.refresh_token.clone();
    let ended = rpc!(
        ctx,
        Identity,
        AuthServiceClient::sign_out,
        SignOutRequest { refresh_token }
    )
    .await;
    ctx.forget_session()?;
    match ended {
        Ok(response) => ctx.printer.done(&response, "Logged out."),
        // Already ended at the server: forgetting it is all there is to do.
        Err(crate::error::CliError::Rpc(s)) if s.code() == Code::Unauthenticated => {
            ctx.printer.done(
                &partnerhub_proto::identity::v1::SignOutResponse {},
                "Logged out.",
            )
        }
        Err(crate::error::CliError::NotLoggedIn(_)) => ctx.printer.done(
            &partnerhub_proto::identity::v1::SignOutResponse {},
            "Logged out.",
        ),
        Err(e) => Err(e),
    }
}

/// Changes the caller's password; other sessions end, this one is renewed.
pub async fn change_password(ctx: &mut Context, args: PasswordArgs) -> CliResult {
    let (current_password, new_password) = if args.password_stdin {
        let mut lines = std::io::stdin().lines();
        let mut next = || lines.next().transpose().map(Option::unwrap_or_default);
        (next()?, next()?)
    } else {
        (
            password(false, "Current password: ")?,
            rpassword::prompt_password("New password: ")?,
        )
    };
    let request = ChangePasswordRequest {
        current_password,
        new_password,
    };
    let session = rpc!(ctx, Identity, AuthServiceClient::change_password, request).await?;
    store(ctx, session, "Password changed; logged in")
}

/// Prints the stored session (without its tokens).
pub fn whoami(ctx: &mut Context) -> CliResult {
    let session = ctx.session()?;
    if ctx.printer.format() == Format::Json {
        let json = serde_json::json!({
            "user": session.user,
            "email": session.email,
            "account": session.account,
            "account_display_name": session.account_display_name,
            "access_token_expires": session.access_token_expires,
            "endpoints": ctx.endpoints,
        });
        emit(format!("{json:#}"))
    } else {
        emit(format!(
            "{} ({}) in {} ({})",
            session.email, session.user, session.account_display_name, session.account
        ))
    }
}
