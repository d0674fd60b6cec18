//! Mail and in-portal texts: minijinja templates per message and locale,
//! embedded at build time, rendered strictly (an undefined parameter is an
//! error, never an empty string).
//!
//! Each `templates/<locale>/<message>.j2` holds four blocks: `subject`,
//! `summary` (the in-portal body), `text` and `html`. The same source is
//! loaded twice: as `<locale>/<message>.txt` without escaping for the subject,
//! summary and text, and as `<locale>/<message>.html` with HTML escaping for
//! the HTML part, so a company named `<b>Contoso</b>` stays text in both.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::catalog::{self, LOCALES};

/// Every embedded template: (locale, message id, source).
pub const SOURCES: &[(&str, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    /// Locale it was rendered in, after fallback.
    pub locale: String,
    /// Mail subject and in-portal title (one line).
    pub subject: String,
    /// In-portal body (one sentence).
    pub summary: String,
    /// Plain-text mail body.
    pub text: String,
    /// HTML mail body.
    pub html: String,
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The catalog has no such message.
    #[error("unknown message {0:?}")]
    UnknownMessage(String),
    /// A parameter the catalog lists was not given.
    #[error("message {message:?} needs parameter {param:?}")]
    MissingParam {
        /// Message id.
        message: String,
        /// The missing parameter.
        param: String,
    },
    /// The template failed (an undefined variable, a syntax error).
    #[error("template {name}: {source:#}")]
    Template {
        /// Template name.
        name: String,
        /// minijinja's error.
        source: minijinja::Error,
    },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads every embedded template. `portal_url` is the base of the links
    /// in mails (`https://partners.example.com`).
    pub fn new(portal_url: &str) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.add_global(
            "portal_url",
            Value::from_safe_string(portal_url.trim_end_matches('/').to_owned()),
        );
        for (locale, message, source) in SOURCES {
            for ext in ["txt", "html"] {
                let name = format!("{locale}/{message}.{ext}");
                env.add_template_owned(name.clone(), (*source).to_owned())
                    .map_err(|source| RenderError::Template { name, source })?;
            }
        }
        Ok(Self { env })
    }

    /// The locale a request for `requested` is served in: the same locale
    /// (any case), else one of the same language, else `en-US`.
    pub fn resolve_locale(requested: &str) -> &'static str {
        let requested = requested.trim();
        if let Some(exact) = LOCALES.iter().find(|l| l.eq_ignore_ascii_case(requested)) {
            return exact;
        }
        let language = requested.split(['-', '_']).next().unwrap_or("");
        LOCALES
            .iter()
            .find(|l| {
                l.split('-')
                    .next()
                    .is_some_and(|x| x.eq_ignore_ascii_case(language))
            })
            .unwrap_or(&LOCALES[0])
    }

    /// Renders `message` for a recipient in (or near) `locale`.
    pub fn render(
        &self,
        message: &str,
        locale: &str,
        params: &BTreeMap<String, String>,
        recipient_name: &str,
    ) -> Result<Rendered, RenderError> {
        let entry =
            catalog::find(message).ok_or_else(|| RenderError::UnknownMessage(message.into()))?;
        if let Some(param) = entry.params.iter().find(|p| !params.contains_key(**p)) {
            return Err(RenderError::MissingParam {
                message: message.into(),
                param: (*param).into(),
            });
        }
        let locale = Self::resolve_locale(locale);
        let mut context: BTreeMap<String, Value> = params
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        context.insert("recipient_name".into(), Value::from(recipient_name));
        context.insert("locale".into(), Value::from(locale));
        let context = Value::from(context);
        let block = |ext: &str, block: &str| -> Result<String, RenderError> {
            let name = format!("{locale}/{message}.{ext}");
            let fail = |source| RenderError::Template {
                name: name.clone(),
                source,
            };
            let template = self.env.get_template(&name).map_err(fail)?;
            let mut captured = template.render_captured(context.clone()).map_err(fail)?;
            let rendered = captured
                .with_state_mut(|state| state.render_block(block))
                .map_err(fail)?;
            Ok(rendered.trim().to_owned())
        };
        Ok(Rendered {
            locale: locale.to_owned(),
            subject: block("txt", "subject")?.replace(['\r', '\n'], " "),
            summary: block("txt", "summary")?,
            text: block("txt", "text")?,
            html: block("html", "html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::catalog::{MESSAGES, Message};

    const PORTAL: &str = "https://portal.test";
    const TOKEN: &str = "k3J9x-Qv_7fLz2WsR8tYb0nA";
    /// The verification statuses, plus one the templates do not know.
    const STATUSES: &[&str] = &["NONE", "PENDING", "AUTHORIZED", "REJECTED", "SOMETHING_NEW"];
    /// The verification sub-statuses, plus one the templates do not know.
    const SUB_STATUSES: &[&str] = &[
        "ENTRY",
        "EMAIL_OWNERSHIP",
        "EMAIL_DOMAIN",
        "EMPLOYMENT_VERIFICATION",
        "BUSINESS_VERIFICATION",
        "DECISION",
        "OTHER",
        "SOMETHING_NEW",
    ];

    /// A realistic value for each catalog parameter.
    fn sample(param: &str) -> &'static str {
        match param {
            "token" => TOKEN,
            "account_name" => "Contoso Ltd",
            "expires_days" => "7",
            "given_name" => "Ana",
            "expires_minutes" => "30",
            "sign_in_email" => "ana.souza@contoso.com",
            "change_time" => "2025-06-01 09:30 UTC",
            "legal_name" => "Contoso Limited",
            "expires_hours" => "48",
            "status" => "PENDING",
            "sub_status" => "EMAIL_OWNERSHIP",
            "reason" => "The company name does not match the business registry.",
            "document_types" => "business_registration, tax_certificate",
            "due_date" => "2025-07-15",
            "program" => "Microsoft AI Cloud Partner Program",
            "initiator_name" => "Contoso Ltd",
            "invitee_name" => "Fabrikam Inc",
            "expire_date" => "2025-07-31",
            "locations_moved" => "2",
            "members_moved" => "3",
            "invoice_id" => "INV-2025-00042",
            "amount" => "1234.50 EUR",
            "payment_id" => "PAY-7781",
            "days_late" => "12",
            other => panic!("no sample value for parameter {other:?}: add one"),
        }
    }

    /// The page a token link must point at, per message with a `token`.
    fn token_path(message: &str) -> &'static str {
        match message {
            "identity.invitation" => "/invitations/accept?token=",
            "identity.password_reset" => "/password/reset?token=",
            "verification.email_ownership" => "/verification/email?token=",
            "notification.verify_email" => "/preferences/verify-email?token=",
            "notification.verify_alternate_email" => "/preferences/verify-alternate-email?token=",
            other => panic!("{other} has a token but no expected link: add one"),
        }
    }

    /// Exactly the catalog parameters of `message` with sample values; every
    /// combination of `status` and `sub_status` when it has them.
    fn variants(message: &Message) -> Vec<BTreeMap<String, String>> {
        let base: BTreeMap<String, String> = message
            .params
            .iter()
            .map(|p| ((*p).to_owned(), sample(p).to_owned()))
            .collect();
        let mut out = vec![base];
        for (param, values) in [("status", STATUSES), ("sub_status", SUB_STATUSES)] {
            if message.params.contains(&param) {
                out = out
                    .into_iter()
                    .flat_map(|params| {
                        values.iter().map(move |value| {
                            let mut params = params.clone();
                            params.insert(param.to_owned(), (*value).to_owned());
                            params
                        })
                    })
                    .collect();
            }
        }
        out
    }

    fn templates() -> Templates {
        Templates::new(PORTAL).expect("templates load")
    }

    fn source(locale: &str, message: &str) -> Option<&'static str> {
        SOURCES
            .iter()
            .find(|(l, m, _)| *l == locale && *m == message)
            .map(|(_, _, source)| *source)
    }

    /// Whether `source` uses `name` as a whole identifier.
    fn mentions(source: &str, name: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        source.match_indices(name).any(|(at, _)| {
            let before = source[..at].chars().next_back();
            let after = source[at + name.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
    }

    #[test]
    fn every_message_renders_in_every_locale() {
        let templates = templates();
        for message in MESSAGES {
            for variant in variants(message) {
                let mut subjects = BTreeMap::new();
                for locale in LOCALES {
                    assert!(
                        source(locale, message.id).is_some(),
                        "no template {locale}/{}.j2",
                        message.id
                    );
                    for recipient in ["", "Ana Souza"] {
                        let what = format!("{locale}/{} with {variant:?}", message.id);
                        let r = templates
                            .render(message.id, locale, &variant, recipient)
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(r.locale, *locale, "{what}");
                        assert!(!r.subject.is_empty(), "{what}: empty subject");
                        assert!(!r.subject.contains(['\r', '\n']), "{what}: subject");
                        assert!(!r.summary.is_empty(), "{what}: empty summary");
                        assert!(!r.summary.contains('\n'), "{what}: summary on lines");
                        assert!(!r.text.is_empty(), "{what}: empty text");
                        assert!(!r.html.is_empty(), "{what}: empty html");
                        for (part, out) in [
                            ("subject", &r.subject),
                            ("summary", &r.summary),
                            ("text", &r.text),
                            ("html", &r.html),
                        ] {
                            for bad in ["{{", "}}", "{%", "%}", "  ", " ,", " .", "\n\n\n"] {
                                assert!(!out.contains(bad), "{what}: {part} has {bad:?}:\n{out}");
                            }
                            assert!(
                                out.lines().all(|l| l == l.trim_end()),
                                "{what}: {part} has trailing whitespace:\n{out}"
                            );
                        }
                        // Every mail links to the portal.
                        assert!(r.text.contains(PORTAL), "{what}: text link");
                        assert!(
                            r.html.contains(&format!("href=\"{PORTAL}")),
                            "{what}: html link"
                        );
                        if message.params.contains(&"token") {
                            let link = format!("{PORTAL}{}{TOKEN}", token_path(message.id));
                            assert!(r.text.contains(&link), "{what}: text lacks {link}");
                            assert!(r.html.contains(&link), "{what}: html lacks {link}");
                        }
                        if !recipient.is_empty() && !message.params.contains(&"given_name") {
                            assert!(r.text.contains(recipient), "{what}: no greeting");
                        }
                        subjects.insert(*locale, r.subject);
                    }
                }
                let en = &subjects["en-US"];
                let fr = &subjects["fr-FR"];
                assert_ne!(
                    en, fr,
                    "{} {variant:?}: fr-FR subject untranslated",
                    message.id
                );
            }
        }
    }

    #[test]
    fn verification_status_subject_depends_on_the_status() {
        let templates = templates();
        let message = catalog::find("verification.status_changed").expect("in catalog");
        for locale in LOCALES {
            let subjects: BTreeSet<String> = STATUSES
                .iter()
                .map(|status| {
                    let mut params: BTreeMap<String, String> = message
                        .params
                        .iter()
                        .map(|p| ((*p).to_owned(), sample(p).to_owned()))
                        .collect();
                    params.insert("status".into(), (*status).into());
                    templates
                        .render(message.id, locale, &params, "")
                        .expect("renders")
                        .subject
                })
                .collect();
            assert_eq!(subjects.len(), STATUSES.len(), "{locale}: {subjects:?}");
        }
    }

    #[test]
    fn merge_completed_states_what_moved() {
        let templates = templates();
        let message = catalog::find("merge.completed").expect("in catalog");
        let params = &variants(message)[0];
        let en = templates
            .render(message.id, "en-US", params, "")
            .expect("renders");
        let state = "Fabrikam Inc was merged into Contoso Ltd: 2 locations and 3 users moved.";
        assert_eq!(en.summary, state);
        assert!(
            en.text.contains("2 locations and 3 users moved"),
            "{}",
            en.text
        );
        let fr = templates
            .render(message.id, "fr-FR", params, "")
            .expect("renders");
        for out in [&fr.summary, &fr.text] {
            assert!(out.contains("2 emplacements et 3 utilisateurs"), "{out}");
            assert!(out.contains("Fabrikam Inc"), "{out}");
            assert!(out.contains("Contoso Ltd"), "{out}");
        }
    }

    #[test]
    fn billing_mail_says_it_goes_to_the_alternate_email() {
        let templates = templates();
        for message in MESSAGES.iter().filter(|m| m.id.starts_with("billing.")) {
            for (locale, words) in [("en-US", "alternate email"), ("fr-FR", "e-mail secondaire")] {
                let r = templates
                    .render(message.id, locale, &variants(message)[0], "")
                    .expect("renders");
                assert!(r.text.contains(words), "{locale}/{}", message.id);
                assert!(r.html.contains(words), "{locale}/{}", message.id);
            }
        }
    }

    #[test]
    fn templates_match_the_catalog() {
        let mut per_locale: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (locale, message, source) in SOURCES {
            assert!(
                LOCALES.contains(locale),
                "template in unknown locale {locale}"
            );
            let entry = catalog::find(message)
                .unwrap_or_else(|| panic!("{locale}/{message}.j2: not in the catalog"));
            per_locale.entry(locale).or_default().insert(message);
            for block in ["subject", "summary", "text", "html"] {
                assert!(
                    source.contains(&format!("{{% block {block}")),
                    "{locale}/{message}.j2: no block {block}"
                );
            }
            for param in entry.params {
                assert!(
                    mentions(source, param),
                    "{locale}/{message}.j2 never uses {param}"
                );
            }
            assert!(
                source.ends_with('\n'),
                "{locale}/{message}.j2: no final newline"
            );
            assert!(
                !source.ends_with("\n\n"),
                "{locale}/{message}.j2: blank last line"
            );
            for (n, line) in source.lines().enumerate() {
                assert_eq!(line, line.trim_end(), "{locale}/{message}.j2:{}", n + 1);
            }
        }
        let catalog: BTreeSet<&str> = MESSAGES.iter().map(|m| m.id).collect();
        for locale in LOCALES {
            assert_eq!(per_locale.get(locale), Some(&catalog), "{locale}");
        }
    }

    #[test]
    fn params_are_html_escaped_only_in_html() {
        let templates = templates();
        let evil = "<b>Contoso & Co</b>";
        let escaped = "&lt;b&gt;Contoso &amp; Co&lt;&#x2f;b&gt;";
        let params: BTreeMap<String, String> = [
            ("token".to_owned(), TOKEN.to_owned()),
            ("account_name".to_owned(), evil.to_owned()),
            ("expires_days".to_owned(), "7".to_owned()),
        ]
        .into();
        for locale in LOCALES {
            let r = templates
                .render("identity.invitation", locale, &params, evil)
                .expect("renders");
            assert!(r.html.contains(escaped), "{locale}: {}", r.html);
            assert!(!r.html.contains("<b>"), "{locale}: {}", r.html);
            assert!(r.text.contains(evil), "{locale}: {}", r.text);
            assert!(r.subject.contains(evil), "{locale}: {}", r.subject);
            assert!(r.summary.contains(evil), "{locale}: {}", r.summary);
        }
        // Every parameter of every message, and the recipient's name.
        for message in MESSAGES {
            let mut params = variants(message).remove(0);
            for (name, value) in params.iter_mut() {
                if name != "token" {
                    *value = evil.to_owned();
                }
            }
            for locale in LOCALES {
                let what = format!("{locale}/{}", message.id);
                let r = templates
                    .render(message.id, locale, &params, evil)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(!r.html.contains("<b>"), "{what}: {}", r.html);
                assert!(r.html.contains("&lt;b&gt;"), "{what}: {}", r.html);
                assert!(r.text.contains(evil), "{what}: {}", r.text);
            }
        }
    }

    #[test]
    fn a_missing_param_is_an_error() {
        let templates = templates();
        for message in MESSAGES {
            for param in message.params {
                let mut params = variants(message).remove(0);
                params.remove(*param);
                for locale in LOCALES {
                    match templates.render(message.id, locale, &params, "") {
                        Err(RenderError::MissingParam {
                            message: m,
                            param: p,
                        }) => {
                            assert_eq!(m, message.id);
                            assert_eq!(p, *param);
                        }
                        other => panic!("{locale}/{} without {param}: {other:?}", message.id),
                    }
                }
            }
        }
    }

    #[test]
    fn an_unknown_message_is_an_error() {
        let err = templates()
            .render("identity.nope", "en-US", &BTreeMap::new(), "")
            .expect_err("unknown message");
        assert!(
            matches!(&err, RenderError::UnknownMessage(id) if id == "identity.nope"),
            "{err:?}"
        );
    }

    #[test]
    fn an_undefined_variable_is_an_error() {
        // Replace the loaded invitation by templates that use a variable no
        // one defines: the real environment must refuse to render them.
        let message = catalog::find("identity.invitation").expect("in catalog");
        let params = variants(message).remove(0);
        for broken in [
            "{% block subject %}Hi {{ nobody }}{% endblock %}",
            "{% block subject %}{% if nobody %}x{% endif %}{% endblock %}",
            "{% block subject %}x{% endblock %}{% block html %}{{ nobody.name }}{% endblock %}",
        ] {
            let mut templates = templates();
            for ext in ["txt", "html"] {
                templates
                    .env
                    .add_template_owned(format!("en-US/identity.invitation.{ext}"), broken)
                    .expect("parses");
            }
            let err = templates
                .render(message.id, "en-US", &params, "")
                .expect_err(broken);
            assert!(
                matches!(&err, RenderError::Template { name, .. } if name.starts_with("en-US/identity.invitation.")),
                "{broken}: {err:?}"
            );
            // Other locales still render.
            templates
                .render(message.id, "fr-FR", &params, "")
                .expect("fr-FR untouched");
        }
    }

    #[test]
    fn locales_fall_back() {
        for (requested, served) in [
            ("en-US", "en-US"),
            ("fr-FR", "fr-FR"),
            ("fr-CA", "fr-FR"),
            ("FR-fr", "fr-FR"),
            ("fr", "fr-FR"),
            ("fr_BE", "fr-FR"),
            (" fr-FR ", "fr-FR"),
            ("de-DE", "en-US"),
            ("", "en-US"),
            ("en-GB", "en-US"),
        ] {
            assert_eq!(
                Templates::resolve_locale(requested),
                served,
                "{requested:?}"
            );
        }
        let message = catalog::find("identity.password_changed").expect("in catalog");
        let r = templates()
            .render(message.id, "fr-CA", &variants(message)[0], "")
            .expect("renders");
        assert_eq!(r.locale, "fr-FR");
    }
}
