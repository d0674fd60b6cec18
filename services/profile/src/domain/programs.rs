//! Programs: their agreements, who must accept them, and the tab each shows
//! under.

use partnerhub_proto::profile::v1::{ProgramKind, ProgramTab};

/// The agreement (id, current version) a program requires.
pub fn agreement(program: ProgramKind) -> (&'static str, &'static str) {
    match program {
        ProgramKind::CspIndirectReseller
        | ProgramKind::CspDirectBill
        | ProgramKind::CspIndirectProvider => ("microsoft_partner_agreement", "2024-01"),
        ProgramKind::CommercialMarketplace => ("publisher_agreement", "2024-01"),
        ProgramKind::OfficeStore => ("office_store_agreement", "2023-06"),
        ProgramKind::WindowsXbox | ProgramKind::EdgeExtensions => {
            ("app_developer_agreement", "2023-06")
        }
        ProgramKind::Partner
        | ProgramKind::Referrals
        | ProgramKind::Incentives
        | ProgramKind::Unspecified => ("partner_program_agreement", "2024-01"),
    }
}

/// The tab a program shows under.
pub fn tab(program: ProgramKind) -> ProgramTab {
    match program {
        ProgramKind::CspIndirectReseller
        | ProgramKind::CspDirectBill
        | ProgramKind::CspIndirectProvider => ProgramTab::Reseller,
        ProgramKind::CommercialMarketplace
        | ProgramKind::WindowsXbox
        | ProgramKind::OfficeStore
        | ProgramKind::EdgeExtensions => ProgramTab::Developer,
        ProgramKind::Partner | ProgramKind::Referrals | ProgramKind::Incentives => {
            ProgramTab::Partner
        }
        ProgramKind::Unspecified => ProgramTab::Unspecified,
    }
}

/// Whether a program needs a location in the legal country (CSP).
pub fn needs_location_in_legal_country(program: ProgramKind) -> bool {
    tab(program) == ProgramTab::Reseller
}

/// The status a program moves to when verification decides: AUTHORIZED
/// makes PENDING programs ACTIVE when their agreement is accepted, else
/// QUALIFIED; REJECTED declines PENDING and QUALIFIED ones.
pub fn after_verification(
    current: &str,
    authorized: bool,
    agreement_accepted: bool,
) -> Option<&'static str> {
    match (current, authorized) {
        ("PENDING", true) if agreement_accepted => Some("ACTIVE"),
        ("PENDING", true) => Some("QUALIFIED"),
        ("PENDING" | "QUALIFIED", false) => Some("DECLINED"),
        _ => None,
    }
}

/// Whether accepting the program's agreement takes a Global admin (the
/// partner agreement of CSP).
pub fn needs_global_admin(program: ProgramKind) -> bool {
    agreement(program).0 == "microsoft_partner_agreement"
}

/// Whether the legal name freezes once verification authorized the account
/// (direct-bill partners and indirect providers).
pub fn freezes_legal_name(program: &str) -> bool {
    program == ProgramKind::CspDirectBill.as_str_name()
        || program == ProgramKind::CspIndirectProvider.as_str_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_needs_the_partner_agreement_from_a_global_admin() {
        assert!(needs_global_admin(ProgramKind::CspDirectBill));
        assert!(!needs_global_admin(ProgramKind::Partner));
        assert!(freezes_legal_name("PROGRAM_KIND_CSP_INDIRECT_PROVIDER"));
        assert!(!freezes_legal_name("PROGRAM_KIND_CSP_INDIRECT_RESELLER"));
        assert!(needs_location_in_legal_country(
            ProgramKind::CspIndirectReseller
        ));
        assert_eq!(tab(ProgramKind::OfficeStore), ProgramTab::Developer);
    }

    #[test]
    fn verification_moves_programs() {
        assert_eq!(after_verification("PENDING", true, true), Some("ACTIVE"));
        assert_eq!(
            after_verification("PENDING", true, false),
            Some("QUALIFIED")
        );
        assert_eq!(
            after_verification("QUALIFIED", false, true),
            Some("DECLINED")
        );
        assert_eq!(after_verification("ACTIVE", false, true), None);
        assert_eq!(after_verification("SUSPENDED", true, true), None);
    }
}
