//! The business directory behind the business check: look a company up by
//! its DUNS number, search it by name, and score a directory record against
//! what the partner entered.
//!
//! The built-in [`FileDirectory`] reads a CSV or JSON file (a sample ships in
//! `data/`); a real provider plugs in behind [`BusinessDirectory`]. Matching is
//! pure: [`normalize_name`] and [`normalize_street`] fold both sides the same
//! way, then [`score`] compares them and [`verdict`] decides.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use futures::FutureExt;
use futures::future::{self, BoxFuture};

/// One company in a business directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Company {
    /// The DUNS number: 9 digits.
    pub duns: String,
    /// The registered name, legal form included (`Contoso SAS`).
    pub name: String,
    /// The street address (`1 Rue de Rivoli`).
    pub line1: String,
    /// The city.
    pub city: String,
    /// The postal code, as the country writes it (may be empty).
    pub postal_code: String,
    /// The ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
    /// The company's web domain as the directory records it (`contoso.com`;
    /// may be empty). A clear match makes it one of the company's domains.
    #[serde(default)]
    pub domain: String,
}

/// A directory error (the provider is unreachable or its data unreadable).
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The provider (or the file) cannot be reached or read.
    #[error("the business directory is unavailable: {0}")]
    Unavailable(String),
    /// The provider's data does not make sense; the message says where.
    #[error("the business directory's data is unreadable: {0}")]
    BadData(String),
}

/// A business directory: the built-in one reads a file; a real provider plugs in behind the same trait.
pub trait BusinessDirectory: Send + Sync + std::fmt::Debug {
    /// The company with that DUNS number (9 digits), if any.
    fn lookup(&self, duns: &str) -> BoxFuture<'_, Result<Option<Company>, DirectoryError>>;

    /// Companies whose name resembles `name` in `country` (ISO alpha-2; empty = any), best first, at most `limit`, each with its name score 0..=1.
    fn search<'a>(
        &'a self,
        name: &'a str,
        country: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(Company, f64)>, DirectoryError>>;
}

/// The columns of a directory CSV file, in the order the sample uses.
const COLUMNS: [&str; 6] = ["duns", "name", "line1", "city", "postal_code", "country"];

/// The sample directory shipped with the service.
const SAMPLE_CSV: &str = include_str!("../data/directory-sample.csv");

/// The lowest name score [`FileDirectory`]'s search returns (unless every
/// word of the query is in the name): lower than [`verdict`]'s weak threshold
/// so that a person picking from a list sees near misses too.
const SEARCH_FLOOR: f64 = 0.6;

/// The built-in directory: a CSV (header `duns,name,line1,city,postal_code,country`) or JSON (array of Company) file, chosen by extension, loaded in memory.
#[derive(Debug)]
pub struct FileDirectory {
    companies: Vec<Company>,
    /// `normalize_name` of each company, computed once for searches.
    names: Vec<String>,
    /// Index into `companies` by DUNS digits.
    by_duns: HashMap<String, usize>,
}

impl FileDirectory {
    /// Loads `path`: `.csv` or `.json` (any case). A file that cannot be read
    /// is [`DirectoryError::Unavailable`]; a record that does not make sense
    /// (bad DUNS, no name, a country that is not two letters, a DUNS twice)
    /// is [`DirectoryError::BadData`] naming the file and the line (CSV, or
    /// JSON syntax) or the record number (JSON content).
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let parse: fn(&str) -> Result<Vec<Company>, String> = match extension.as_deref() {
            Some("csv") => parse_csv,
            Some("json") => parse_json,
            _ => {
                return Err(DirectoryError::BadData(format!(
                    "{}: a directory file ends in .csv or .json",
                    path.display()
                )));
            }
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            let message = format!("{}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::InvalidData {
                DirectoryError::BadData(message)
            } else {
                DirectoryError::Unavailable(message)
            }
        })?;
        let companies = parse(&text)
            .map_err(|e| DirectoryError::BadData(format!("{}: {e}", path.display())))?;
        Ok(Self::from_companies(companies))
    }

    /// A directory of `companies`, taken as they are (no checks). When two
    /// share a DUNS number, lookups find the first.
    pub fn from_companies(companies: Vec<Company>) -> Self {
        let names = companies.iter().map(|c| normalize_name(&c.name)).collect();
        let mut by_duns = HashMap::with_capacity(companies.len());
        for (i, company) in companies.iter().enumerate() {
            let key = parse_duns(&company.duns).unwrap_or_else(|_| company.duns.clone());
            by_duns.entry(key).or_insert(i);
        }
        Self {
            companies,
            names,
            by_duns,
        }
    }

    /// The shipped sample (`data/directory-sample.csv`), embedded in the binary.
    #[allow(
        clippy::expect_used,
        reason = "the sample is compiled in and a test parses it: failing here is a build defect"
    )]
    pub fn sample() -> Self {
        let companies = parse_csv(SAMPLE_CSV).expect("the embedded sample directory parses");
        Self::from_companies(companies)
    }

    fn find(&self, duns: &str) -> Option<Company> {
        let digits = parse_duns(duns).ok()?;
        let index = *self.by_duns.get(&digits)?;
        self.companies.get(index).cloned()
    }

    fn find_by_name(&self, name: &str, country: &str, limit: usize) -> Vec<(Company, f64)> {
        let query = normalize_name(name);
        if query.is_empty() || limit == 0 {
            return Vec::new();
        }
        let country = country_code(country);
        let mut hits: Vec<(&Company, f64)> = self
            .companies
            .iter()
            .zip(&self.names)
            .filter(|(c, _)| country.is_empty() || country_code(&c.country) == country)
            .filter_map(|(c, candidate)| {
                let similarity = similarity(&query, candidate);
                let every_word = query
                    .split(' ')
                    .all(|word| candidate.split(' ').any(|w| w == word));
                (similarity >= SEARCH_FLOOR || every_word).then_some((c, similarity))
            })
            .collect();
        hits.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| a.0.name.cmp(&b.0.name))
                .then_with(|| a.0.duns.cmp(&b.0.duns))
        });
        hits.into_iter()
            .take(limit)
            .map(|(c, s)| (c.clone(), s))
            .collect()
    }
}

impl BusinessDirectory for FileDirectory {
    fn lookup(&self, duns: &str) -> BoxFuture<'_, Result<Option<Company>, DirectoryError>> {
        future::ready(Ok(self.find(duns))).boxed()
    }

    fn search<'a>(
        &'a self,
        name: &'a str,
        country: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(Company, f64)>, DirectoryError>> {
        future::ready(Ok(self.find_by_name(name, country, limit))).boxed()
    }
}

/// Parses a directory CSV; errors name the line (the header is line 1).
fn parse_csv(text: &str) -> Result<Vec<Company>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| csv_error(&e))?.clone();
    if let Some(missing) = COLUMNS.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        return Err(format!(
            "line 1: no `{missing}` column (the header is `{}`)",
            COLUMNS.join(",")
        ));
    }
    let mut companies = Vec::new();
    let mut seen = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record.position().map_or(0, csv::Position::line);
        let company = record
            .deserialize::<Company>(Some(&headers))
            .map_err(|e| format!("line {line}: {e}"))
            .and_then(|c| checked(c).map_err(|e| format!("line {line}: {e}")))?;
        if let Some(first) = seen.insert(company.duns.clone(), line) {
            return Err(format!(
                "line {line}: DUNS {} is already on line {first}",
                company.duns
            ));
        }
        companies.push(company);
    }
    Ok(companies)
}

/// A CSV error as `line N: what`.
fn csv_error(error: &csv::Error) -> String {
    let line = error.position().map_or(0, csv::Position::line);
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("line {line}: {len} fields where the header has {expected_len}"),
        _ => format!("line {line}: {error}"),
    }
}

/// Parses a directory JSON array; syntax errors name the line, content
/// errors the record (1-based).
fn parse_json(text: &str) -> Result<Vec<Company>, String> {
    let raw: Vec<Company> = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let what = message.strip_suffix(&position).unwrap_or(&message);
        format!("line {}, column {}: {what}", e.line(), e.column())
    })?;
    let mut companies = Vec::with_capacity(raw.len());
    let mut seen = HashMap::new();
    for (i, company) in raw.into_iter().enumerate() {
        let number = i + 1;
        let company = checked(company).map_err(|e| format!("record {number}: {e}"))?;
        if let Some(first) = seen.insert(company.duns.clone(), number) {
            return Err(format!(
                "record {number}: DUNS {} is already in record {first}",
                company.duns
            ));
        }
        companies.push(company);
    }
    Ok(companies)
}

/// A record with its fields trimmed, its DUNS reduced to digits and its
/// country upper-cased, or why it makes no sense.
fn checked(company: Company) -> Result<Company, String> {
    let duns = parse_duns(&company.duns).map_err(|e| format!("DUNS `{}`: {e}", company.duns))?;
    let name = company.name.trim().to_string();
    if name.is_empty() {
        return Err(format!("DUNS {duns}: the name is empty"));
    }
    let country = company.country.trim().to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "DUNS {duns}: country `{}` is not an ISO alpha-2 code",
            company.country
        ));
    }
    Ok(Company {
        duns,
        name,
        line1: company.line1.trim().to_string(),
        city: company.city.trim().to_string(),
        postal_code: company.postal_code.trim().to_string(),
        country,
        domain: company
            .domain
            .trim()
            .trim_start_matches("www.")
            .to_ascii_lowercase(),
    })
}

/// Checks a DUNS number's form: 9 digits (spaces and dashes ignored); returns the digits.
///
/// DUNS numbers carry no check digit, so the form is all there is to check.
pub fn parse_duns(input: &str) -> Result<String, String> {
    let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err("a DUNS number has 9 digits".into())
    }
}

/// Legal forms and their abbreviations, dropped from names wherever they
/// stand: both sides are folded alike, so dropping a word that happened to be
/// part of the name costs little, while keeping `SAS` against `S.A.S.` or
/// `GmbH & Co. KG` against nothing costs a lot. Beyond the usual list: `kg`,
/// `kgaa`, `ug`, `se`, `sl`, `slu`, `oyj`, `asa`, `aps`, `bt`, `sro`, `jsc`,
/// `cjsc`, `ojsc`, `pjsc` (the English renderings used in Russia and Armenia)
/// and `aktiengesellschaft`.
const LEGAL_FORMS: &str = "inc incorporated corp corporation co company ltd limited llc plc \
    gmbh ag aktiengesellschaft sa sas sarl srl spa bv nv oy oyj ab as asa aps kft zrt nyrt bt \
    ooo zao oao pao ao jsc cjsc ojsc pjsc llp lp pty pte kk kg kgaa ug se sl slu sro";

/// Whether `word` is one of [`LEGAL_FORMS`].
fn is_legal_form(word: &str) -> bool {
    LEGAL_FORMS.split_whitespace().any(|form| form == word)
}

/// Normalises a company name for matching: lower case, accents removed, punctuation to spaces, `&` → `and`, legal-form words and abbreviations removed (inc, incorporated, corp, corporation, co, company, ltd, limited, llc, plc, gmbh, ag, sa, sas, sarl, srl, spa, bv, nv, oy, ab, as, kft, zrt, nyrt, ooo, zao, oao, pao, ao, llp, lp, pty, pte, kk — also dotted forms like `S.A.S.`, `s.r.l.`), whitespace collapsed.
///
/// Details: other scripts are transliterated (`ООО «Ромашка»` → `romashka`);
/// apostrophes are dropped rather than spaced (`Margie's` = `Margies`); a
/// dangling `and` left by a removed form goes too (`Smith & Co.` → `smith`),
/// and so does a leading `the`; a name made only of legal-form words keeps
/// them (`AB` stays `ab`). More forms are removed than listed above: see
/// `LEGAL_FORMS` in the source.
pub fn normalize_name(name: &str) -> String {
    let folded = deunicode::deunicode(name)
        .to_lowercase()
        .replace('&', " and ")
        .replace('\'', "");
    let mut words: Vec<String> = Vec::new();
    let mut previous_dotted = false;
    for chunk in folded.split(|c: char| !(c.is_alphanumeric() || c == '.')) {
        if let Some(initials) = dotted_initials(chunk) {
            // `S.à r.l.` folds to `s.a r.l.`: two dotted chunks make `sarl`.
            let merged = match words.last() {
                Some(last) if previous_dotted => format!("{last}{initials}"),
                _ => String::new(),
            };
            if is_legal_form(&merged) {
                words.pop();
                words.push(merged);
            } else {
                words.push(initials);
            }
            previous_dotted = true;
        } else {
            words.extend(
                chunk
                    .split('.')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            );
            previous_dotted = false;
        }
    }
    let kept: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !is_legal_form(w))
        .collect();
    let mut kept = kept.as_slice();
    while let [first, rest @ ..] = kept
        && (*first == "and" || *first == "the")
        && !rest.is_empty()
    {
        kept = rest;
    }
    while let [rest @ .., last] = kept
        && *last == "and"
        && !rest.is_empty()
    {
        kept = rest;
    }
    if kept.is_empty() {
        words.join(" ")
    } else {
        kept.join(" ")
    }
}

/// `s.a.s.` → `sas`: a chunk of single letters each followed by a dot (the
/// last dot optional, at least one dot).
fn dotted_initials(chunk: &str) -> Option<String> {
    if !chunk.contains('.') {
        return None;
    }
    let parts: Vec<&str> = chunk.split('.').filter(|p| !p.is_empty()).collect();
    let initials = !parts.is_empty()
        && parts
            .iter()
            .all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic));
    initials.then(|| parts.concat())
}

/// Lower case, transliterated, every run of non-alphanumeric characters
/// made one space, except an English possessive (`King's` → `kings`, so its
/// `s` is not read as `south`).
fn fold_words(text: &str) -> Vec<String> {
    let folded = deunicode::deunicode(text).to_lowercase();
    let mut chars: Vec<char> = Vec::with_capacity(folded.len());
    let mut rest = folded.chars().peekable();
    while let Some(c) = rest.next() {
        if c == '\'' && rest.peek() == Some(&'s') {
            let mut after = rest.clone();
            after.next();
            if after.peek().is_none_or(|c| !c.is_alphanumeric()) {
                continue;
            }
        }
        chars.push(c);
    }
    chars
        .into_iter()
        .collect::<String>()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Words that make an address line French, for the abbreviations that mean
/// something else in English (`st` is `saint`, `r` is `rue`).
const FRENCH_MARKERS: &[&str] = &[
    "rue", "r", "allee", "impasse", "quai", "chemin", "faubourg", "fbg", "de", "du", "des", "la",
    "le", "les", "l", "d", "aux", "cedex", "bis",
];

/// Words after which an English `st` is `street`, not `saint`.
const AFTER_STREET: &[&str] = &[
    "suite",
    "ste",
    "unit",
    "apt",
    "apartment",
    "floor",
    "fl",
    "building",
    "bldg",
    "n",
    "s",
    "e",
    "w",
    "ne",
    "nw",
    "se",
    "sw",
    "north",
    "south",
    "east",
    "west",
];

/// Normalises an address line: lower case, accents removed, punctuation to spaces, common street abbreviations expanded (st → street, rd → road, ave → avenue, bd/bld/blvd → boulevard, r → rue when French …), whitespace collapsed.
///
/// A line is taken as French when it has a French street word or article
/// (`rue`, `r`, `de`, `du`, `la`, …); there `st`/`ste` are `saint`/`sainte`.
/// Elsewhere `st` is `saint` before a name (`St James Square`) and `street`
/// at the end or before a unit or direction (`King St`, `Main St Suite 5`).
/// German `str`/`…str` become `strasse`; Hungarian `u`/`krt` become
/// `utca`/`korut`; Russian `ul`/`pr`/`prosp` become `ulitsa`/`prospekt`.
pub fn normalize_street(line: &str) -> String {
    let words = fold_words(line);
    let french = words.iter().any(|w| FRENCH_MARKERS.contains(&w.as_str()));
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        let expanded = match word.as_str() {
            "st" if french => "saint",
            "ste" if french => "sainte",
            "r" if french => "rue",
            "fbg" if french => "faubourg",
            "imp" if french => "impasse",
            "ch" | "che" | "chem" if french => "chemin",
            "rte" if french => "route",
            "st" => match next {
                Some(n) if n.chars().all(char::is_alphabetic) && !AFTER_STREET.contains(&n) => {
                    "saint"
                }
                _ => "street",
            },
            "ste" => "suite",
            "rd" => "road",
            "av" | "ave" => "avenue",
            "bd" | "bld" | "blvd" | "boul" | "bvd" => "boulevard",
            "dr" => "drive",
            "ln" => "lane",
            "ct" => "court",
            "pl" => "place",
            "sq" => "square",
            "hwy" => "highway",
            "pkwy" => "parkway",
            "cres" => "crescent",
            "apt" => "apartment",
            "fl" => "floor",
            "bldg" => "building",
            "n" => "north",
            "s" => "south",
            "e" => "east",
            "w" => "west",
            "str" => "strasse",
            "u" => "utca",
            "krt" => "korut",
            "ul" => "ulitsa",
            "pr" | "prosp" => "prospekt",
            other => {
                if let Some(stem) = other.strip_suffix("str").filter(|s| s.len() >= 2) {
                    out.push(format!("{stem}strasse"));
                    continue;
                }
                other
            }
        };
        out.push(expanded.to_string());
    }
    out.join(" ")
}

/// A city folded for comparison (`St-Étienne` = `Saint Etienne`).
fn normalize_city(city: &str) -> String {
    fold_words(city)
        .into_iter()
        .map(|w| match w.as_str() {
            "st" => "saint".to_string(),
            "ste" => "sainte".to_string(),
            _ => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A country code trimmed and upper-cased, `UK` read as `GB`.
fn country_code(country: &str) -> String {
    let code = country.trim().to_ascii_uppercase();
    if code == "UK" { "GB".into() } else { code }
}

/// A postal code for comparison: letters and digits only, upper case, and
/// without a leading country prefix (`MD-2012` = `2012`).
fn postal_key(code: &str, country: &str) -> String {
    let compact: String = code
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    match compact.strip_prefix(&country_code(country)) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_string(),
        _ => compact,
    }
}

/// The similarity of two folded strings, 0..=1: normalised Levenshtein,
/// taken on the strings as they are and with their words sorted, whichever is
/// higher (so word order does not matter).
///
/// Why Levenshtein and not Jaro-Winkler: Jaro-Winkler rewards a shared
/// prefix, so `contosso` scores 0.975 against `contoso` (a pass) and
/// `contoso bank` 0.917 (nearly one). Normalised Levenshtein charges each
/// edit against the length (0.875 and 0.58), which is the strictness a
/// business check needs for short names, while one typo in a name of 13
/// letters or more still scores above 0.92.
fn similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let direct = strsim::normalized_levenshtein(a, b);
    let sorted = strsim::normalized_levenshtein(&sorted_words(a), &sorted_words(b));
    direct.max(sorted)
}

fn sorted_words(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// The similarity of two address lines; when both carry house numbers and
/// they differ, it is halved: `15 rue de Rivoli` is another building.
fn street_similarity(entered: &str, listed: &str) -> f64 {
    let (a, b) = (normalize_street(entered), normalize_street(listed));
    let numbers = |s: &str| -> BTreeSet<String> {
        s.split(' ')
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .collect()
    };
    let (na, nb) = (numbers(&a), numbers(&b));
    let similarity = similarity(&a, &b);
    if !na.is_empty() && !nb.is_empty() && na != nb {
        similarity / 2.0
    } else {
        similarity
    }
}

/// How well a directory record matches what was entered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchScore {
    /// Name similarity, 0..=1.
    pub name: f64,
    /// Address similarity, 0..=1: street 0.5, postal code 0.3, city 0.2.
    pub address: f64,
    /// 0.6 × name + 0.4 × address, for ranking candidates.
    pub overall: f64,
}

/// What the business check concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// passes
    Clear,
    /// documents needed
    Weak,
    /// nothing alike
    NoMatch,
}

/// Weight of the street in the address score.
const STREET_WEIGHT: f64 = 0.5;
/// Weight of the postal code: without it the address tops out at 0.7, under
/// the clear threshold, which is how "same postal code required" is kept.
const POSTAL_WEIGHT: f64 = 0.3;
/// Weight of the city: low, because directories and people spell cities
/// differently (`München`/`Munich`) and the postal code already says where.
const CITY_WEIGHT: f64 = 0.2;

/// Name score at or above which the name passes.
const NAME_CLEAR: f64 = 0.92;
/// Address score at or above which the address passes.
const ADDRESS_CLEAR: f64 = 0.8;
/// Name score at or above which the company is probably the one, pending documents.
const NAME_WEAK: f64 = 0.75;
/// Slack for floating-point sums that should land exactly on a threshold.
const EPSILON: f64 = 1e-9;

/// Scores `company` against the entered name and address (line1, city, postal code, country: a different country is a NoMatch).
///
/// A different country (compared case-insensitively, `UK` = `GB`) scores 0
/// everywhere. Postal codes compare letters and digits only, ignoring case,
/// spaces, dashes and a country prefix (`MD-2012` = `md 2012` = `2012`); two
/// empty codes are equal. See [`MatchScore`] for the weights.
pub fn score(
    company: &Company,
    name: &str,
    line1: &str,
    city: &str,
    postal_code: &str,
    country: &str,
) -> MatchScore {
    if country_code(country) != country_code(&company.country) {
        return MatchScore {
            name: 0.0,
            address: 0.0,
            overall: 0.0,
        };
    }
    let name = similarity(&normalize_name(name), &normalize_name(&company.name));
    let street = street_similarity(line1, &company.line1);
    let city = similarity(&normalize_city(city), &normalize_city(&company.city));
    let postal = if postal_key(postal_code, country) == postal_key(&company.postal_code, country) {
        1.0
    } else {
        0.0
    };
    let address = STREET_WEIGHT * street + POSTAL_WEIGHT * postal + CITY_WEIGHT * city;
    MatchScore {
        name,
        address,
        overall: 0.6 * name + 0.4 * address,
    }
}

/// The verdict for a score: Clear when name ≥ 0.92 and address ≥ 0.8 (same postal code required), Weak when name ≥ 0.75, else NoMatch.
///
/// With the weights of [`score`], 0.92 lets one typo through in a name of 13
/// letters or more but not in `Contoso`; an address passes with the same
/// postal code and a street of at least 0.6 in the right city (or the exact
/// street in a differently spelt city), never without the postal code.
pub fn verdict(score: &MatchScore) -> Verdict {
    if score.name >= NAME_CLEAR - EPSILON && score.address >= ADDRESS_CLEAR - EPSILON {
        Verdict::Clear
    } else if score.name >= NAME_WEAK - EPSILON {
        Verdict::Weak
    } else {
        Verdict::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::executor::block_on;

    use super::*;

    fn contoso() -> Company {
        Company {
            duns: "150483782".into(),
            name: "Contoso SAS".into(),
            line1: "1 Rue de Rivoli".into(),
            city: "Paris".into(),
            postal_code: "75001".into(),
            country: "FR".into(),
            domain: "contoso.com".into(),
        }
    }

    /// A file under the temp directory that no other test (or run) uses,
    /// removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(extension: &str, contents: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!(
                "partnerhub-directory-{}-{nanos}-{}.{extension}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn bad_data(result: Result<FileDirectory, DirectoryError>) -> String {
        match result {
            Err(DirectoryError::BadData(message)) => message,
            other => panic!("expected BadData, got {other:?}"),
        }
    }

    const HEADER: &str = "duns,name,line1,city,postal_code,country\n";

    // --- normalisation -------------------------------------------------

    #[test]
    fn names_match_without_accents_and_legal_form() {
        assert_eq!(normalize_name("Société Générale S.A."), "societe generale");
        assert_eq!(
            normalize_name("Société Générale S.A."),
            normalize_name("Societe Generale")
        );
    }

    #[test]
    fn legal_forms_are_removed_in_every_spelling() {
        for name in [
            "Contoso SAS",
            "Contoso S.A.S.",
            "CONTOSO sas",
            "Contoso, Inc.",
            "Contoso Incorporated",
            "Contoso Corp.",
            "Contoso Ltd",
            "Contoso Limited",
            "Contoso LLC",
            "Contoso plc",
            "Contoso GmbH",
            "Contoso GmbH & Co. KG",
            "Contoso AG",
            "Contoso s.r.l.",
            "Contoso S.p.A.",
            "Contoso B.V.",
            "Contoso N.V.",
            "Contoso Oy",
            "Contoso AB",
            "Contoso Kft.",
            "Contoso Zrt.",
            "Contoso Nyrt.",
            "OOO Contoso",
            "ZAO Contoso",
            "PAO Contoso",
            "AO Contoso",
            "Contoso LLP",
            "Contoso Pty Ltd",
            "Contoso Pte. Ltd.",
            "Contoso K.K.",
            "Contoso S.à r.l.",
            "Contoso SARL",
            "Contoso CJSC",
        ] {
            assert_eq!(normalize_name(name), "contoso", "{name}");
        }
    }

    #[test]
    fn ampersand_reads_as_and() {
        assert_eq!(normalize_name("Procter & Gamble"), "procter and gamble");
        assert_eq!(
            normalize_name("Procter & Gamble"),
            normalize_name("Procter and Gamble Co.")
        );
        assert_eq!(normalize_name("Smith & Co."), "smith");
    }

    #[test]
    fn punctuation_and_spaces_collapse() {
        assert_eq!(
            normalize_name("  Blue   Yonder-Airlines,  Inc. "),
            "blue yonder airlines"
        );
        assert_eq!(
            normalize_name("Margie's Travel"),
            normalize_name("Margies Travel")
        );
        assert_eq!(normalize_name("The Phone Company"), "phone");
        assert_eq!(normalize_name("A. Datum Corporation"), "a datum");
    }

    #[test]
    fn other_scripts_are_transliterated() {
        assert_eq!(normalize_name("ООО «Ромашка»"), "romashka");
        assert_eq!(
            normalize_name("Tailspin Toys Straße GmbH"),
            "tailspin toys strasse"
        );
    }

    #[test]
    fn a_name_made_only_of_legal_words_is_kept() {
        assert_eq!(normalize_name("AB"), "ab");
        assert_eq!(normalize_name("S.A."), "sa");
        assert_eq!(normalize_name(""), "");
    }

    #[test]
    fn street_abbreviations_are_expanded() {
        let cases = [
            ("1 Rue de Rivoli", "1 rue de rivoli"),
            ("1, r. de Rivoli", "1 rue de rivoli"),
            ("12 Rue St-Honoré", "12 rue saint honore"),
            ("24 bd Haussmann", "24 boulevard haussmann"),
            ("45 Av. des Champs-Élysées", "45 avenue des champs elysees"),
            ("35 King St.", "35 king street"),
            ("35 King St, Suite 5", "35 king street suite 5"),
            ("1 St James's Sq", "1 saint jamess square"),
            ("1200 Airport Blvd", "1200 airport boulevard"),
            ("12 Abbey Rd", "12 abbey road"),
            ("500 N Pine Ave", "500 north pine avenue"),
            ("Friedrichstr. 68", "friedrichstrasse 68"),
            ("Friedrichstraße 68", "friedrichstrasse 68"),
            ("Váci u. 18", "vaci utca 18"),
            ("Tverskaya ul. 7", "tverskaya ulitsa 7"),
            ("Nevsky pr. 28", "nevsky prospekt 28"),
        ];
        for (line, expected) in cases {
            assert_eq!(normalize_street(line), expected, "{line}");
        }
    }

    // --- scores and verdicts ---------------------------------------------

    #[test]
    fn an_exact_match_is_clear() {
        let s = score(
            &contoso(),
            "Contoso SAS",
            "1 Rue de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert_eq!(s.name, 1.0);
        assert_eq!(s.address, 1.0);
        assert_eq!(s.overall, 1.0);
        assert_eq!(verdict(&s), Verdict::Clear);
    }

    #[test]
    fn other_spellings_of_the_same_company_are_clear() {
        let s = score(
            &contoso(),
            "Contoso S.A.S.",
            "1 rue de Rivoli",
            "PARIS",
            "75 001",
            "fr",
        );
        assert_eq!(verdict(&s), Verdict::Clear, "{s:?}");
        let s = score(
            &contoso(),
            "contoso",
            "1, r. de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert_eq!(verdict(&s), Verdict::Clear, "{s:?}");
    }

    #[test]
    fn a_misspelled_short_name_is_weak() {
        let s = score(
            &contoso(),
            "Contosso",
            "1 Rue de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert!(s.name >= 0.75 && s.name < 0.92, "{s:?}");
        assert_eq!(verdict(&s), Verdict::Weak);
    }

    #[test]
    fn a_typo_in_a_long_name_is_still_clear() {
        let northwind = Company {
            duns: "219047365".into(),
            name: "Northwind Traders Ltd".into(),
            line1: "35 King Street".into(),
            city: "London".into(),
            postal_code: "WC2E 8JG".into(),
            country: "GB".into(),
            ..Company::default()
        };
        let s = score(
            &northwind,
            "Northwind Trader",
            "35 King St",
            "London",
            "wc2e8jg",
            "UK",
        );
        assert_eq!(verdict(&s), Verdict::Clear, "{s:?}");
        let s = score(
            &northwind,
            "Traders Northwind",
            "35 King St",
            "London",
            "WC2E 8JG",
            "GB",
        );
        assert_eq!(s.name, 1.0, "word order does not matter");
    }

    #[test]
    fn a_different_postal_code_is_not_clear() {
        let s = score(
            &contoso(),
            "Contoso SAS",
            "1 Rue de Rivoli",
            "Paris",
            "75002",
            "FR",
        );
        assert!(s.address < 0.8, "{s:?}");
        assert_eq!(verdict(&s), Verdict::Weak);
    }

    #[test]
    fn a_different_house_number_is_not_clear() {
        let s = score(
            &contoso(),
            "Contoso SAS",
            "15 Rue de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert_eq!(verdict(&s), Verdict::Weak, "{s:?}");
    }

    #[test]
    fn another_country_is_no_match() {
        let s = score(
            &contoso(),
            "Contoso SAS",
            "1 Rue de Rivoli",
            "Paris",
            "75001",
            "BE",
        );
        assert_eq!(
            s,
            MatchScore {
                name: 0.0,
                address: 0.0,
                overall: 0.0
            }
        );
        assert_eq!(verdict(&s), Verdict::NoMatch);
    }

    #[test]
    fn an_unrelated_name_is_no_match() {
        let s = score(
            &contoso(),
            "Wide World Importers",
            "1 Rue de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert!(s.name < 0.75, "{s:?}");
        assert_eq!(verdict(&s), Verdict::NoMatch);
        let s = score(
            &contoso(),
            "Contoso Pharmaceuticals",
            "1 Rue de Rivoli",
            "Paris",
            "75001",
            "FR",
        );
        assert_eq!(
            verdict(&s),
            Verdict::NoMatch,
            "a longer name is another company: {s:?}"
        );
    }

    #[test]
    fn postal_codes_ignore_spaces_case_dashes_and_country_prefix() {
        let trey = Company {
            duns: "619370482".into(),
            name: "Trey Research SRL".into(),
            line1: "Strada București 45".into(),
            city: "Chișinău".into(),
            postal_code: "MD-2012".into(),
            country: "MD".into(),
            ..Company::default()
        };
        for code in ["MD-2012", "md 2012", "MD2012", "2012"] {
            let s = score(
                &trey,
                "Trey Research",
                "Strada Bucuresti 45",
                "Chisinau",
                code,
                "MD",
            );
            assert_eq!(s.address, 1.0, "{code}");
            assert_eq!(verdict(&s), Verdict::Clear, "{code}: {s:?}");
        }
    }

    #[test]
    fn a_differently_spelt_city_with_the_same_street_and_postal_code_is_clear() {
        let fourth = Company {
            duns: "625839417".into(),
            name: "Fourth Coffee AG".into(),
            line1: "Maximilianstraße 12".into(),
            city: "München".into(),
            postal_code: "80539".into(),
            country: "DE".into(),
            ..Company::default()
        };
        let s = score(
            &fourth,
            "Fourth Coffee AG",
            "Maximilianstr. 12",
            "Munich",
            "80539",
            "DE",
        );
        assert_eq!(verdict(&s), Verdict::Clear, "{s:?}");
    }

    #[test]
    fn verdict_thresholds() {
        let at = |name, address| {
            verdict(&MatchScore {
                name,
                address,
                overall: 0.0,
            })
        };
        assert_eq!(at(0.92, 0.8), Verdict::Clear);
        assert_eq!(at(0.91, 1.0), Verdict::Weak);
        assert_eq!(at(1.0, 0.79), Verdict::Weak);
        assert_eq!(at(0.75, 0.0), Verdict::Weak);
        assert_eq!(at(0.74, 1.0), Verdict::NoMatch);
    }

    // --- the directory -------------------------------------------------------

    #[test]
    fn the_sample_holds_the_documented_companies() {
        let directory = FileDirectory::sample();
        assert!(directory.companies.len() >= 25);
        let found = block_on(directory.lookup("150483782")).unwrap();
        assert_eq!(found, Some(contoso()));
        let names: Vec<&str> = directory
            .companies
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for name in [
            "Fabrikam SAS",
            "Northwind Traders Ltd",
            "Tailspin Toys GmbH",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let countries: BTreeSet<&str> = directory
            .companies
            .iter()
            .map(|c| c.country.as_str())
            .collect();
        for country in ["FR", "DE", "US", "GB", "HU", "RU", "AM", "MD"] {
            assert!(countries.contains(country), "{country}");
        }
    }

    #[test]
    fn lookup_ignores_spaces_and_dashes() {
        let directory = FileDirectory::sample();
        for duns in ["150483782", "150-483-782", " 150 483 782 "] {
            let found = block_on(directory.lookup(duns)).unwrap();
            assert_eq!(found.map(|c| c.name), Some("Contoso SAS".into()), "{duns}");
        }
    }

    #[test]
    fn lookup_of_an_unknown_or_malformed_number_finds_nothing() {
        let directory = FileDirectory::sample();
        assert_eq!(block_on(directory.lookup("999999999")).unwrap(), None);
        assert_eq!(block_on(directory.lookup("12345")).unwrap(), None);
        assert_eq!(block_on(directory.lookup("")).unwrap(), None);
    }

    #[test]
    fn search_returns_the_best_first_within_the_limit() {
        let directory: Arc<dyn BusinessDirectory> = Arc::new(FileDirectory::sample());
        let hits = block_on(directory.search("Contoso", "", 10)).unwrap();
        let names: Vec<&str> = hits.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["Contoso Ltd", "Contoso SAS", "Contoso Pharmaceuticals Inc."]
        );
        assert_eq!(hits[0].1, 1.0);
        assert_eq!(hits[1].1, 1.0);
        assert!(hits[2].1 < 0.75);
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));

        let hits = block_on(directory.search("Contoso", "", 1)).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(
            block_on(directory.search("Contoso", "", 0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn search_keeps_to_the_country() {
        let directory = FileDirectory::sample();
        let hits = block_on(directory.search("contoso s.a.s.", "fr", 10)).unwrap();
        let names: Vec<&str> = hits.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(names, ["Contoso SAS"]);
        let hits = block_on(directory.search("Northwind Traders", "UK", 10)).unwrap();
        assert_eq!(hits[0].0.duns, "219047365");
    }

    #[test]
    fn search_finds_misspelled_names() {
        let directory = FileDirectory::sample();
        let hits = block_on(directory.search("Fabrikan", "", 10)).unwrap();
        let names: Vec<&str> = hits.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(names, ["Fabrikam SAS", "Fabrikam, Inc."]);
        assert!(hits.iter().all(|(_, s)| *s > 0.8 && *s < 1.0));
        let hits = block_on(directory.search("Tailspin Toys", "DE", 10)).unwrap();
        assert_eq!(hits[0].0.name, "Tailspin Toys GmbH");
    }

    #[test]
    fn search_for_nothing_alike_finds_nothing() {
        let directory = FileDirectory::sample();
        assert!(
            block_on(directory.search("Zzyzx Quarry", "", 10))
                .unwrap()
                .is_empty()
        );
        assert!(block_on(directory.search("", "", 10)).unwrap().is_empty());
        assert!(
            block_on(directory.search("   ", "", 10))
                .unwrap()
                .is_empty()
        );
    }

    // --- files ---------------------------------------------------------------

    #[test]
    fn a_csv_file_loads() {
        let file = TempFile::with(
            "csv",
            &format!(
                "{HEADER}150-483-782, Contoso SAS ,1 Rue de Rivoli,Paris,75001,fr\n\
                 219047365,\"Northwind Traders, Ltd\",35 King Street,London,WC2E 8JG,GB\n"
            ),
        );
        let directory = FileDirectory::load(&file.0).unwrap();
        assert_eq!(
            directory.companies,
            vec![
                // No `domain` column: the domain is optional.
                Company {
                    domain: String::new(),
                    ..contoso()
                },
                Company {
                    duns: "219047365".into(),
                    name: "Northwind Traders, Ltd".into(),
                    line1: "35 King Street".into(),
                    city: "London".into(),
                    postal_code: "WC2E 8JG".into(),
                    country: "GB".into(),
                    ..Company::default()
                }
            ]
        );
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_the_extension_in_any_case() {
        let file = TempFile::with(
            "CSV",
            "country,postal_code,city,line1,name,duns\nFR,75001,Paris,1 Rue de Rivoli,Contoso SAS,150483782\n",
        );
        let directory = FileDirectory::load(&file.0).unwrap();
        assert_eq!(
            directory.companies,
            vec![Company {
                domain: String::new(),
                ..contoso()
            }]
        );
    }

    #[test]
    fn a_json_file_loads() {
        let file = TempFile::with("json", &serde_json::to_string(&vec![contoso()]).unwrap());
        let directory = FileDirectory::load(&file.0).unwrap();
        assert_eq!(directory.companies, vec![contoso()]);
    }

    #[test]
    fn the_json_sample_agrees_with_the_csv_sample() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/directory-sample.json");
        let json = FileDirectory::load(&path).unwrap();
        let csv = FileDirectory::sample();
        assert!(json.companies.len() >= 3);
        for company in &json.companies {
            assert_eq!(csv.find(&company.duns).as_ref(), Some(company));
        }
    }

    #[test]
    fn a_bad_duns_names_its_line() {
        let file = TempFile::with(
            "csv",
            &format!(
                "{HEADER}150483782,Contoso SAS,1 Rue de Rivoli,Paris,75001,FR\n\
                 12345,Fabrikam SAS,24 Boulevard Haussmann,Paris,75009,FR\n"
            ),
        );
        let message = bad_data(FileDirectory::load(&file.0));
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("12345"), "{message}");
        assert!(message.contains(&file.0.display().to_string()), "{message}");
    }

    #[test]
    fn other_bad_csv_records_name_their_line() {
        let cases = [
            ("duns,name,city,postal_code,country\n", "line 1"),
            (
                &format!("{HEADER}150483782,Contoso SAS,1 Rue de Rivoli,Paris,75001\n") as &str,
                "line 2",
            ),
            (
                &format!("{HEADER}150483782,  ,1 Rue de Rivoli,Paris,75001,FR\n"),
                "line 2",
            ),
            (
                &format!(
                    "{HEADER}150483782,Contoso SAS,1 Rue de Rivoli,Paris,75001,FR\n\
                     268114903,Fabrikam SAS,24 Boulevard Haussmann,Paris,75009,FR\n\
                     268114903,Fabrikam SAS,24 Boulevard Haussmann,Paris,75009,France\n"
                ),
                "line 4",
            ),
            (
                &format!(
                    "{HEADER}150483782,Contoso SAS,1 Rue de Rivoli,Paris,75001,FR\n\
                     150483782,Contoso Bis,1 Rue de Rivoli,Paris,75001,FR\n"
                ),
                "line 3: DUNS 150483782 is already on line 2",
            ),
        ];
        for (contents, expected) in cases {
            let file = TempFile::with("csv", contents);
            let message = bad_data(FileDirectory::load(&file.0));
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn bad_json_names_its_line_or_record() {
        let file = TempFile::with("json", "[\n  {\"duns\": \"150483782\",\n  \"name\": }\n]");
        let message = bad_data(FileDirectory::load(&file.0));
        assert!(message.contains("line 3"), "{message}");

        let mut other = contoso();
        other.duns = "268114903".into();
        other.country = "France".into();
        let file = TempFile::with(
            "json",
            &serde_json::to_string(&vec![contoso(), other]).unwrap(),
        );
        let message = bad_data(FileDirectory::load(&file.0));
        assert!(message.contains("record 2"), "{message}");
        assert!(message.contains("France"), "{message}");
    }

    #[test]
    fn an_unknown_extension_is_bad_data() {
        let file = TempFile::with("txt", HEADER);
        let message = bad_data(FileDirectory::load(&file.0));
        assert!(message.contains(".csv or .json"), "{message}");
    }

    #[test]
    fn a_missing_file_is_unavailable() {
        let path = std::env::temp_dir().join("partnerhub-directory-does-not-exist.csv");
        match FileDirectory::load(&path) {
            Err(DirectoryError::Unavailable(message)) => {
                assert!(message.contains("does-not-exist"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn from_companies_finds_the_first_of_two_with_the_same_number() {
        let mut second = contoso();
        second.name = "Contoso Bis".into();
        let directory = FileDirectory::from_companies(vec![contoso(), second]);
        let found = block_on(directory.lookup("150483782")).unwrap();
        assert_eq!(found.map(|c| c.name), Some("Contoso SAS".into()));
    }

    // --- DUNS numbers ----------------------------------------------------------

    #[test]
    fn duns_numbers_have_nine_digits() {
        assert_eq!(parse_duns("150483782").unwrap(), "150483782");
        assert_eq!(parse_duns("15-048-3782").unwrap(), "150483782");
        assert_eq!(parse_duns(" 150 483 782 ").unwrap(), "150483782");
        for bad in [
            "",
            "15048378",
            "1504837821",
            "15048378a",
            "150.483.782",
            "１５０４８３７８２",
        ] {
            assert!(parse_duns(bad).is_err(), "{bad}");
        }
    }
}
