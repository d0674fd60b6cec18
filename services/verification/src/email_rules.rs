//! The email-domain and employment rules for the primary contact: which
//! addresses are refused outright (malformed, government, free mail, tenant
//! domains without mailboxes, shared mailboxes), and whether the domain is
//! the company's own or documents are needed.
//!
//! Pure: the caller gathers the company's domains (tenant domains and the
//! website) and acts on the [`EmailFinding`].

use partnerhub_platform::validate;

/// Reason: the address is not an email address.
pub const INVALID_EMAIL: &str = "INVALID_EMAIL";
/// Reason: the domain is a government's.
pub const GOVERNMENT_DOMAIN: &str = "GOVERNMENT_DOMAIN";
/// Reason: the domain is a free or personal mail provider's.
pub const FREE_MAIL_PROVIDER: &str = "FREE_MAIL_PROVIDER";
/// Reason: the domain is a Microsoft tenant's initial domain (`*.onmicrosoft.com`), which has no mailboxes of its own.
pub const NO_MAILBOX_DOMAIN: &str = "NO_MAILBOX_DOMAIN";
/// Reason: the mailbox is a shared or role mailbox, not a person's.
pub const ROLE_MAILBOX: &str = "ROLE_MAILBOX";
/// Reason: the domain is not known to be the company's.
pub const DOMAIN_NOT_OWNED: &str = "DOMAIN_NOT_OWNED";

/// What the email-domain and employment checks conclude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailFinding {
    /// The domain belongs to the company.
    Owned,
    /// Refused for good: `reason` is INVALID_EMAIL, GOVERNMENT_DOMAIN, FREE_MAIL_PROVIDER, NO_MAILBOX_DOMAIN or ROLE_MAILBOX; `message` says why in a sentence.
    Refused {
        /// One of the reason constants of this module.
        reason: &'static str,
        /// Why, in a sentence for the partner.
        message: String,
    },
    /// The domain is not known to be the company's: documents (domain ownership proof, employment letter) are needed. reason DOMAIN_NOT_OWNED.
    NeedsDocuments {
        /// [`DOMAIN_NOT_OWNED`].
        reason: &'static str,
        /// What to send, in a sentence for the partner.
        message: String,
    },
}

/// Checks `email` against the company's domains (tenant domains and the website host; subdomains of a company domain count as owned; compare case-insensitively; a website given as a URL `https://www.contoso.com/fr` means `contoso.com`, strip a leading `www.`).
///
/// The rules, in order: a malformed address is refused (INVALID_EMAIL); then
/// a government domain (GOVERNMENT_DOMAIN), a free-mail domain
/// (FREE_MAIL_PROVIDER), a `*.onmicrosoft.com` domain (NO_MAILBOX_DOMAIN,
/// even when it is the company's own tenant), a role mailbox
/// (ROLE_MAILBOX); then ownership. Company domains without a dot (`com`)
/// are ignored, so a bad entry cannot make every address owned.
pub fn check(email: &str, company_domains: &[String]) -> EmailFinding {
    let Some(domain) = domain_of(email) else {
        return refused(INVALID_EMAIL, format!("`{email}` is not an email address."));
    };
    if is_government(&domain) {
        return refused(
            GOVERNMENT_DOMAIN,
            format!(
                "`{domain}` is a government domain; the primary contact must use an address at the company's own domain."
            ),
        );
    }
    if is_free_mail(&domain) {
        return refused(
            FREE_MAIL_PROVIDER,
            format!(
                "`{domain}` is a free email provider; the primary contact must use an address at the company's own domain."
            ),
        );
    }
    if is_within(&domain, "onmicrosoft.com") {
        return refused(
            NO_MAILBOX_DOMAIN,
            format!(
                "`{domain}` is a Microsoft tenant's initial domain without mailboxes; the primary contact must use an address at the company's own domain."
            ),
        );
    }
    let local = local_part(email).to_lowercase();
    if let Some(word) = role_word(&local) {
        return refused(
            ROLE_MAILBOX,
            format!(
                "`{local}` looks like a shared mailbox (it contains `{word}`); the primary contact must use a personal address."
            ),
        );
    }
    let owned = company_domains
        .iter()
        .filter_map(|d| company_domain(d))
        .any(|d| is_within(&domain, &d));
    if owned {
        EmailFinding::Owned
    } else {
        EmailFinding::NeedsDocuments {
            reason: DOMAIN_NOT_OWNED,
            message: format!(
                "`{domain}` is not known to be one of the company's domains; send proof that the company owns it and a letter showing the contact is employed there."
            ),
        }
    }
}

/// The domain part of an email, lower-cased, or None when it is not an email.
///
/// "An email" is what the platform's validation accepts (an RFC 5322
/// addr-spec of at most 254 characters whose domain has a dot), and not a
/// domain literal (`[192.0.2.1]`). An internationalised domain comes back in
/// its ASCII (punycode) form, as it would be compared with a website.
pub fn domain_of(email: &str) -> Option<String> {
    validate::email(email).ok()?;
    let (_, domain) = email.rsplit_once('@')?;
    if domain.starts_with('[') {
        return None;
    }
    host(domain)
}

fn refused(reason: &'static str, message: String) -> EmailFinding {
    EmailFinding::Refused { reason, message }
}

/// The part before the last `@` (the whole address when there is none).
fn local_part(email: &str) -> &str {
    email.rsplit_once('@').map_or(email, |(local, _)| local)
}

/// A host name in ASCII lower case without a trailing dot, or None when it is
/// not a domain name (an IP address, say).
fn host(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_lowercase();
    match url::Host::parse(&name).ok()? {
        url::Host::Domain(domain) if !domain.is_empty() => Some(domain),
        _ => None,
    }
}

/// A company domain from a tenant domain or a website (`https://www.contoso.com/fr`,
/// `www.contoso.com`, `Contoso.com`): the host without `www.`, or None when
/// there is no usable host or it has no dot.
fn company_domain(entry: &str) -> Option<String> {
    let entry = entry.trim();
    let rest = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host_only = host_port.split(':').next().unwrap_or_default();
    let domain = host(host_only)?;
    let domain = domain.strip_prefix("www.").unwrap_or(&domain).to_string();
    domain.contains('.').then_some(domain)
}

/// Whether `domain` is `parent` or one of its subdomains (label-wise:
/// `contoso.com.evil.net` and `notcontoso.com` are not within `contoso.com`).
fn is_within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Government suffixes beyond the `gov.xx`-style patterns: Japan, Korea and
/// a few others use `go.xx`; Canada `gc.ca`; Austria `gv.at`; Germany
/// `bund.de`; Switzerland `admin.ch`; the EU institutions `europa.eu`.
const GOVERNMENT_SUFFIXES: &[&str] = &[
    "go.jp",
    "go.kr",
    "go.th",
    "go.id",
    "go.ke",
    "go.tz",
    "go.ug",
    "go.cr",
    "govt.nz",
    "gc.ca",
    "gv.at",
    "bund.de",
    "admin.ch",
    "europa.eu",
    "gouv.fr",
];

/// Second-level labels that mean government under a two-letter country code:
/// `gov.uk`, `gob.mx`, `gouv.fr`, `govt.nz`, `mil.br`.
const GOVERNMENT_LABELS: &[&str] = &["gov", "gob", "gouv", "govt", "mil"];

/// Whether `domain` is a government's: the `.gov`/`.mil` top-level domains,
/// `gov.xx`, `gob.xx`, `gouv.xx`, `govt.xx`, `mil.xx` under a two-letter
/// country code, and [`GOVERNMENT_SUFFIXES`]. Only the end of the domain
/// counts: `gov.contoso.com` is Contoso's.
fn is_government(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.as_slice() {
        [.., "gov" | "mil"] => return true,
        [.., second, tld] if tld.len() == 2 && GOVERNMENT_LABELS.contains(second) => return true,
        _ => {}
    }
    GOVERNMENT_SUFFIXES.iter().any(|s| is_within(domain, s))
}

/// Free and personal mail providers, matched exactly (subdomains included).
const FREE_MAIL_DOMAINS: &[&str] = &[
    // Global.
    "gmail.com",
    "googlemail.com",
    "msn.com",
    "passport.com",
    "ymail.com",
    "rocketmail.com",
    "aim.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "protonmail.ch",
    "pm.me",
    "zoho.com",
    "zohomail.com",
    "tutanota.com",
    "tutanota.de",
    "tuta.io",
    "tutamail.com",
    "fastmail.com",
    "fastmail.fm",
    "hushmail.com",
    "mail.com",
    "email.com",
    "inbox.com",
    "hey.com",
    // Disposable.
    "mailinator.com",
    "yopmail.com",
    "guerrillamail.com",
    "10minutemail.com",
    "temp-mail.org",
    // Internet providers' mailboxes.
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "btinternet.com",
    "sky.com",
    "virginmedia.com",
    "bigpond.com",
    "shaw.ca",
    // Germany, Austria, Switzerland.
    "web.de",
    "t-online.de",
    "freenet.de",
    "bluewin.ch",
    // France.
    "laposte.net",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "sfr.fr",
    "neuf.fr",
    "bbox.fr",
    // Italy, Spain, Poland, Czechia, Hungary.
    "libero.it",
    "virgilio.it",
    "tiscali.it",
    "alice.it",
    "terra.es",
    "wp.pl",
    "o2.pl",
    "onet.pl",
    "interia.pl",
    "seznam.cz",
    "freemail.hu",
    "citromail.hu",
    // Russia and neighbours.
    "mail.ru",
    "inbox.ru",
    "list.ru",
    "bk.ru",
    "ya.ru",
    "rambler.ru",
    "ukr.net",
    // Asia.
    "qq.com",
    "163.com",
    "126.com",
    "yeah.net",
    "sina.com",
    "sohu.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "rediffmail.com",
];

/// Providers with a domain in many countries, matched by first label:
/// `yahoo.fr`, `yahoo.co.uk`, `hotmail.com.br`, `gmx.de`, `yandex.kz`, …
const FREE_MAIL_FAMILIES: &[&str] = &[
    "yahoo",
    "hotmail",
    "outlook",
    "live",
    "windowslive",
    "aol",
    "gmx",
    "yandex",
];

/// Whether `domain` is a free mail provider's: one of [`FREE_MAIL_DOMAINS`]
/// (or a subdomain), or a [`FREE_MAIL_FAMILIES`] name followed by a country
/// or generic ending (`fr`, `com`, `co.uk`, `com.br`) and nothing else.
fn is_free_mail(domain: &str) -> bool {
    if FREE_MAIL_DOMAINS.iter().any(|d| is_within(domain, d)) {
        return true;
    }
    match domain.split('.').collect::<Vec<_>>().as_slice() {
        [family, _tld] => FREE_MAIL_FAMILIES.contains(family),
        [family, second, tld] => {
            FREE_MAIL_FAMILIES.contains(family)
                && tld.len() == 2
                && ["co", "com", "net", "org", "ne", "or"].contains(second)
        }
        _ => false,
    }
}

/// Words that make a mailbox a role mailbox wherever they appear in the local
/// part, as the design says ("containing"): `info`, `admin`, `marketing`, and
/// the no-reply spellings.
const ROLE_SUBSTRINGS: &[&str] = &[
    "info",
    "admin",
    "marketing",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
];

/// Role words added to the design's list, matched as whole words only
/// (separated by `.`, `-`, `_`, `+` or digits) because they hide in
/// surnames: `sales` in `rosales`, `hello` in `othello`.
const ROLE_WORDS: &[&str] = &[
    "contact",
    "sales",
    "support",
    "office",
    "hello",
    "help",
    "billing",
    "webmaster",
    "postmaster",
    "hostmaster",
    "team",
];

/// The role word `local` (lower case) contains, if any.
fn role_word(local: &str) -> Option<&'static str> {
    if let Some(word) = ROLE_SUBSTRINGS.iter().find(|w| local.contains(**w)) {
        return Some(word);
    }
    local
        .split(|c: char| !c.is_ascii_alphabetic())
        .find_map(|part| ROLE_WORDS.iter().find(|w| **w == part).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(list: &[&str]) -> Vec<String> {
        list.iter().map(|d| d.to_string()).collect()
    }

    fn contoso() -> Vec<String> {
        domains(&["contoso.onmicrosoft.com", "https://www.contoso.com/fr"])
    }

    fn reason(finding: &EmailFinding) -> &'static str {
        match finding {
            EmailFinding::Owned => "OWNED",
            EmailFinding::Refused { reason, .. } | EmailFinding::NeedsDocuments { reason, .. } => {
                reason
            }
        }
    }

    #[test]
    fn domain_of_lower_cases_the_domain() {
        assert_eq!(
            domain_of("Ada.Lovelace@Contoso.COM").as_deref(),
            Some("contoso.com")
        );
        assert_eq!(
            domain_of("ada@mail.contoso.fr").as_deref(),
            Some("mail.contoso.fr")
        );
        assert_eq!(
            domain_of("ada@société.fr").as_deref(),
            Some("xn--socit-esab.fr")
        );
    }

    #[test]
    fn domain_of_a_non_email_is_none() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@contoso.com",
            "ada@localhost",
            "ada@@contoso.com",
            "ada lovelace@contoso.com",
            "Ada <ada@contoso.com>",
            "ada@[192.0.2.1]",
            " ada@contoso.com",
        ] {
            assert_eq!(domain_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_malformed_email_is_refused_as_invalid() {
        let finding = check("not an email", &contoso());
        assert_eq!(reason(&finding), INVALID_EMAIL);
        let EmailFinding::Refused { message, .. } = finding else {
            panic!("expected Refused, got {finding:?}");
        };
        assert!(message.contains("not an email"), "{message}");
    }

    #[test]
    fn government_domains_are_refused() {
        for email in [
            "ada@whitehouse.gov",
            "ada@army.mil",
            "ada@cabinetoffice.gov.uk",
            "ada@sat.gob.mx",
            "ada@interieur.gouv.fr",
            "ada@digital.govt.nz",
            "ada@cbsa-asfc.gc.ca",
            "ada@bmf.gv.at",
            "ada@bsi.bund.de",
            "ada@bit.admin.ch",
            "ada@ec.europa.eu",
            "ada@meti.go.jp",
            "ada@mail.gov.md",
        ] {
            assert_eq!(
                reason(&check(email, &contoso())),
                GOVERNMENT_DOMAIN,
                "{email}"
            );
        }
    }

    #[test]
    fn a_company_subdomain_named_gov_is_not_government() {
        assert_eq!(
            check("ada@gov.contoso.com", &contoso()),
            EmailFinding::Owned
        );
        assert_eq!(
            check("ada@gouv.contoso.fr", &domains(&["contoso.fr"])),
            EmailFinding::Owned
        );
    }

    #[test]
    fn free_mail_providers_are_refused() {
        for email in [
            "ada@gmail.com",
            "ada@GoogleMail.com",
            "ada@outlook.com",
            "ada@outlook.fr",
            "ada@hotmail.com",
            "ada@hotmail.co.uk",
            "ada@live.fr",
            "ada@msn.com",
            "ada@yahoo.com",
            "ada@yahoo.fr",
            "ada@yahoo.co.jp",
            "ada@yahoo.com.br",
            "ada@ymail.com",
            "ada@aol.com",
            "ada@icloud.com",
            "ada@me.com",
            "ada@mac.com",
            "ada@proton.me",
            "ada@protonmail.com",
            "ada@gmx.de",
            "ada@gmx.net",
            "ada@web.de",
            "ada@mail.ru",
            "ada@yandex.ru",
            "ada@yandex.com",
            "ada@zoho.com",
            "ada@tutanota.com",
            "ada@fastmail.com",
            "ada@laposte.net",
            "ada@orange.fr",
            "ada@free.fr",
            "ada@wanadoo.fr",
            "ada@qq.com",
            "ada@163.com",
            "ada@126.com",
            "ada@naver.com",
            "ada@freemail.hu",
        ] {
            assert_eq!(
                reason(&check(email, &contoso())),
                FREE_MAIL_PROVIDER,
                "{email}"
            );
        }
    }

    #[test]
    fn the_free_mail_list_is_long() {
        assert!(FREE_MAIL_DOMAINS.len() + FREE_MAIL_FAMILIES.len() >= 40);
    }

    #[test]
    fn a_free_mail_family_name_inside_a_company_domain_is_not_free_mail() {
        let owned = domains(&[
            "yahoo-fans.example",
            "live.contoso.com",
            "outlookconsulting.com",
        ]);
        for email in [
            "ada@live.contoso.com",
            "ada@outlookconsulting.com",
            "ada@yahoo-fans.example",
        ] {
            assert_eq!(check(email, &owned), EmailFinding::Owned, "{email}");
        }
    }

    #[test]
    fn tenant_domains_without_mailboxes_are_refused() {
        for email in [
            "ada@contoso.onmicrosoft.com",
            "ada@Contoso.OnMicrosoft.com",
            "ada@contoso.mail.onmicrosoft.com",
        ] {
            let finding = check(email, &contoso());
            assert_eq!(reason(&finding), NO_MAILBOX_DOMAIN, "{email}");
        }
    }

    #[test]
    fn role_mailboxes_are_refused() {
        for email in [
            "info@contoso.com",
            "INFO@contoso.com",
            "contoso.info@contoso.com",
            "admin@contoso.com",
            "sysadmin@contoso.com",
            "marketing@contoso.com",
            "marketingteam@contoso.com",
            "noreply@contoso.com",
            "no-reply@contoso.com",
            "contact@contoso.com",
            "sales@contoso.com",
            "sales.fr@contoso.com",
            "support@contoso.com",
            "office@contoso.com",
            "hello@contoso.com",
            "billing@contoso.com",
        ] {
            let finding = check(email, &contoso());
            assert_eq!(reason(&finding), ROLE_MAILBOX, "{email}");
        }
    }

    #[test]
    fn role_words_hidden_in_names_are_not_role_mailboxes() {
        for email in [
            "maria.rosales@contoso.com",
            "othello@contoso.com",
            "officer.dibble@contoso.com",
            "ada.lovelace@contoso.com",
        ] {
            assert_eq!(check(email, &contoso()), EmailFinding::Owned, "{email}");
        }
    }

    #[test]
    fn the_role_message_names_the_word() {
        let EmailFinding::Refused { message, .. } = check("team.info@contoso.com", &contoso())
        else {
            panic!("expected Refused");
        };
        assert!(message.contains("`info`"), "{message}");
    }

    #[test]
    fn rules_apply_in_order() {
        // Government before free mail before role mailbox before ownership.
        assert_eq!(
            reason(&check("info@army.mil", &contoso())),
            GOVERNMENT_DOMAIN
        );
        assert_eq!(
            reason(&check("info@gmail.com", &contoso())),
            FREE_MAIL_PROVIDER
        );
        assert_eq!(
            reason(&check("info@contoso.onmicrosoft.com", &contoso())),
            NO_MAILBOX_DOMAIN
        );
        assert_eq!(
            reason(&check("info@fabrikam.com", &contoso())),
            ROLE_MAILBOX
        );
        let listed = domains(&["gmail.com", "whitehouse.gov"]);
        assert_eq!(reason(&check("ada@gmail.com", &listed)), FREE_MAIL_PROVIDER);
        assert_eq!(
            reason(&check("ada@whitehouse.gov", &listed)),
            GOVERNMENT_DOMAIN
        );
    }

    #[test]
    fn the_company_domain_is_owned() {
        assert_eq!(check("ada@contoso.com", &contoso()), EmailFinding::Owned);
        assert_eq!(
            check("ada@fabrikam.fr", &domains(&["fabrikam.fr"])),
            EmailFinding::Owned
        );
    }

    #[test]
    fn a_subdomain_of_a_company_domain_is_owned() {
        assert_eq!(check("ada@fr.contoso.com", &contoso()), EmailFinding::Owned);
        assert_eq!(
            check("ada@eu.mail.contoso.com", &contoso()),
            EmailFinding::Owned
        );
    }

    #[test]
    fn websites_in_every_form_give_their_domain() {
        for website in [
            "https://www.contoso.com/fr",
            "http://www.contoso.com",
            "https://contoso.com:443/path?q=1#top",
            "www.contoso.com",
            "WWW.Contoso.COM/",
            "contoso.com.",
            "  contoso.com  ",
            "https://user@www.contoso.com",
        ] {
            assert_eq!(
                check("ada@contoso.com", &domains(&[website])),
                EmailFinding::Owned,
                "{website}"
            );
        }
    }

    #[test]
    fn case_does_not_matter() {
        assert_eq!(
            check("Ada@CONTOSO.com", &domains(&["Contoso.Com"])),
            EmailFinding::Owned
        );
    }

    #[test]
    fn lookalike_domains_are_not_owned() {
        for email in [
            "ada@contoso.com.evil.net",
            "ada@notcontoso.com",
            "ada@contoso.co",
            "ada@contoso-com.net",
            "ada@fabrikam.com",
        ] {
            let finding = check(email, &contoso());
            assert_eq!(reason(&finding), DOMAIN_NOT_OWNED, "{email}");
            assert!(
                matches!(finding, EmailFinding::NeedsDocuments { .. }),
                "{email}"
            );
        }
    }

    #[test]
    fn a_domain_not_owned_asks_for_documents() {
        let finding = check("ada@fabrikam.com", &[]);
        let EmailFinding::NeedsDocuments { reason, message } = finding else {
            panic!("expected NeedsDocuments, got {finding:?}");
        };
        assert_eq!(reason, DOMAIN_NOT_OWNED);
        assert!(message.contains("fabrikam.com"), "{message}");
        assert!(message.contains("employ"), "{message}");
    }

    #[test]
    fn company_entries_without_a_dot_or_host_are_ignored() {
        let bad = domains(&["com", "", "https://", "192.0.2.1", "www."]);
        assert_eq!(reason(&check("ada@contoso.com", &bad)), DOMAIN_NOT_OWNED);
    }

    #[test]
    fn an_internationalised_website_owns_its_punycode_domain() {
        assert_eq!(
            check(
                "ada@xn--socit-esab.fr",
                &domains(&["https://www.société.fr"])
            ),
            EmailFinding::Owned
        );
    }
}
