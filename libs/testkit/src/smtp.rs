//! An SMTP server for tests. The notification service's real SMTP client
//! delivers to it over TCP on 127.0.0.1, and the test reads what arrived.
//! It can refuse messages and recipients on demand, so tests can prove
//! retries and permanent failures against a real protocol peer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use mail_parser::{MessageParser, PartType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest line read at once; a longer command line closes the session.
const MAX_LINE: usize = 1 << 20;
/// Largest message accepted (advertised as SIZE); larger ones get 552.
const MAX_MESSAGE: usize = 32 << 20;

/// One message the sink accepted, parsed.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), empty for a null sender.
    pub envelope_from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub envelope_to: Vec<String>,
    /// The address of the `From` header (without display name).
    pub from: String,
    /// The addresses of the `To` header.
    pub to: Vec<String>,
    /// The `Subject` header, RFC 2047 decoded.
    pub subject: String,
    /// The first text/plain part, decoded; empty if none.
    pub text: String,
    /// The first text/html part, decoded; empty if none.
    pub html: String,
    /// The `Content-Language` header, if any.
    pub content_language: Option<String>,
    /// The top-level headers in order. Values are unfolded and trimmed but
    /// not decoded.
    pub headers: Vec<(String, String)>,
    /// The message as received, after dot-unstuffing.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// The first top-level header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `address` is one of the envelope recipients (case-insensitive).
    pub fn is_for(&self, address: &str) -> bool {
        self.envelope_to.iter().any(|to| same_address(to, address))
    }

    fn parse(envelope_from: String, envelope_to: Vec<String>, raw: Vec<u8>) -> Self {
        let mut mail = ReceivedMail {
            envelope_from,
            envelope_to,
            ..Default::default()
        };
        if let Some(message) = MessageParser::default().parse(&raw) {
            mail.from = message
                .from()
                .and_then(|from| from.first())
                .and_then(|from| from.address())
                .unwrap_or_default()
                .to_owned();
            mail.to = message
                .to()
                .map(|to| to.iter().filter_map(|a| a.address()).map(str::to_owned))
                .into_iter()
                .flatten()
                .collect();
            mail.subject = message.subject().unwrap_or_default().to_owned();
            // Only a real text/plain or text/html part counts: mail-parser
            // would otherwise offer a conversion of the other one.
            if let Some(PartType::Text(text)) = message.text_part(0).map(|p| &p.body) {
                mail.text = text.to_string();
            }
            if let Some(PartType::Html(html)) = message.html_part(0).map(|p| &p.body) {
                mail.html = html.to_string();
            }
            mail.headers = message
                .headers_raw()
                .map(|(name, value)| (name.to_owned(), unfold(value)))
                .collect();
        }
        mail.content_language = mail.header("Content-Language").map(str::to_owned);
        mail.raw = raw;
        mail
    }

    fn summary(&self) -> String {
        format!("to {:?} subject {:?}", self.envelope_to, self.subject)
    }
}

/// An SMTP server on 127.0.0.1, port 0, that keeps what it receives. It
/// offers 8BITMIME, SMTPUTF8, PIPELINING and AUTH PLAIN/LOGIN (any
/// credentials), never STARTTLS. It stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    accept: JoinHandle<()>,
}

impl SmtpSink {
    /// Binds 127.0.0.1 port 0 and serves in the background. Call it inside a
    /// Tokio runtime.
    pub fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current()
            .context("SmtpSink::start needs a Tokio runtime")?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let accept = runtime.spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(Self {
            addr,
            shared,
            stop,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host to give an SMTP client (`127.0.0.1`).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port to give an SMTP client.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers the next `count` messages with `code` and `text` at the end of
    /// DATA instead of 250 (451 is transient, 550 permanent). They are not
    /// kept. Calls add up in order.
    pub fn fail_next(&self, count: usize, code: u16, text: &str) {
        let text = text.replace(['\r', '\n'], " ");
        let mut state = self.shared.lock();
        state
            .failures
            .extend(std::iter::repeat_n((code, text), count));
    }

    /// Refuses `RCPT TO` with `code` for every address ending with
    /// `address_suffix` (case-insensitive), from now on.
    pub fn reject_recipient(&self, address_suffix: &str, code: u16) {
        let suffix = address_suffix.to_lowercase();
        self.shared.lock().rejections.push((suffix, code));
    }

    /// How many messages were sent to the end of DATA, failed ones included.
    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// The messages received and not yet taken by [`SmtpSink::next_to`].
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().inbox.clone()
    }

    /// How many accepted messages had `address` as an envelope recipient,
    /// taken ones included.
    pub fn count_to(&self, address: &str) -> usize {
        self.shared.lock().count_to(address)
    }

    /// Takes the first message for `address` (an envelope recipient,
    /// case-insensitive), waiting up to `timeout` for one to arrive.
    pub async fn next_to(&self, address: &str, timeout: Duration) -> anyhow::Result<ReceivedMail> {
        self.next_matching(address, |_| true, timeout).await
    }

    /// Takes the first message for `address` that `wanted` accepts, waiting
    /// up to `timeout` for one to arrive. Other messages stay where they are:
    /// mails sent by different services may arrive in any order.
    pub async fn next_matching(
        &self,
        address: &str,
        wanted: impl Fn(&ReceivedMail) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so an arrival in between wakes us.
            arrived.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if let Some(i) = state
                    .inbox
                    .iter()
                    .position(|m| m.is_for(address) && wanted(m))
                {
                    return Ok(state.inbox.remove(i));
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                anyhow::bail!(
                    "no mail to {address} within {timeout:?}; {}",
                    self.shared.lock().describe()
                );
            }
        }
    }

    /// Fails if a message for `address` is waiting or arrives within `wait`.
    pub async fn expect_none_to(&self, address: &str, wait: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        let before = self.count_to(address);
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let state = self.shared.lock();
                if let Some(mail) = state.inbox.iter().find(|m| m.is_for(address)) {
                    anyhow::bail!("unexpected mail to {address}: {}", mail.summary());
                }
                let now = state.count_to(address);
                if now > before {
                    anyhow::bail!("{} unexpected mail(s) to {address}", now - before);
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(());
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.cancel();
        self.accept.abort();
    }
}

/// What the sessions and the test share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Default)]
struct State {
    inbox: Vec<ReceivedMail>,
    /// Envelope recipients of every accepted message.
    delivered: Vec<Vec<String>>,
    attempts: usize,
    failures: VecDeque<(u16, String)>,
    /// Lowercased address suffixes and their reply codes.
    rejections: Vec<(String, u16)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide what was received.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rejection(&self, address: &str) -> Option<u16> {
        let address = address.to_lowercase();
        let state = self.lock();
        let rejection = state.rejections.iter().find(|(s, _)| address.ends_with(s));
        rejection.map(|(_, code)| *code)
    }

    /// Records a message that reached the end of DATA; returns the reply.
    fn complete(&self, from: String, to: Vec<String>, raw: Vec<u8>) -> String {
        let mut state = self.lock();
        state.attempts += 1;
        if let Some((code, text)) = state.failures.pop_front() {
            return format!("{code} {text}");
        }
        let mail = ReceivedMail::parse(from, to, raw);
        state.delivered.push(mail.envelope_to.clone());
        state.inbox.push(mail);
        drop(state);
        self.arrived.notify_waiters();
        "250 OK: queued".to_owned()
    }
}

impl State {
    fn count_to(&self, address: &str) -> usize {
        let delivered = self.delivered.iter();
        delivered
            .filter(|to| to.iter().any(|a| same_address(a, address)))
            .count()
    }

    fn describe(&self) -> String {
        let waiting: Vec<String> = self.inbox.iter().map(ReceivedMail::summary).collect();
        format!(
            "{} attempt(s), {} accepted, waiting: [{}]",
            self.attempts,
            self.delivered.len(),
            waiting.join("; ")
        )
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "SMTP sink could not accept a connection.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                result = session(stream, &shared) => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "SMTP sink session failed.");
                    }
                }
            }
        });
    }
}

const EHLO_EXTENSIONS: &str = "250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                               250-AUTH PLAIN LOGIN\r\n250 SIZE ";

/// One SMTP connection. Replies go out in the order commands came in, so
/// pipelined commands work.
async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 localhost ESMTP partnerhub test sink\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        if !read_line(&mut read, &mut line).await? {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            write.write_all(b"500 Line too long\r\n").await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                (from, to) = (None, Vec::new());
                format!("250-localhost greets {arg}\r\n{EHLO_EXTENSIONS}{MAX_MESSAGE}")
            }
            "HELO" => {
                (from, to) = (None, Vec::new());
                "250 localhost".to_owned()
            }
            "MAIL" => match path(arg, "FROM:") {
                Some(sender) => {
                    (from, to) = (Some(sender), Vec::new());
                    "250 OK".to_owned()
                }
                None => "501 Syntax: MAIL FROM:<address>".to_owned(),
            },
            "RCPT" => match (&from, path(arg, "TO:")) {
                (None, _) => "503 MAIL first".to_owned(),
                (Some(_), None) => "501 Syntax: RCPT TO:<address>".to_owned(),
                (Some(_), Some(recipient)) => match shared.rejection(&recipient) {
                    Some(code) => format!("{code} Recipient {recipient} refused"),
                    None => {
                        to.push(recipient);
                        "250 OK".to_owned()
                    }
                },
            },
            "DATA" if from.is_none() => "503 MAIL first".to_owned(),
            "DATA" if to.is_empty() => "554 No valid recipients".to_owned(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut read).await?;
                let (sender, recipients) =
                    (from.take().unwrap_or_default(), std::mem::take(&mut to));
                match data {
                    Data::Closed => return Ok(()),
                    Data::TooLarge => "552 Message too large".to_owned(),
                    Data::Message(raw) => shared.complete(sender, recipients, raw),
                }
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                "250 OK".to_owned()
            }
            "NOOP" => "250 OK".to_owned(),
            "VRFY" => "252 Cannot VRFY user, but will accept message".to_owned(),
            "AUTH" => match authenticate(&mut read, &mut write, arg).await? {
                Some(reply) => reply,
                None => return Ok(()),
            },
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 Command not recognized".to_owned(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// Reads one line (at most [`MAX_LINE`] bytes) into `line`; false at end of
/// stream.
async fn read_line(
    read: &mut BufReader<OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    let n = read.take(MAX_LINE as u64).read_until(b'\n', line).await?;
    Ok(n > 0)
}

enum Data {
    Message(Vec<u8>),
    TooLarge,
    Closed,
}

/// Reads a message up to the line with a single dot, undoing dot-stuffing.
async fn read_data(read: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Data> {
    let mut data = Vec::new();
    let mut too_large = false;
    let mut line = Vec::new();
    // A line longer than MAX_LINE comes in pieces; only the first piece
    // starts a line.
    let mut line_start = true;
    loop {
        if !read_line(read, &mut line).await? {
            return Ok(Data::Closed);
        }
        if line_start && (line == b".\r\n" || line == b".\n") {
            break;
        }
        let content = match line.strip_prefix(b".") {
            Some(rest) if line_start => rest,
            _ => &line[..],
        };
        if data.len() + content.len() > MAX_MESSAGE {
            too_large = true;
        } else if !too_large {
            data.extend_from_slice(content);
        }
        line_start = line.ends_with(b"\n");
    }
    Ok(if too_large {
        Data::TooLarge
    } else {
        Data::Message(data)
    })
}

/// Runs AUTH PLAIN or LOGIN, accepting any credentials. Returns the final
/// reply, or `None` if the client hung up.
async fn authenticate(
    read: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
    arg: &str,
) -> std::io::Result<Option<String>> {
    let mut words = arg.split_whitespace();
    let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
    let initial = words.next().is_some();
    // Challenges still to send ("Username:" and "Password:" in base64).
    let prompts: &[&str] = match (mechanism.as_str(), initial) {
        ("PLAIN", true) => &[],
        ("PLAIN", false) => &[""],
        ("LOGIN", true) => &["UGFzc3dvcmQ6"],
        ("LOGIN", false) => &["VXNlcm5hbWU6", "UGFzc3dvcmQ6"],
        _ => return Ok(Some("504 Unrecognized authentication type".to_owned())),
    };
    let mut line = Vec::new();
    for prompt in prompts {
        write
            .write_all(format!("334 {prompt}\r\n").as_bytes())
            .await?;
        if !read_line(read, &mut line).await? {
            return Ok(None);
        }
        if line.trim_ascii() == b"*" {
            return Ok(Some("501 Authentication cancelled".to_owned()));
        }
    }
    Ok(Some("235 Authentication successful".to_owned()))
}

/// The address in `FROM:<a@b> PARAMS` or `TO:<a@b>`; `prefix` is matched
/// case-insensitively.
fn path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let address = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>')?.0,
        None => rest.split_whitespace().next().unwrap_or_default(),
    };
    Some(address.to_owned())
}

fn same_address(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Joins folded header lines and trims the value.
fn unfold(value: &str) -> String {
    value.replace(['\r', '\n'], "").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::{HeaderName, HeaderValue};
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    const WAIT: Duration = Duration::from_secs(5);

    fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
            .port(sink.port())
            .timeout(Some(WAIT))
            .build()
    }

    fn message(to: &str, subject: &str) -> Message {
        Message::builder()
            .from("Partnerhub <no-reply@partnerhub.test>".parse().unwrap())
            .to(to.parse::<Mailbox>().unwrap())
            .subject(subject)
            .body(String::from("Bonjour."))
            .unwrap()
    }

    #[tokio::test]
    async fn decodes_subject_and_alternative_bodies() {
        let sink = SmtpSink::start().unwrap();
        let email = Message::builder()
            .from("Partnerhub <no-reply@partnerhub.test>".parse().unwrap())
            .to("Adèle <adele@contoso.test>".parse().unwrap())
            .subject("Vérifiez votre société — étape 2")
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                "fr".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                String::from("Bonjour Adèle,\r\n.ligne avec un point\r\nÀ bientôt."),
                String::from("<p>Bonjour Adèle, à bientôt.</p>"),
            ))
            .unwrap();
        transport(&sink).send(email).await.unwrap();

        let mail = sink.next_to("ADELE@contoso.test", WAIT).await.unwrap();
        assert_eq!(mail.envelope_from, "no-reply@partnerhub.test");
        assert_eq!(mail.envelope_to, ["adele@contoso.test"]);
        assert_eq!(mail.from, "no-reply@partnerhub.test");
        assert_eq!(mail.to, ["adele@contoso.test"]);
        assert_eq!(mail.subject, "Vérifiez votre société — étape 2");
        assert_eq!(
            mail.text.replace("\r\n", "\n"),
            "Bonjour Adèle,\n.ligne avec un point\nÀ bientôt."
        );
        assert_eq!(mail.html.trim(), "<p>Bonjour Adèle, à bientôt.</p>");
        assert_eq!(mail.content_language.as_deref(), Some("fr"));
        assert!(
            mail.header("content-type")
                .is_some_and(|v| v.starts_with("multipart/alternative"))
        );
        assert!(sink.received().is_empty(), "next_to takes the message");
        assert_eq!(sink.count_to("adele@contoso.test"), 1);
    }

    #[tokio::test]
    async fn transient_failure_then_success() {
        let sink = SmtpSink::start().unwrap();
        sink.fail_next(1, 451, "Try again later");
        let smtp = transport(&sink);

        let error = smtp
            .send(message("a@contoso.test", "one"))
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(sink.count_to("a@contoso.test"), 0);

        smtp.send(message("a@contoso.test", "one")).await.unwrap();
        assert_eq!(
            sink.next_to("a@contoso.test", WAIT).await.unwrap().subject,
            "one"
        );
        assert_eq!(sink.attempts(), 2);
        assert_eq!(sink.count_to("a@contoso.test"), 1);
    }

    #[tokio::test]
    async fn permanent_failure_is_permanent() {
        let sink = SmtpSink::start().unwrap();
        sink.fail_next(1, 550, "Mailbox unavailable");
        let error = transport(&sink)
            .send(message("b@contoso.test", "two"))
            .await
            .unwrap_err();
        assert!(error.is_permanent(), "{error}");
        assert_eq!(sink.attempts(), 1);
        sink.expect_none_to("b@contoso.test", Duration::from_millis(100))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn rejected_recipient_is_refused() {
        let sink = SmtpSink::start().unwrap();
        sink.reject_recipient("@blocked.test", 550);
        let smtp = transport(&sink);

        let error = smtp
            .send(message("X@Blocked.test", "three"))
            .await
            .unwrap_err();
        assert!(error.is_permanent(), "{error}");
        assert_eq!(sink.attempts(), 0, "no DATA after a refused recipient");

        smtp.send(message("ok@contoso.test", "three"))
            .await
            .unwrap();
        assert_eq!(sink.count_to("ok@contoso.test"), 1);
    }

    #[tokio::test]
    async fn count_to_counts_every_accepted_message() {
        let sink = SmtpSink::start().unwrap();
        let smtp = transport(&sink);
        for subject in ["first", "second"] {
            smtp.send(message("c@contoso.test", subject)).await.unwrap();
        }
        smtp.send(message("d@contoso.test", "other")).await.unwrap();

        let first = sink.next_to("c@contoso.test", WAIT).await.unwrap();
        assert_eq!(first.subject, "first");
        assert_eq!(sink.count_to("C@contoso.test"), 2);
        assert_eq!(sink.received().len(), 2);
        let error = sink
            .expect_none_to("c@contoso.test", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("second"), "{error}");
    }

    #[tokio::test]
    async fn next_to_waits_for_a_later_message() {
        let sink = SmtpSink::start().unwrap();
        let smtp = transport(&sink);
        let send = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            smtp.send(message("late@contoso.test", "late")).await
        });
        let mail = sink.next_to("late@contoso.test", WAIT).await.unwrap();
        assert_eq!(mail.subject, "late");
        send.await.unwrap().unwrap();

        let error = sink
            .next_to("nobody@contoso.test", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("no mail to nobody@contoso.test"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn accepts_a_message_of_several_mebibytes() {
        let sink = SmtpSink::start().unwrap();
        let body = "Données volumineuses. ".repeat(200_000);
        let email = Message::builder()
            .from("no-reply@partnerhub.test".parse().unwrap())
            .to("big@contoso.test".parse().unwrap())
            .subject("big")
            .body(body.clone())
            .unwrap();
        transport(&sink).send(email).await.unwrap();
        let mail = sink.next_to("big@contoso.test", WAIT).await.unwrap();
        assert!(mail.raw.len() > 4 << 20, "{} bytes", mail.raw.len());
        assert_eq!(mail.text.replace("\r\n", "\n").trim_end(), body.trim_end());
    }

    #[tokio::test]
    async fn accepts_any_credentials() {
        let sink = SmtpSink::start().unwrap();
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
            .port(sink.port())
            .credentials(Credentials::new("user".into(), "secret".into()))
            .timeout(Some(WAIT))
            .build();
        smtp.send(message("e@contoso.test", "auth")).await.unwrap();
        assert_eq!(sink.count_to("e@contoso.test"), 1);
    }

    /// Raw protocol: pipelined commands, dot-stuffing, several recipients,
    /// RSET, VRFY and an unknown command, answered in order.
    #[tokio::test]
    async fn pipelined_session_is_answered_in_order() {
        let sink = SmtpSink::start().unwrap();
        let stream = TcpStream::connect(sink.addr()).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut line = Vec::new();
        read_line(&mut read, &mut line).await.unwrap();
        assert!(line.starts_with(b"220 "));

        write
            .write_all(
                b"EHLO client\r\nMAIL FROM:<s@x.test>\r\nRSET\r\nVRFY someone\r\nXYZZY\r\n\
                  MAIL FROM:<s@x.test> BODY=8BITMIME\r\nRCPT TO:<p@x.test>\r\nRCPT TO:<q@x.test>\r\n\
                  DATA\r\n",
            )
            .await
            .unwrap();
        let mut codes = Vec::new();
        while codes.len() < 9 {
            read_line(&mut read, &mut line).await.unwrap();
            if line.get(3) == Some(&b' ') {
                codes.push(String::from_utf8_lossy(&line[..3]).into_owned());
            }
        }
        assert_eq!(
            codes,
            [
                "250", "250", "250", "252", "500", "250", "250", "250", "354"
            ]
        );
        write
            .write_all(b"Subject: dots\r\n\r\n..hidden\r\n.\r\nNOOP\r\nQUIT\r\n")
            .await
            .unwrap();
        for expected in ["250", "250", "221"] {
            read_line(&mut read, &mut line).await.unwrap();
            assert!(
                line.starts_with(expected.as_bytes()),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }

        let mail = sink.next_to("q@x.test", WAIT).await.unwrap();
        assert_eq!(mail.envelope_to, ["p@x.test", "q@x.test"]);
        assert_eq!(mail.subject, "dots");
        assert_eq!(mail.raw, b"Subject: dots\r\n\r\n.hidden\r\n");
    }

    #[tokio::test]
    async fn stops_when_dropped() {
        let sink = SmtpSink::start().unwrap();
        let addr = sink.addr();
        drop(sink);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
