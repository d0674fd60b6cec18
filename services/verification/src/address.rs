//! Postal addresses of the countries whose postal rules are known (Armenia,
//! Hungary, Kyrgyzstan, Moldova, Russia, Uzbekistan): the required fields,
//! the postal code's format, and the standardised form that the postal
//! authority prints. Pure: no I/O.
//!
//! The standardised form is in Latin letters, because profile stores
//! addresses in Latin (Western European) characters only. Transliteration:
//!
//! - Russian Cyrillic (RU, MD, AM, HU): BGN/PCGN 1947 without its marks:
//!   `ye` at the start of a word and after a vowel, `й`, `ъ` or `ь`, `e`
//!   elsewhere; `ё` the same (`ë` written `e`); `ъ` and `ь` dropped.
//! - Kyrgyz Cyrillic (KG): BGN/PCGN 1979 (`ж` j, `ң` ng, `ө` ö, `ү` ü).
//! - Uzbek Cyrillic (UZ): the official Uzbek Latin alphabet, with the ASCII
//!   apostrophe (`ў` o', `ғ` g', `қ` q, `ҳ` h, `х` x).
//! - Armenian (every country): BGN/PCGN 1981, simplified: the aspiration
//!   apostrophes are dropped and `ռ` is `r`.
//!
//! Hungarian and Romanian letters keep their accents (`ő`, `ű`, `ș`, `ț`).

use partnerhub_platform::validate;
use unicode_normalization::UnicodeNormalization;

/// An address as entered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostalAddress {
    /// Street line.
    pub line1: String,
    /// Second line.
    pub line2: String,
    /// City.
    pub city: String,
    /// State or region.
    pub state: String,
    /// Postal code.
    pub postal_code: String,
    /// Country, ISO 3166-1 alpha-2.
    pub country: String,
}

/// What validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// The country's rules are not known: nothing was checked.
    NotCovered,
    /// Valid as entered (already in the postal authority's format).
    Valid,
    /// Valid, but the standardised form differs: suggest it.
    Suggested(PostalAddress),
    /// Invalid: every problem, as (field, description), field names `line1`,
    /// `line2`, `city`, `state`, `postal_code`.
    Invalid(Vec<(&'static str, String)>),
}

/// Countries whose addresses are validated.
pub const COVERED: &[&str] = &["AM", "HU", "KG", "MD", "RU", "UZ"];

/// Most characters of a street line (profile's limit).
const LINE_MAX: usize = 200;
/// Most characters of a city or a state (profile's limit).
const NAME_MAX: usize = 100;
/// Most characters of a postal code (profile's limit).
const CODE_MAX: usize = 20;

/// Validates `address` and suggests its standardised form.
pub fn validate(address: &PostalAddress) -> Validation {
    let Some(country) = Country::parse(&address.country) else {
        return Validation::NotCovered;
    };
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    let mut text = |field, raw: &str, max, required, role| {
        let (standard, problem) = text_field(country, raw, max, required, role);
        if let Some(problem) = problem {
            problems.push((field, problem));
        }
        standard
    };
    let line1 = text("line1", &address.line1, LINE_MAX, REQUIRED, Role::Line);
    let line2 = text("line2", &address.line2, LINE_MAX, None, Role::Line);
    let city = text("city", &address.city, NAME_MAX, REQUIRED, Role::City);
    let place = place(country, &city);
    // Russia's region is required, except for the cities of federal
    // significance, which are their own region.
    let state_required = (country == Country::Ru && place.is_none_or(|p| !p.region)).then_some(
        "is required in Russia (the oblast, krai or republic), except for Moscow, Saint Petersburg and Sevastopol",
    );
    let state = text(
        "state",
        &address.state,
        NAME_MAX,
        state_required,
        Role::Line,
    );
    let postal_code = postal_code(country, &address.postal_code).and_then(|code| match place {
        Some(p) if !code.starts_with(p.code_prefix) => Err(format!(
            "must start with {} in {}",
            p.code_prefix, p.display
        )),
        _ => Ok(code),
    });
    let postal_code = postal_code.unwrap_or_else(|problem| {
        problems.push(("postal_code", problem));
        String::new()
    });
    if !problems.is_empty() {
        return Validation::Invalid(problems);
    }
    let standard = PostalAddress {
        line1,
        line2,
        city,
        state,
        postal_code,
        country: country.code().to_owned(),
    };
    if standard == *address {
        Validation::Valid
    } else {
        Validation::Suggested(standard)
    }
}

/// A covered country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Country {
    Am,
    Hu,
    Kg,
    Md,
    Ru,
    Uz,
}

impl Country {
    /// The covered country of an ISO code, in any case, spaces around.
    fn parse(code: &str) -> Option<Self> {
        let code = code.trim();
        [Self::Am, Self::Hu, Self::Kg, Self::Md, Self::Ru, Self::Uz]
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(code))
    }

    /// Its ISO 3166-1 alpha-2 code.
    fn code(self) -> &'static str {
        match self {
            Self::Am => "AM",
            Self::Hu => "HU",
            Self::Kg => "KG",
            Self::Md => "MD",
            Self::Ru => "RU",
            Self::Uz => "UZ",
        }
    }

    /// Its English name.
    fn name(self) -> &'static str {
        match self {
            Self::Am => "Armenia",
            Self::Hu => "Hungary",
            Self::Kg => "Kyrgyzstan",
            Self::Md => "Moldova",
            Self::Ru => "Russia",
            Self::Uz => "Uzbekistan",
        }
    }

    /// The Cyrillic transliteration of its addresses.
    fn cyrillic(self) -> Cyrillic {
        match self {
            Self::Kg => Cyrillic::Kyrgyz,
            Self::Uz => Cyrillic::Uzbek,
            Self::Am | Self::Hu | Self::Md | Self::Ru => Cyrillic::Russian,
        }
    }
}

/// Which field a text is: the city has its own casing and punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Line,
    City,
}

/// The problem of a required field left empty.
const REQUIRED: Option<&str> = Some("is required");

/// The standardised text of a field and its problem, if any; `required` is
/// the problem when it is empty.
fn text_field(
    country: Country,
    raw: &str,
    max: usize,
    required: Option<&str>,
    role: Role,
) -> (String, Option<String>) {
    if raw.chars().any(char::is_control) {
        return (
            String::new(),
            Some("must not contain control characters".into()),
        );
    }
    let len = raw.chars().count();
    if len > max {
        return (
            String::new(),
            Some(format!("must be at most {max} characters (got {len})")),
        );
    }
    let standard = standardise(country, raw, role);
    let problem = if standard.is_empty() {
        required.map(str::to_owned)
    } else if let Err(e) = validate::latin_text(&standard) {
        Some(e)
    } else {
        let len = standard.chars().count();
        (len > max).then(|| {
            format!("must be at most {max} characters once written in Latin letters (got {len})")
        })
    };
    (standard, problem)
}

/// The postal authority's form of a text field.
fn standardise(country: Country, raw: &str, role: Role) -> String {
    let mut mapped = String::with_capacity(raw.len());
    for c in raw.nfc() {
        match replacement(country, c) {
            Some(s) => mapped.push_str(s),
            None => mapped.push(c),
        }
    }
    let latin = transliterate(&mapped, country.cyrillic());
    let hungarian = country == Country::Hu;
    // Casing comes before the last tidying: a capital may be longer (`ß`,
    // `SS`), and whether the end dot stays depends on the last word's length.
    match (role, country) {
        (Role::Line, _) => tidy(&latin, role, hungarian),
        // Title case needs the words tidied first.
        (Role::City, Country::Hu) => tidy(&title_case(&tidy(&latin, role, true)), role, true),
        (Role::City, _) => tidy(&latin.to_uppercase(), role, false),
    }
}

/// What replaces a character before transliteration: typographic
/// punctuation becomes ASCII, invisible characters go, and a few letters
/// typed from the wrong keyboard become the right ones.
fn replacement(country: Country, c: char) -> Option<&'static str> {
    let replaced = match c {
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => "",
        c if c.is_whitespace() => " ",
        '«' | '»' | '“' | '”' | '„' | '‟' | '″' => "\"",
        '‘' | '’' | '‚' | '‛' | '′' | 'ʻ' | 'ʼ' | '\u{055A}' => "'",
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{058A}' => "-",
        '№' => "No.",
        '…' => "...",
        // One dot leader (typed for the Armenian abbreviation dot) and the
        // Armenian full stop.
        '\u{2024}' | '\u{0589}' => ".",
        // Armenian comma; emphasis, exclamation, question and abbreviation
        // marks (written over a word).
        '\u{055D}' => ",",
        '\u{0559}' | '\u{055B}' | '\u{055C}' | '\u{055E}' | '\u{055F}' => "",
        // Armenian ligatures.
        'ﬓ' => "մն",
        'ﬔ' => "մե",
        'ﬕ' => "մի",
        'ﬖ' => "վն",
        'ﬗ' => "մխ",
        // Latin-1 has no ő and ű: õ and û stand in for them.
        'õ' if country == Country::Hu => "ő",
        'Õ' if country == Country::Hu => "Ő",
        'û' if country == Country::Hu => "ű",
        'Û' if country == Country::Hu => "Ű",
        // Romanian writes ș and ț with a comma below, not a cedilla.
        'ş' if country == Country::Md => "ș",
        'Ş' if country == Country::Md => "Ș",
        'ţ' if country == Country::Md => "ț",
        'Ţ' if country == Country::Md => "Ț",
        // Uzbek Latin o' and g' are often typed with a backtick.
        '`' if country == Country::Uz => "'",
        _ => return None,
    };
    Some(replaced)
}

/// Collapses spaces, puts one space after a comma and none before, and
/// removes commas, semicolons and dots at both ends. A final dot stays after
/// an abbreviation (`ul.`, `obl.`, `Toshkent sh.`, but not `Baku.` alone)
/// and, in Hungary, after any word or number of a street line, since
/// Hungarians end house numbers and floors with one (`12.`, `II.`).
fn tidy(text: &str, role: Role, hungarian: bool) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = collapsed.chars().collect();
    let mut spaced = String::with_capacity(collapsed.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' && chars.get(i + 1) == Some(&',') {
            continue;
        }
        spaced.push(c);
        if c == ',' {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            let after = chars.get(i + 1);
            let between_digits =
                before.is_some_and(char::is_ascii_digit) && after.is_some_and(char::is_ascii_digit);
            if after.is_some_and(|a| a.is_alphanumeric()) && !between_digits {
                spaced.push(' ');
            }
        }
    }
    let ends = |c: char| c == ',' || c == ';' || c == ' ';
    let mut text = spaced.trim_start_matches(|c| ends(c) || c == '.');
    loop {
        text = text.trim_end_matches(ends);
        match text.strip_suffix('.') {
            Some(before) if !keeps_dot(before, role, hungarian) => text = before,
            _ => break,
        }
    }
    text.to_owned()
}

/// Whether a final dot after `before` belongs to it.
fn keeps_dot(before: &str, role: Role, hungarian: bool) -> bool {
    let word = before.rsplit([' ', ',']).next().unwrap_or_default();
    if role == Role::City && word.len() == before.len() {
        // A city of one word has no abbreviation: `Moskva.`, `Baku.`.
        return false;
    }
    if role == Role::Line && hungarian && word.chars().last().is_some_and(char::is_alphanumeric) {
        return true;
    }
    !word.is_empty() && word.chars().count() <= 4 && word.chars().all(char::is_alphabetic)
}

/// Hungarian casing of a city typed all in capitals or all in small
/// letters: `BUDAPEST` is `Budapest`, a district's Roman number stays
/// (`XIII.`). A city in mixed case is left as typed.
fn title_case(city: &str) -> String {
    let lower = city.chars().any(char::is_lowercase);
    let upper = city.chars().any(char::is_uppercase);
    if lower && upper {
        return city.to_owned();
    }
    let mut out = String::with_capacity(city.len());
    for word in city.split_inclusive([' ', '-']) {
        let core = word.trim_end_matches([' ', '-']);
        let roman = core
            .strip_suffix('.')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| "IVXLCDMivxlcdm".contains(c)));
        if roman {
            out.push_str(&word.to_uppercase());
            continue;
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            // One capital, even for a letter that has two (`ß`, `ﬀ`).
            let mut upper = first.to_uppercase();
            out.extend(upper.next());
            out.push_str(&upper.collect::<String>().to_lowercase());
            out.push_str(&chars.as_str().to_lowercase());
        }
    }
    out
}

/// A place whose postal codes all start alike.
struct Place {
    country: Country,
    /// Its names, as `place_words` joined spell them.
    names: &'static [&'static str],
    /// How it is named in a problem.
    display: &'static str,
    /// The start of its postal codes, standardised.
    code_prefix: &'static str,
    /// A city of federal significance: its own region in Russia.
    region: bool,
}

/// Places checked against their postal codes.
const PLACES: &[Place] = &[
    Place {
        country: Country::Am,
        names: &["YEREVAN", "EREVAN"],
        display: "Yerevan",
        code_prefix: "00",
        region: false,
    },
    Place {
        country: Country::Hu,
        names: &["BUDAPEST"],
        display: "Budapest",
        code_prefix: "1",
        region: false,
    },
    Place {
        country: Country::Kg,
        names: &["BISHKEK"],
        display: "Bishkek",
        code_prefix: "720",
        region: false,
    },
    Place {
        country: Country::Md,
        names: &["CHISINAU", "KISHINEV", "KISHINYOV"],
        display: "Chișinău",
        code_prefix: "MD-20",
        region: false,
    },
    Place {
        country: Country::Ru,
        names: &["MOSKVA", "MOSCOW"],
        display: "Moscow",
        code_prefix: "1",
        region: true,
    },
    Place {
        country: Country::Ru,
        names: &[
            "SANKTPETERBURG",
            "SAINTPETERSBURG",
            "STPETERSBURG",
            "PETERBURG",
            "SPB",
        ],
        display: "Saint Petersburg",
        code_prefix: "19",
        region: true,
    },
    Place {
        country: Country::Ru,
        names: &["SEVASTOPOL"],
        display: "Sevastopol",
        code_prefix: "299",
        region: true,
    },
    Place {
        country: Country::Uz,
        names: &["TOSHKENT", "TASHKENT"],
        display: "Tashkent",
        code_prefix: "100",
        region: false,
    },
];

/// The known place a standardised city names, if any.
fn place(country: Country, city: &str) -> Option<&'static Place> {
    let words = place_words(city);
    let key: String = words.concat();
    // A Budapest address may name the district after the city.
    let first = words
        .first()
        .map(String::as_str)
        .filter(|_| country == Country::Hu);
    PLACES.iter().find(|p| {
        p.country == country
            && (p.names.contains(&key.as_str()) || first.is_some_and(|w| p.names.contains(&w)))
    })
}

/// A city's words in plain capitals, without the words for "city"
/// (`g.` Russian, `k.` Armenian, `sh.` Uzbek, `mun.` Romanian).
fn place_words(city: &str) -> Vec<String> {
    const GENERIC: &[&str] = &[
        "G",
        "GOR",
        "GOROD",
        "K",
        "KAGHAK",
        "SH",
        "SHAHRI",
        "SHAHAR",
        "MUN",
        "MUNICIPIUL",
        "OR",
        "ORAS",
        "ORASUL",
        "CITY",
        "OF",
    ];
    let mut words = Vec::new();
    let mut word = String::new();
    for c in city.chars().chain([' ']) {
        match plain_letter(c) {
            Some(letter) => word.push(letter),
            None if !word.is_empty() => {
                if !GENERIC.contains(&word.as_str()) {
                    words.push(word.clone());
                }
                word.clear();
            }
            None => {}
        }
    }
    words
}

/// A Latin letter as a plain capital, accents dropped.
fn plain_letter(c: char) -> Option<char> {
    if c.is_ascii_alphabetic() {
        return Some(c.to_ascii_uppercase());
    }
    let plain = match c.to_lowercase().next().unwrap_or(c) {
        'á' | 'à' | 'â' | 'ä' | 'ă' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'E',
        'í' | 'î' | 'ï' => 'I',
        'ó' | 'ô' | 'ö' | 'ő' => 'O',
        'ú' | 'û' | 'ü' | 'ű' => 'U',
        'ș' | 'ş' => 'S',
        'ț' | 'ţ' => 'T',
        _ => return None,
    };
    Some(plain)
}

/// The postal authority's form of a postal code, or what is wrong with it.
fn postal_code(country: Country, raw: &str) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let len = raw.chars().count();
    if len > CODE_MAX {
        return Err(format!("must be at most {CODE_MAX} characters (got {len})"));
    }
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("is required".into());
    }
    let (digits, count, shape) = match country {
        // Moldova's codes carry the country: `MD-2012`.
        Country::Md => (
            strip_prefix(&compact, "MD"),
            4,
            "MD- and 4 digits, such as MD-2012",
        ),
        // Hungarian codes were once written `H-1051`.
        Country::Hu => (strip_prefix(&compact, "H"), 4, "4 digits, such as 1051"),
        Country::Am => (compact.as_str(), 4, "4 digits, such as 0010"),
        Country::Kg => (compact.as_str(), 6, "6 digits, such as 720001"),
        Country::Ru => (compact.as_str(), 6, "6 digits, such as 125009"),
        Country::Uz => (compact.as_str(), 6, "6 digits, such as 100000"),
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("must be {shape}, without letters or other signs"));
    }
    if digits.len() != count {
        return Err(format!("must be {shape} (got {} digits)", digits.len()));
    }
    let first = digits.bytes().next().unwrap_or_default();
    let region: u8 = digits
        .get(..2)
        .and_then(|r| r.parse().ok())
        .unwrap_or_default();
    let (in_range, range) = match country {
        Country::Am => (
            first <= b'4' && digits != "0000",
            "from 0001 to 4999 (the first two digits are the region)",
        ),
        Country::Hu => (first != b'0', "from 1000 to 9999"),
        Country::Kg => (first == b'7', "starting with 7"),
        Country::Md => ((b'2'..=b'7').contains(&first), "from MD-2000 to MD-7999"),
        Country::Ru => ((b'1'..=b'6').contains(&first), "starting with 1 to 6"),
        Country::Uz => (
            (10..=23).contains(&region),
            "from 100000 to 239999 (the first two digits are the region)",
        ),
    };
    if !in_range {
        return Err(format!(
            "must be a postal code of {}, {range}",
            country.name()
        ));
    }
    Ok(match country {
        Country::Md => format!("MD-{digits}"),
        _ => digits.to_owned(),
    })
}

/// `code` without a leading `prefix` (any case) and the dash after it.
fn strip_prefix<'a>(code: &'a str, prefix: &str) -> &'a str {
    match code.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => {
            let rest = code.get(prefix.len()..).unwrap_or_default();
            rest.strip_prefix(['-', '‐', '‑', '–', '—']).unwrap_or(rest)
        }
        _ => code,
    }
}

/// Which Cyrillic transliteration applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cyrillic {
    Russian,
    Kyrgyz,
    Uzbek,
}

/// Writes Cyrillic and Armenian letters in Latin ones; other characters
/// stay. A capital becomes `Sh` inside a word in small letters and `SH`
/// inside a word in capitals.
fn transliterate(text: &str, cyrillic: Cyrillic) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let prev = i
            .checked_sub(1)
            .and_then(|j| chars.get(j))
            .copied()
            .filter(|p| p.is_alphabetic())
            .map(lower);
        let found = if is_armenian(c) {
            armenian(&chars, i, prev)
        } else if is_cyrillic(c) {
            cyrillic_letter(lower(c), prev, cyrillic).map(|latin| (latin, 1))
        } else {
            None
        };
        let Some((latin, used)) = found else {
            out.push(c);
            i += 1;
            continue;
        };
        if !c.is_uppercase() {
            out.push_str(latin);
        } else {
            // The case of the word: the next letter's, or the previous one's.
            let neighbour = chars
                .get(i + used)
                .filter(|n| n.is_alphabetic())
                .or_else(|| i.checked_sub(1).and_then(|j| chars.get(j)))
                .filter(|n| n.is_alphabetic());
            if neighbour.is_some_and(|n| n.is_uppercase()) {
                out.push_str(&latin.to_uppercase());
            } else {
                let mut letters = latin.chars();
                if let Some(first) = letters.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(letters.as_str());
                }
            }
        }
        i += used;
    }
    out
}

/// The small letter of `c` (Cyrillic and Armenian have one for each).
fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Whether `c` is in the Cyrillic blocks.
fn is_cyrillic(c: char) -> bool {
    ('\u{0400}'..='\u{052F}').contains(&c)
}

/// Whether `c` is an Armenian letter.
fn is_armenian(c: char) -> bool {
    ('\u{0531}'..='\u{0556}').contains(&c) || ('\u{0561}'..='\u{0587}').contains(&c)
}

/// Latin for a small Cyrillic letter after `prev` (a small letter, or none
/// at the start of a word).
fn cyrillic_letter(c: char, prev: Option<char>, cyrillic: Cyrillic) -> Option<&'static str> {
    // `ye` at the start of a word and after a vowel or a sign.
    let soft = |after: &str| prev.is_none_or(|p| after.contains(p));
    let specific = match (cyrillic, c) {
        (Cyrillic::Russian, 'е' | 'ё') => Some(if soft("аеёиоуыэюяйъь") {
            "ye"
        } else {
            "e"
        }),
        (Cyrillic::Kyrgyz, 'е') => Some("e"),
        (Cyrillic::Kyrgyz | Cyrillic::Uzbek, 'ё') => Some("yo"),
        (Cyrillic::Kyrgyz | Cyrillic::Uzbek, 'ж') => Some("j"),
        (Cyrillic::Uzbek, 'е') => Some(if soft("аеёиоуэюяўъь") {
            "ye"
        } else {
            "e"
        }),
        (Cyrillic::Uzbek, 'х') => Some("x"),
        (Cyrillic::Uzbek, 'щ') => Some("sh"),
        (Cyrillic::Uzbek, 'ъ') => Some("'"),
        (Cyrillic::Uzbek, 'ы') => Some("i"),
        _ => None,
    };
    specific.or(match c {
        'а' => Some("a"),
        'б' => Some("b"),
        'в' => Some("v"),
        'г' => Some("g"),
        'д' => Some("d"),
        'ж' => Some("zh"),
        'з' => Some("z"),
        'и' => Some("i"),
        'й' => Some("y"),
        'к' => Some("k"),
        'л' => Some("l"),
        'м' => Some("m"),
        'н' => Some("n"),
        'о' => Some("o"),
        'п' => Some("p"),
        'р' => Some("r"),
        'с' => Some("s"),
        'т' => Some("t"),
        'у' => Some("u"),
        'ф' => Some("f"),
        'х' => Some("kh"),
        'ц' => Some("ts"),
        'ч' => Some("ch"),
        'ш' => Some("sh"),
        'щ' => Some("shch"),
        'ъ' | 'ь' => Some(""),
        'ы' => Some("y"),
        'э' => Some("e"),
        'ю' => Some("yu"),
        'я' => Some("ya"),
        // Kyrgyz.
        'ң' => Some("ng"),
        'ө' => Some("ö"),
        'ү' => Some("ü"),
        // Uzbek.
        'ў' => Some("o'"),
        'қ' => Some("q"),
        'ғ' => Some("g'"),
        'ҳ' => Some("h"),
        // Ukrainian and Moldovan letters met in addresses.
        'і' => Some("i"),
        'ї' => Some("yi"),
        'є' => Some("ye"),
        'ґ' => Some("g"),
        'ӂ' => Some("j"),
        _ => None,
    })
}

/// Latin for the Armenian letter at `i` after `prev` (a small letter, or
/// none at the start of a word), and how many characters it used.
fn armenian(chars: &[char], i: usize, prev: Option<char>) -> Option<(&'static str, usize)> {
    let c = lower(*chars.get(i)?);
    let next = chars.get(i + 1).copied().map(lower);
    let initial = prev.is_none();
    // ու is the vowel u: a ւ before a letter ends one.
    let after_vowel = prev.is_some_and(|p| "աեէըիոօւ".contains(p));
    let latin = match c {
        'ո' if next == Some('ւ') => return Some(("u", 2)),
        'ո' if initial => {
            // ով ("who") is the exception.
            let ov = next == Some('վ') && chars.get(i + 2).is_none_or(|c| !c.is_alphabetic());
            if ov { "o" } else { "vo" }
        }
        'ո' => "o",
        // եւ is the older spelling of և.
        'ե' if next == Some('ւ') => {
            return Some((if initial || after_vowel { "yev" } else { "ev" }, 2));
        }
        'ե' => {
            if initial || after_vowel {
                "ye"
            } else {
                "e"
            }
        }
        'և' => {
            if initial || after_vowel {
                "yev"
            } else {
                "ev"
            }
        }
        'ա' => "a",
        'բ' => "b",
        'գ' => "g",
        'դ' => "d",
        'զ' => "z",
        'է' => "e",
        'ը' => "y",
        'թ' => "t",
        'ժ' => "zh",
        'ի' => "i",
        'լ' => "l",
        'խ' => "kh",
        'ծ' => "ts",
        'կ' => "k",
        'հ' => "h",
        'ձ' => "dz",
        'ղ' => "gh",
        'ճ' => "ch",
        'մ' => "m",
        'յ' => "y",
        'ն' => "n",
        'շ' => "sh",
        'չ' => "ch",
        'պ' => "p",
        'ջ' => "j",
        'ռ' => "r",
        'ս' => "s",
        'վ' => "v",
        'տ' => "t",
        'ր' => "r",
        'ց' => "ts",
        'ւ' => "v",
        'փ' => "p",
        'ք' => "k",
        'օ' => "o",
        'ֆ' => "f",
        _ => return None,
    };
    Some((latin, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(line1: &str, city: &str, state: &str, code: &str, country: &str) -> PostalAddress {
        PostalAddress {
            line1: line1.into(),
            line2: String::new(),
            city: city.into(),
            state: state.into(),
            postal_code: code.into(),
            country: country.into(),
        }
    }

    fn suggestion(a: &PostalAddress) -> PostalAddress {
        match validate(a) {
            Validation::Suggested(s) => s,
            other => panic!("expected a suggestion for {a:?}, got {other:?}"),
        }
    }

    fn problems(a: &PostalAddress) -> Vec<(&'static str, String)> {
        match validate(a) {
            Validation::Invalid(p) => p,
            other => panic!("expected problems for {a:?}, got {other:?}"),
        }
    }

    fn fields(a: &PostalAddress) -> Vec<&'static str> {
        problems(a).into_iter().map(|(f, _)| f).collect()
    }

    /// A valid address with `code` as its postal code, for each country.
    fn with_code(country: &str, code: &str) -> PostalAddress {
        let (line1, city, state) = match country {
            "AM" => ("Abovyan St 1", "GYUMRI", ""),
            "HU" => ("Kossuth Lajos utca 1.", "Szeged", ""),
            "KG" => ("Lenin St 1", "OSH", ""),
            "MD" => ("str. Independenței 1", "BĂLȚI", ""),
            "RU" => ("ul. Lenina, 1", "NOVOSIBIRSK", "Novosibirskaya oblast"),
            _ => ("Mustaqillik ko'chasi 1", "SAMARQAND", ""),
        };
        address(line1, city, state, code, country)
    }

    #[test]
    fn countries_not_covered_are_not_checked() {
        for country in ["FR", "fr", "", "RUS", "R", "XX", "A\u{0}M"] {
            let a = address("", "\u{7}", "", "abc", country);
            assert_eq!(validate(&a), Validation::NotCovered, "{country:?}");
        }
        assert_eq!(COVERED.len(), 6);
        for code in COVERED {
            assert_eq!(Country::parse(code).map(Country::code), Some(*code));
        }
    }

    #[test]
    fn country_is_read_in_any_case_and_written_in_capitals() {
        let a = address("ul. Tverskaya, 7", "MOSKVA", "", "125009", " ru ");
        assert_eq!(suggestion(&a).country, "RU");
    }

    #[test]
    fn armenian_address_in_latin_is_valid() {
        let a = address("Abovyan St 1", "YEREVAN", "", "0001", "AM");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn armenian_script_is_transliterated_and_the_city_capitalised() {
        let a = address("Աբովյան փողոց 1", "Երևան", "", "0001", "am");
        let s = suggestion(&a);
        assert_eq!(s.line1, "Abovyan poghots 1");
        assert_eq!(s.city, "YEREVAN");
        assert_eq!(s.country, "AM");
        assert_eq!(validate(&s), Validation::Valid);
        let latin = address("Abovyan St 1", "Yerevan", "", "0001", "AM");
        assert_eq!(suggestion(&latin).city, "YEREVAN");
    }

    #[test]
    fn armenian_follows_bgn_pcgn_simplified() {
        for (armenian, latin) in [
            ("Երևան", "Yerevan"),
            ("ԵՐԵՎԱՆ", "YEREVAN"),
            ("Գյումրի", "Gyumri"),
            ("Վանաձոր", "Vanadzor"),
            ("Էջմիածին", "Ejmiatsin"),
            ("Իջևան", "Ijevan"),
            ("Ոսկեհատ", "Voskehat"),
            ("Հանրապետության հրապարակ", "Hanrapetutyan hraparak"),
            ("Մաշտոցի պողոտա", "Mashtotsi poghota"),
            ("Ծիծեռնակաբերդ", "Tsitsernakaberd"),
            ("Սայաթ-Նովա", "Sayat-Nova"),
            ("Այգեստան", "Aygestan"),
            ("Ուլնեցի", "Ulnetsi"),
            ("Եւ", "Yev"),
            ("Քաղաքապետարան", "Kaghakapetaran"),
        ] {
            assert_eq!(
                transliterate(armenian, Cyrillic::Russian),
                latin,
                "{armenian}"
            );
        }
        // Armenian punctuation and the abbreviation dot.
        assert_eq!(
            standardise(Country::Am, "ք․ Երևան", Role::Line),
            "k. Yerevan"
        );
        assert_eq!(
            standardise(Country::Am, "Երևան՝ Կենտրոն", Role::Line),
            "Yerevan, Kentron"
        );
    }

    #[test]
    fn hungarian_address_as_the_post_writes_it_is_valid() {
        let a = address("Váci utca 12.", "Budapest", "", "1051", "HU");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn hungarian_address_gets_spacing_casing_and_code_fixed() {
        let mut a = address("  Váci   utca 12. ", "BUDAPEST", "", "H-1051", "hu");
        a.line2 = "II. emelet 3.".into();
        let s = suggestion(&a);
        assert_eq!(s.line1, "Váci utca 12.");
        assert_eq!(s.line2, "II. emelet 3.");
        assert_eq!(s.city, "Budapest");
        assert_eq!(s.postal_code, "1051");
        assert_eq!(s.country, "HU");
    }

    #[test]
    fn hungarian_accents_are_kept_and_latin1_stand_ins_corrected() {
        let a = address(
            "Petõfi Sándor utca 3.",
            "hódmezővásárhely",
            "Csongrád-Csanád",
            "6800",
            "HU",
        );
        let s = suggestion(&a);
        assert_eq!(s.line1, "Petőfi Sándor utca 3.");
        assert_eq!(s.city, "Hódmezővásárhely");
        assert_eq!(s.state, "Csongrád-Csanád");
        let kept = address("Dózsa György út 25.", "Győr", "", "9021", "HU");
        assert_eq!(validate(&kept), Validation::Valid);
        assert_eq!(
            title_case("BUDAPEST XIII. KERÜLET"),
            "Budapest XIII. Kerület"
        );
        assert_eq!(
            title_case("Budapest XIII. kerület"),
            "Budapest XIII. kerület"
        );
    }

    #[test]
    fn decomposed_accents_are_composed() {
        let a = address("Va\u{301}ci utca 12.", "Budapest", "", "1051", "HU");
        assert_eq!(suggestion(&a).line1, "Váci utca 12.");
        let b = address(
            "ул. Тверска\u{44f}, 7",
            "Корол\u{435}\u{308}в",
            "Московская обл.",
            "141070",
            "RU",
        );
        assert_eq!(suggestion(&b).city, "KOROLEV");
    }

    #[test]
    fn kyrgyz_address_in_latin_is_valid() {
        let a = address("Chuy Ave 227", "BISHKEK", "", "720001", "KG");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn kyrgyz_cyrillic_is_transliterated_by_bgn_pcgn() {
        let a = address("Чүй проспекти, 227", "Бишкек", "", "720 001", "kg");
        let s = suggestion(&a);
        assert_eq!(s.line1, "Chüy prospekti, 227");
        assert_eq!(s.city, "BISHKEK");
        assert_eq!(s.postal_code, "720001");
        for (kyrgyz, latin) in [
            ("Жалал-Абад", "Jalal-Abad"),
            ("Өзгөн", "Özgön"),
            ("Көк-Жаңгак", "Kök-Janggak"),
            ("Сүлүктү", "Sülüktü"),
            ("Ысык-Көл", "Ysyk-Köl"),
        ] {
            assert_eq!(transliterate(kyrgyz, Cyrillic::Kyrgyz), latin, "{kyrgyz}");
        }
    }

    #[test]
    fn moldovan_address_as_the_post_writes_it_is_valid() {
        let a = address("str. Mihai Eminescu 5", "CHIȘINĂU", "", "MD-2012", "MD");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn moldovan_address_gets_comma_below_letters_capitals_and_prefix() {
        let a = address(
            "bd. Ştefan cel Mare şi Sfânt 134",
            "Chişinău",
            "",
            "2012",
            "MD",
        );
        let s = suggestion(&a);
        assert_eq!(s.line1, "bd. Ștefan cel Mare și Sfânt 134");
        assert_eq!(s.city, "CHIȘINĂU");
        assert_eq!(s.postal_code, "MD-2012");
    }

    #[test]
    fn moldovan_postal_code_forms_become_md_dash_four_digits() {
        let valid = address("str. Mihai Eminescu 5", "CHIȘINĂU", "", "MD-2001", "MD");
        assert_eq!(validate(&valid), Validation::Valid);
        for form in [
            "MD2001",
            "md 2001",
            "2001",
            "md-2001",
            "MD – 2001",
            " 20 01 ",
        ] {
            let a = PostalAddress {
                postal_code: form.into(),
                ..valid.clone()
            };
            assert_eq!(suggestion(&a).postal_code, "MD-2001", "{form:?}");
        }
        for wrong in [
            "MD-201", "MD-20011", "MO-2001", "MD-20O1", "MD-1001", "MD-8001", "RU-2001",
        ] {
            let a = PostalAddress {
                postal_code: wrong.into(),
                ..valid.clone()
            };
            assert_eq!(fields(&a), ["postal_code"], "{wrong:?}");
        }
    }

    #[test]
    fn russian_address_in_latin_is_valid() {
        let a = address("ul. Tverskaya, 7", "MOSKVA", "", "125009", "RU");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn russian_cyrillic_is_transliterated_and_the_city_capitalised() {
        let a = address("ул. Тверская, 7", "Москва", "", "125009", "RU");
        let s = suggestion(&a);
        assert_eq!(s.line1, "ul. Tverskaya, 7");
        assert_eq!(s.city, "MOSKVA");
        assert_eq!(s.state, "");
        assert_eq!(s.postal_code, "125009");
        assert_eq!(validate(&s), Validation::Valid);
    }

    #[test]
    fn russian_postal_code_spaces_are_removed() {
        let a = address("ul. Ilyinka, 4", "MOSKVA", "", "101 000", "RU");
        assert_eq!(suggestion(&a).postal_code, "101000");
    }

    #[test]
    fn russian_follows_bgn_pcgn_without_marks() {
        for (russian, latin) in [
            ("Екатеринбург", "Yekaterinburg"),
            ("Санкт-Петербург", "Sankt-Peterburg"),
            ("Невский проспект", "Nevskiy prospekt"),
            ("Ярославль", "Yaroslavl"),
            ("подъезд", "podyezd"),
            ("Щёлково", "Shchelkovo"),
            ("Ёлкино", "Yelkino"),
            ("Красный", "Krasnyy"),
            ("Юбилейный", "Yubileynyy"),
            ("Шоссе Энтузиастов", "Shosse Entuziastov"),
            ("ЩУКИНО", "SHCHUKINO"),
            ("Щ.", "Shch."),
            ("Цветной бульвар", "Tsvetnoy bulvar"),
            ("Хабаровск", "Khabarovsk"),
            ("Заельцовский", "Zayeltsovskiy"),
        ] {
            assert_eq!(
                transliterate(russian, Cyrillic::Russian),
                latin,
                "{russian}"
            );
        }
    }

    #[test]
    fn russian_region_is_required_except_for_federal_cities() {
        let a = address("ул. Ленина, 1", "Екатеринбург", "", "620014", "RU");
        assert_eq!(fields(&a), ["state"]);
        let with_state = PostalAddress {
            state: "Свердловская обл.".into(),
            ..a
        };
        let s = suggestion(&with_state);
        assert_eq!(s.state, "Sverdlovskaya obl.");
        assert_eq!(s.city, "YEKATERINBURG");
        for (city, code) in [
            ("Москва", "125009"),
            ("г. Москва", "125009"),
            ("Moscow", "125009"),
            ("Санкт-Петербург", "191186"),
            ("Saint Petersburg", "191186"),
            ("St. Petersburg", "191186"),
            ("Севастополь", "299011"),
        ] {
            let a = address("ul. Lenina, 1", city, "", code, "RU");
            assert!(
                matches!(validate(&a), Validation::Valid | Validation::Suggested(_)),
                "{city}: {:?}",
                validate(&a)
            );
        }
    }

    #[test]
    fn uzbek_address_in_latin_is_valid() {
        let a = address("Amir Temur ko'chasi, 4", "TOSHKENT", "", "100000", "UZ");
        assert_eq!(validate(&a), Validation::Valid);
    }

    #[test]
    fn uzbek_cyrillic_is_written_in_the_uzbek_latin_alphabet() {
        let a = address("Амир Темур кўчаси, 4", "Тошкент", "", "100 000", "uz");
        let s = suggestion(&a);
        assert_eq!(s.line1, "Amir Temur ko'chasi, 4");
        assert_eq!(s.city, "TOSHKENT");
        assert_eq!(s.postal_code, "100000");
        for (uzbek, latin) in [
            ("Қарши", "Qarshi"),
            ("Ғиждувон", "G'ijduvon"),
            ("Хоразм", "Xorazm"),
            ("Шаҳрисабз", "Shahrisabz"),
            ("Ўзбекистон", "O'zbekiston"),
            ("ЎЗБЕКИСТОН", "O'ZBEKISTON"),
            ("Ельбек", "Yelbek"),
            ("Маъмур", "Ma'mur"),
            ("Жиззах", "Jizzax"),
        ] {
            assert_eq!(transliterate(uzbek, Cyrillic::Uzbek), latin, "{uzbek}");
        }
        let city = address("Amir Temur ko'chasi, 4", "Тошкент ш.", "", "100084", "UZ");
        assert_eq!(suggestion(&city).city, "TOSHKENT SH.");
        let typed = address("Gʻafur Gʻulom ko`chasi 5", "Toshkent", "", "100011", "UZ");
        assert_eq!(suggestion(&typed).line1, "G'afur G'ulom ko'chasi 5");
    }

    #[test]
    fn spacing_and_end_punctuation_are_tidied() {
        let a = address(" ул.  Тверская ,7 ,, ", "Москва.", "", "125009", "RU");
        let s = suggestion(&a);
        assert_eq!(s.line1, "ul. Tverskaya, 7");
        assert_eq!(s.city, "MOSKVA");
        assert_eq!(tidy("d. 7.", Role::Line, false), "d. 7");
        assert_eq!(tidy("Tverskaya ul.", Role::Line, false), "Tverskaya ul.");
        assert_eq!(tidy("Moskva.", Role::Line, false), "Moskva");
        assert_eq!(tidy("12,5", Role::Line, false), "12,5");
        assert_eq!(tidy(", ; Moskva", Role::Line, false), "Moskva");
        assert_eq!(tidy("Baku.", Role::City, false), "Baku");
        assert_eq!(tidy("Toshkent sh.", Role::City, false), "Toshkent sh.");
        assert_eq!(tidy("Budapest XIII.", Role::City, true), "Budapest XIII.");
        assert_eq!(tidy("Fő utca 1.", Role::Line, true), "Fő utca 1.");
        assert_eq!(tidy("Fő utca 1.", Role::Line, false), "Fő utca 1");
        assert_eq!(
            standardise(Country::Ru, "ЖК «Солнечный» №\u{a0}5", Role::Line),
            "ZHK \"Solnechnyy\" No. 5"
        );
    }

    #[test]
    fn control_characters_are_refused_in_every_field() {
        let a = PostalAddress {
            line1: "ul. Tverskaya,\n7".into(),
            line2: "\t".into(),
            city: "MOS\u{7}KVA".into(),
            state: "\u{1b}[0m".into(),
            postal_code: "125\u{0}009".into(),
            country: "RU".into(),
        };
        let found = problems(&a);
        assert_eq!(
            found.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            ["line1", "line2", "city", "state", "postal_code"]
        );
        assert!(found.iter().all(|(_, p)| p.contains("control characters")));
    }

    #[test]
    fn fields_longer_than_the_profile_allows_are_refused() {
        let ok = address("ul. Tverskaya, 7", "MOSKVA", "", "125009", "RU");
        let long = PostalAddress {
            line1: "a".repeat(201),
            line2: "b".repeat(201),
            city: "c".repeat(101),
            state: "d".repeat(101),
            postal_code: "1".repeat(21),
            ..ok.clone()
        };
        let found = problems(&long);
        assert_eq!(
            found.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            ["line1", "line2", "city", "state", "postal_code"]
        );
        assert_eq!(found[0].1, "must be at most 200 characters (got 201)");
        let longest = PostalAddress {
            line1: "a".repeat(200),
            line2: "b".repeat(200),
            city: "C".repeat(100),
            state: "d".repeat(100),
            ..ok.clone()
        };
        assert_eq!(validate(&longest), Validation::Valid);
        // 100 Cyrillic letters that need 400 Latin ones.
        let transliterated = PostalAddress {
            city: "Щ".repeat(100),
            state: "Moskovskaya oblast".into(),
            ..ok
        };
        assert_eq!(
            problems(&transliterated),
            [(
                "city",
                "must be at most 100 characters once written in Latin letters (got 400)".to_owned()
            )]
        );
    }

    #[test]
    fn letters_in_postal_codes_are_refused() {
        for (country, code) in [
            ("AM", "00A1"),
            ("HU", "1O51"),
            ("HU", "HU-1051"),
            ("KG", "72OOO1"),
            ("MD", "MD-2O12"),
            ("RU", "12500Я"),
            ("RU", "125-009"),
            ("UZ", "1OOOOO"),
        ] {
            let found = problems(&with_code(country, code));
            assert_eq!(found.len(), 1, "{country} {code}: {found:?}");
            assert_eq!(found[0].0, "postal_code");
            assert!(found[0].1.contains("without letters"), "{found:?}");
        }
    }

    #[test]
    fn postal_codes_have_each_countrys_length_and_range() {
        for (country, good) in [
            ("AM", "3101"),
            ("HU", "6720"),
            ("KG", "714000"),
            ("MD", "MD-3100"),
            ("RU", "630099"),
            ("UZ", "140100"),
        ] {
            let a = with_code(country, good);
            assert_eq!(validate(&a), Validation::Valid, "{country} {good}");
        }
        for (country, bad) in [
            ("AM", "5001"),
            ("AM", "0000"),
            ("AM", "001"),
            ("AM", "00010"),
            ("HU", "0123"),
            ("HU", "10511"),
            ("KG", "620001"),
            ("KG", "72000"),
            ("MD", "1001"),
            ("MD", "8001"),
            ("RU", "725009"),
            ("RU", "025009"),
            ("RU", "12500"),
            ("UZ", "240000"),
            ("UZ", "090000"),
            ("UZ", "10000"),
        ] {
            assert_eq!(
                fields(&with_code(country, bad)),
                ["postal_code"],
                "{country} {bad}"
            );
        }
    }

    #[test]
    fn capital_cities_need_their_own_postal_codes() {
        for a in [
            address("Váci utca 12.", "Budapest", "", "2000", "HU"),
            address("ul. Tverskaya, 7", "MOSKVA", "", "625009", "RU"),
            address(
                "Nevskiy prospekt, 28",
                "SANKT-PETERBURG",
                "",
                "101000",
                "RU",
            ),
            address("Chuy Ave 227", "BISHKEK", "", "714000", "KG"),
            address("Amir Temur ko'chasi, 4", "TOSHKENT", "", "140100", "UZ"),
            address("str. Mihai Eminescu 5", "CHIȘINĂU", "", "MD-3100", "MD"),
            address("Abovyan St 1", "YEREVAN", "", "3101", "AM"),
        ] {
            assert_eq!(fields(&a), ["postal_code"], "{a:?}");
        }
        let budapest = address("Váci utca 12.", "Budapest", "", "2000", "HU");
        assert_eq!(problems(&budapest)[0].1, "must start with 1 in Budapest");
    }

    #[test]
    fn required_fields_are_reported_together() {
        let a = address(" , ", "  ", "", "", "KG");
        assert_eq!(
            problems(&a),
            [
                ("line1", "is required".to_owned()),
                ("city", "is required".to_owned()),
                ("postal_code", "is required".to_owned()),
            ]
        );
    }

    #[test]
    fn scripts_without_a_transliteration_are_refused() {
        let a = address("Οδός Ερμού 1", "MOSKVA", "", "125009", "RU");
        assert_eq!(
            problems(&a),
            [(
                "line1",
                "must use Western European (Latin) characters only".to_owned()
            )]
        );
    }

    /// A small deterministic generator (xorshift), so a failure repeats.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn char(&mut self) -> char {
            let ranges: &[(u32, u32)] = &[
                (0x20, 0x7E),
                (0x00, 0x1F),
                (0xA0, 0x24F),
                (0x300, 0x36F),
                (0x400, 0x52F),
                (0x531, 0x58A),
                (0x2000, 0x206F),
                (0xFB00, 0xFB17),
                (0, 0x10FFFF),
            ];
            let (low, high) = ranges[self.below(ranges.len() as u64) as usize];
            let code = low + self.below(u64::from(high - low + 1)) as u32;
            char::from_u32(code).unwrap_or('?')
        }

        fn text(&mut self) -> String {
            let len = match self.below(10) {
                0 => 0,
                1 => 150 + self.below(100),
                _ => self.below(24),
            };
            (0..len).map(|_| self.char()).collect()
        }
    }

    fn check_standard(a: &PostalAddress) {
        for (value, max) in [
            (&a.line1, LINE_MAX),
            (&a.line2, LINE_MAX),
            (&a.city, NAME_MAX),
            (&a.state, NAME_MAX),
            (&a.postal_code, CODE_MAX),
        ] {
            assert!(value.chars().count() <= max, "{a:?}");
            assert_eq!(value.trim(), value, "{a:?}");
            if !value.is_empty() {
                assert_eq!(validate::latin_text(value), Ok(()), "{a:?}");
            }
        }
        assert!(COVERED.contains(&a.country.as_str()), "{a:?}");
    }

    #[test]
    fn any_input_gets_an_answer_without_panicking() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let countries = ["AM", "hu", "KG", "md", "RU", "uz", "FR", ""];
        for _ in 0..5_000 {
            let a = PostalAddress {
                line1: random.text(),
                line2: random.text(),
                city: random.text(),
                state: random.text(),
                postal_code: random.text(),
                country: countries[random.below(countries.len() as u64) as usize].into(),
            };
            match validate(&a) {
                Validation::Valid => check_standard(&a),
                Validation::Suggested(s) => {
                    check_standard(&s);
                    assert_eq!(validate(&s), Validation::Valid, "{a:?} -> {s:?}");
                }
                Validation::NotCovered => assert!(Country::parse(&a.country).is_none()),
                Validation::Invalid(problems) => assert!(!problems.is_empty()),
            }
        }
        let huge: String = (0..10_240).map(|_| random.char()).collect();
        let cyrillic = "Щ".repeat(5_120);
        for country in COVERED {
            for text in [&huge, &cyrillic] {
                let a = PostalAddress {
                    line1: text.clone(),
                    line2: text.clone(),
                    city: text.clone(),
                    state: text.clone(),
                    postal_code: text.clone(),
                    country: (*country).into(),
                };
                assert_eq!(problems(&a).len(), 5);
                assert!(matches!(
                    validate(&PostalAddress {
                        country: (*country).into(),
                        ..Default::default()
                    }),
                    Validation::Invalid(_)
                ));
            }
        }
    }

    #[test]
    fn standardised_addresses_stay_as_they_are() {
        // Near-valid input mutated in small ways: every suggestion must be
        // valid as it stands.
        let mut random = Random(42);
        let bases = [
            address("Աբովյան փողոց 1", "Երևան", "", "0001", "AM"),
            address("Váci utca 12.", "BUDAPEST", "", "1051", "HU"),
            address("Чүй проспекти, 227", "Бишкек", "", "720001", "KG"),
            address("bd. Ştefan cel Mare 134", "Chişinău", "", "2012", "MD"),
            address("ул. Тверская, 7", "Москва", "", "125009", "RU"),
            address("Амир Темур кўчаси, 4", "Тошкент", "", "100000", "UZ"),
        ];
        let noise = [
            " ", ",", ".", ";", "  ", "«", "’", "-", "\u{a0}", "Ё", "Ու", "ş", "õ", "`", "ʻ", "I.",
        ];
        for _ in 0..5_000 {
            let mut a = bases[random.below(bases.len() as u64) as usize].clone();
            for field in [&mut a.line1, &mut a.line2, &mut a.city, &mut a.state] {
                for _ in 0..random.below(4) {
                    let piece = noise[random.below(noise.len() as u64) as usize];
                    let at = random.below(field.chars().count() as u64 + 1) as usize;
                    let byte = field.char_indices().nth(at).map_or(field.len(), |(b, _)| b);
                    field.insert_str(byte, piece);
                }
            }
            if let Validation::Suggested(s) = validate(&a) {
                check_standard(&s);
                assert_eq!(validate(&s), Validation::Valid, "{a:?} -> {s:?}");
            }
        }
    }
}
