//! Where mail goes: an SMTP relay (lettre, host, port, TLS mode and
//! credentials in one URL) or, on a laptop, a folder of `.eml` files.

use std::path::PathBuf;

use futures::future::BoxFuture;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a mail was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying (a 4xx answer, a connection failure, a timeout).
    #[error("transient: {0}")]
    Transient(String),
    /// Not worth retrying (a 5xx answer: no such mailbox, policy).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Sends built messages.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Hands `message` to the relay.
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>>;
}

/// An SMTP relay.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    display: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold credentials: show only where it goes.
        f.debug_struct("Smtp")
            .field("relay", &self.display)
            .finish()
    }
}

impl Smtp {
    /// A relay from a URL: `smtp://host:port` (plain, or with
    /// `?tls=required` / `?tls=opportunistic` for STARTTLS) or
    /// `smtps://user:password@host:465` (implicit TLS), credentials
    /// percent-encoded.
    /// Needs a Tokio runtime (the pool spawns its keeper).
    pub fn from_url(url: &str) -> Result<Self, String> {
        let parsed = check_url(url)?;
        let display = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port_or_known_default().unwrap_or(25)
        );
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("bad SMTP URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { transport, display })
    }
}

impl Mailer for Smtp {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            match self.transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
                Err(e) => Err(MailError::Transient(e.to_string())),
            }
        })
    }
}

/// Checks an SMTP URL's form without connecting: `smtp` or `smtps`, with a
/// host.
pub fn check_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "the scheme must be smtp or smtps, not {}",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no host".into());
    }
    Ok(parsed)
}

/// A folder receiving one `.eml` file per message (for laptops).
#[derive(Debug, Clone)]
pub struct Folder {
    dir: PathBuf,
}

impl Folder {
    /// Writes into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl Mailer for Folder {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let transient = |e: std::io::Error| MailError::Transient(e.to_string());
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(transient)?;
            // Names sort in sending order: microseconds, then a UUIDv7
            // (time-ordered) for mails of the same microsecond.
            let name = format!(
                "{}-{}.eml",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
                uuid::Uuid::now_v7().simple()
            );
            // Write then rename, so a reader never sees half a message.
            let partial = self.dir.join(format!(".{name}.partial"));
            tokio::fs::write(&partial, message.formatted())
                .await
                .map_err(transient)?;
            tokio::fs::rename(&partial, self.dir.join(name))
                .await
                .map_err(transient)?;
            Ok(())
        })
    }
}

/// The `Content-Language` header (RFC 3282).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLanguage(pub String);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::MultiPart;

    #[tokio::test]
    async fn the_folder_keeps_each_mail_as_an_eml_file() {
        let dir = std::env::temp_dir().join(format!("partnerhub-mail-{}", uuid::Uuid::new_v4()));
        let folder = Folder::new(&dir);
        for subject in ["Bonjour Ada", "Second"] {
            let message = Message::builder()
                .from("partnerhub <no-reply@partnerhub.test>".parse().unwrap())
                .to("ada@contoso.com".parse().unwrap())
                .subject(subject)
                .header(ContentLanguage("fr-FR".into()))
                .multipart(MultiPart::alternative_plain_html(
                    "texte".to_owned(),
                    "<p>html</p>".to_owned(),
                ))
                .unwrap();
            folder.send(message).await.unwrap();
        }
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(
            files
                .iter()
                .all(|f| f.extension().is_some_and(|e| e == "eml"))
        );
        let mails: Vec<_> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let first = mails
            .iter()
            .find(|m| m.contains("Subject: Bonjour Ada"))
            .unwrap_or_else(|| panic!("no first mail in {mails:?}"));
        assert!(first.contains("To: ada@contoso.com"), "{first}");
        assert!(first.contains("Content-Language: fr-FR"), "{first}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn smtp_urls_are_parsed_and_their_credentials_never_printed() {
        let smtp = Smtp::from_url("smtps://user:s3cret@relay.example.com:465").unwrap();
        let shown = format!("{smtp:?}");
        assert!(shown.contains("relay.example.com:465"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(Smtp::from_url("smtp://relay:587?tls=required").is_ok());
        assert!(Smtp::from_url("not a url").is_err());
        assert!(Smtp::from_url("http://relay").is_err());
    }
}
