//! Bulk user creation from CSV: `email,given_name,family_name,roles` with
//! roles separated by `;`. Every row is checked and every problem reported
//! as `rows[N].column` (N counts data rows from 1), so a file is fixed in
//! one round trip.

use std::collections::BTreeMap;

use partnerhub_platform::auth::roles;
use partnerhub_platform::validate::{self, Violations};

/// Most rows in one import.
pub const MAX_ROWS: usize = 100;
/// Largest CSV text accepted (100 rows of long lines).
pub const MAX_BYTES: usize = 128 * 1024;
const COLUMNS: [&str; 4] = ["email", "given_name", "family_name", "roles"];

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Email.
    pub email: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Role ids.
    pub roles: Vec<String>,
}

/// Parses and checks the whole file: every row, or every violation.
pub fn parse(text: &str) -> Result<Vec<Row>, Violations> {
    let mut v = Violations::new();
    if text.len() > MAX_BYTES {
        v.add("csv", format!("must be at most {MAX_BYTES} bytes"));
        return Err(v);
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_lowercase).collect(),
        Err(e) => {
            v.add("csv", format!("cannot read the header row: {e}"));
            return Err(v);
        }
    };
    if header != COLUMNS {
        v.add(
            "csv",
            format!("the header row must be `{}`", COLUMNS.join(",")),
        );
        return Err(v);
    }
    let mut rows = Vec::new();
    let mut first_row_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let n = i + 1;
        if n > MAX_ROWS {
            v.add("csv", format!("must have at most {MAX_ROWS} rows"));
            return Err(v);
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                v.add(format!("rows[{n}]"), format!("is not valid CSV: {e}"));
                continue;
            }
        };
        if record.len() != COLUMNS.len() {
            v.add(
                format!("rows[{n}]"),
                format!("must have {} columns (has {})", COLUMNS.len(), record.len()),
            );
            continue;
        }
        let field = |k: usize| record.get(k).unwrap_or_default().to_owned();
        let row = Row {
            email: field(0),
            given_name: field(1),
            family_name: field(2),
            roles: field(3)
                .split(';')
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect(),
        };
        v.check(&format!("rows[{n}].email"), validate::email(&row.email));
        v.check(
            &format!("rows[{n}].given_name"),
            validate::text(&row.given_name, 1, 50),
        );
        v.check(
            &format!("rows[{n}].family_name"),
            validate::text(&row.family_name, 1, 50),
        );
        if row.roles.is_empty() {
            v.add(format!("rows[{n}].roles"), "at least one role is required");
        }
        let mut seen = std::collections::BTreeSet::new();
        for role in &row.roles {
            if roles::find(role).is_none() {
                v.add(
                    format!("rows[{n}].roles"),
                    format!("unknown role {role:?}; see ListRoles"),
                );
            } else if !seen.insert(role.as_str()) {
                v.add(
                    format!("rows[{n}].roles"),
                    format!("{role} is listed twice"),
                );
            }
        }
        let key = super::normalize_email(&row.email);
        if let Some(first) = first_row_of.get(&key) {
            v.add(format!("rows[{n}].email"), format!("repeats row {first}"));
        } else {
            first_row_of.insert(key, n);
        }
        rows.push(row);
    }
    if rows.is_empty() && v.is_empty() {
        v.add("csv", "has no rows");
    }
    if v.is_empty() { Ok(rows) } else { Err(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_parses() {
        let rows = parse("email,given_name,family_name,roles\nada@contoso.com,Ada,Lovelace,billing_admin; report_viewer\n")
            .map_err(|v| v.into_vec());
        assert_eq!(
            rows,
            Ok(vec![Row {
                email: "ada@contoso.com".into(),
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                roles: vec!["billing_admin".into(), "report_viewer".into()],
            }])
        );
    }

    #[test]
    fn every_bad_cell_is_reported_by_row_and_column() {
        let text = "email,given_name,family_name,roles\n\
                    nope,Ada,Lovelace,billing_admin\n\
                    bob@contoso.com,,Smith,wizard\n\
                    BOB@contoso.com,Bob,Smith,report_viewer\n\
                    short,row\n";
        let fields: Vec<_> = parse(text)
            .err()
            .map(|v| v.into_vec().into_iter().map(|f| f.field).collect())
            .unwrap_or_default();
        assert_eq!(
            fields,
            [
                "rows[1].email",
                "rows[2].given_name",
                "rows[2].roles",
                "rows[3].email",
                "rows[4]"
            ]
        );
    }

    #[test]
    fn headers_and_sizes_are_enforced() {
        assert!(parse("mail,first,last,roles\n").is_err());
        assert!(parse("email,given_name,family_name,roles\n").is_err());
        let mut big = String::from("email,given_name,family_name,roles\n");
        for i in 0..101 {
            big.push_str(&format!("u{i}@contoso.com,A,B,report_viewer\n"));
        }
        assert!(parse(&big).is_err());
    }
}
