//! PayoutService: tax and payout profiles with sealed numbers, masked unless
//! the caller may see them, and the hold-payouts switch.

use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::crypto::Sealer;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{error, etag, idempotency};
use partnerhub_proto::profile::v1::{
    CreatePayoutProfileRequest, CreateTaxProfileRequest, GetPayoutProfileRequest,
    GetTaxProfileRequest, ListPayoutProfilesRequest, ListPayoutProfilesResponse, PayoutMethod,
    PayoutProfile, PayoutSettings, ReviewStatus, SetPayoutHoldRequest, TaxEntityType, TaxForm,
    TaxProfile, UpdatePayoutProfileRequest, UpdateTaxProfileRequest,
    payout_service_server::PayoutService,
};
use serde_json::json;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use super::{Profile, account_id, singleton_account};
use crate::domain::{self, bank};
use crate::error::{ProfileError, Result};
use crate::store::{
    self,
    payout::{self as po, PayoutRow, TaxRow},
};

fn review(status: &str) -> ReviewStatus {
    ReviewStatus::from_str_name(&format!("REVIEW_STATUS_{status}")).unwrap_or_default()
}

/// Whether the caller may see numbers unmasked: only with the permission
/// held company-wide (a location-scoped Incentives admin sees them masked).
fn may_see(caller: &Caller) -> bool {
    caller.has_company_wide(perm::PAYOUT_SENSITIVE_READ)
}

fn last4(value: &str) -> String {
    let n = value.chars().count();
    value.chars().skip(n.saturating_sub(4)).collect()
}

impl Profile {
    fn sealer(&self) -> Result<&Sealer> {
        self.sealer.as_deref().ok_or_else(|| {
            ProfileError::precondition(
                "ENCRYPTION_NOT_CONFIGURED",
                "bank and tax details need PARTNERHUB_PROFILE_ENCRYPTION_KEYS; this deployment has none",
            )
        })
    }

    fn tax_message(&self, account: Uuid, row: &TaxRow, unmasked: bool) -> TaxProfile {
        let opened = unmasked
            .then(|| {
                self.sealer().ok()?.open(
                    &row.key_id,
                    &row.tin_sealed,
                    format!("tax:{account}").as_bytes(),
                )
            })
            .flatten()
            .and_then(|b| String::from_utf8(b).ok());
        TaxProfile {
            name: format!("accounts/{account}/taxProfile"),
            entity_type: TaxEntityType::from_str_name(&row.entity_type)
                .unwrap_or_default()
                .into(),
            tax_form: TaxForm::from_str_name(&row.tax_form)
                .unwrap_or_default()
                .into(),
            country: row.country.clone(),
            masked: opened.is_none(),
            tax_identifier: opened
                .unwrap_or_else(|| bank::mask(&format!("00000{}", row.tin_last4))),
            status: review(&row.status).into(),
            update_time: Some(timestamp(row.updated_at)),
            etag: etag::of(row.version),
        }
    }

    fn payout_message(&self, account: Uuid, row: &PayoutRow, unmasked: bool) -> PayoutProfile {
        let opened = unmasked
            .then(|| {
                let sealed = row.number_sealed.as_ref()?;
                self.sealer().ok()?.open(
                    &row.key_id,
                    sealed,
                    format!("payout:{}", row.id).as_bytes(),
                )
            })
            .flatten()
            .and_then(|b| String::from_utf8(b).ok());
        let masked = opened.is_none() && !row.number_kind.is_empty();
        let number = opened.unwrap_or_else(|| {
            if row.number_kind.is_empty() {
                String::new()
            } else {
                bank::mask(&format!("0000{}", row.number_last4))
            }
        });
        PayoutProfile {
            name: format!("accounts/{account}/payoutProfiles/{}", row.id),
            method: PayoutMethod::from_str_name(&format!("PAYOUT_METHOD_{}", row.method))
                .unwrap_or_default()
                .into(),
            account_holder_name: row.holder_name.clone(),
            iban: if row.number_kind == "IBAN" {
                number.clone()
            } else {
                String::new()
            },
            account_number: if row.number_kind == "ACCOUNT" {
                number
            } else {
                String::new()
            },
            swift_bic: row.swift_bic.clone(),
            bank_country: row.bank_country.clone(),
            paypal_email: row.paypal_email.clone(),
            masked,
            status: review(&row.status).into(),
            create_time: Some(timestamp(row.created_at)),
            etag: etag::of(row.version),
        }
    }

    /// Checks a tax profile and seals its TIN.
    fn tax_row(&self, account: Uuid, t: &TaxProfile) -> Result<TaxRow> {
        let mut v = Violations::new();
        let entity = TaxEntityType::try_from(t.entity_type).unwrap_or_default();
        if entity == TaxEntityType::Unspecified {
            v.add("tax_profile.entity_type", "is required");
        }
        let form = TaxForm::try_from(t.tax_form).unwrap_or_default();
        let country = t.country.trim().to_uppercase();
        if !domain::is_country(&country) {
            v.add(
                "tax_profile.country",
                "must be an ISO 3166-1 alpha-2 country code",
            );
        }
        match form {
            TaxForm::Unspecified => v.add("tax_profile.tax_form", "is required"),
            TaxForm::W9 if country != "US" => v.add(
                "tax_profile.tax_form",
                "W-9 is for US persons; use W-8BEN or W-8BEN-E",
            ),
            TaxForm::W8ben | TaxForm::W8benE if country == "US" => {
                v.add("tax_profile.tax_form", "US persons file a W-9")
            }
            TaxForm::W8ben if entity != TaxEntityType::Individual => v.add(
                "tax_profile.tax_form",
                "W-8BEN is for individuals; entities file W-8BEN-E",
            ),
            TaxForm::W8benE if entity == TaxEntityType::Individual => {
                v.add("tax_profile.tax_form", "individuals file W-8BEN")
            }
            _ => {}
        }
        let tin: String = t
            .tax_identifier
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !(4..=30).contains(&tin.len())
            || !tin.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            v.add(
                "tax_profile.tax_identifier",
                "must be 4 to 30 letters, digits or dashes",
            );
        }
        v.finish()?;
        let (key_id, tin_sealed) = self
            .sealer()?
            .seal(tin.as_bytes(), format!("tax:{account}").as_bytes())
            .map_err(|e| ProfileError::Internal(anyhow::anyhow!(e)))?;
        Ok(TaxRow {
            entity_type: entity.as_str_name().to_owned(),
            tax_form: form.as_str_name().to_owned(),
            country,
            tin_last4: last4(&tin),
            tin_sealed,
            key_id,
            status: "SUBMITTED".into(),
            updated_at: chrono::Utc::now(),
            version: 1,
        })
    }

    /// Checks a payout profile against the legal country and seals its
    /// number.
    fn payout_row(&self, id: Uuid, p: &PayoutProfile, legal_country: &str) -> Result<PayoutRow> {
        let mut v = Violations::new();
        let mut row = PayoutRow {
            id,
            status: "SUBMITTED".into(),
            ..PayoutRow::default()
        };
        match PayoutMethod::try_from(p.method).unwrap_or_default() {
            PayoutMethod::BankAccount => {
                row.method = "BANK_ACCOUNT".into();
                let holder = p.account_holder_name.trim();
                match validate::text(holder, 1, 100) {
                    Err(e) => v.add("payout_profile.account_holder_name", e),
                    Ok(()) => v.check(
                        "payout_profile.account_holder_name",
                        validate::latin_text(holder),
                    ),
                }
                row.holder_name = holder.to_owned();
                let bank_country = if p.bank_country.trim().is_empty() {
                    legal_country.to_owned()
                } else {
                    p.bank_country.trim().to_uppercase()
                };
                if bank_country != legal_country {
                    v.add(
                        "payout_profile.bank_country",
                        format!("must be the legal country {legal_country}"),
                    );
                }
                row.bank_country = bank_country;
                let number = match (p.iban.trim().is_empty(), p.account_number.trim().is_empty()) {
                    (false, true) => {
                        match bank::iban(&p.iban) {
                            Ok((iban, country)) => {
                                if country != legal_country {
                                    v.add("payout_profile.iban", format!("must be an account in the legal country {legal_country}"));
                                }
                                row.number_kind = "IBAN".into();
                                Some(iban)
                            }
                            Err(e) => {
                                v.add("payout_profile.iban", e);
                                None
                            }
                        }
                    }
                    (true, false) => match bank::account_number(&p.account_number) {
                        Ok(n) => {
                            row.number_kind = "ACCOUNT".into();
                            Some(n)
                        }
                        Err(e) => {
                            v.add("payout_profile.account_number", e);
                            None
                        }
                    },
                    _ => {
                        v.add(
                            "payout_profile.iban",
                            "give either an IBAN or an account number",
                        );
                        None
                    }
                };
                match bank::swift_bic(&p.swift_bic) {
                    Ok(country) if country != legal_country => v.add(
                        "payout_profile.swift_bic",
                        format!("must be a bank in the legal country {legal_country}"),
                    ),
                    Ok(_) => row.swift_bic = p.swift_bic.trim().to_uppercase(),
                    Err(e) => v.add("payout_profile.swift_bic", e),
                }
                v.finish()?;
                if let Some(number) = number {
                    let (key_id, sealed) = self
                        .sealer()?
                        .seal(number.as_bytes(), format!("payout:{id}").as_bytes())
                        .map_err(|e| ProfileError::Internal(anyhow::anyhow!(e)))?;
                    row.number_last4 = last4(&number);
                    row.number_sealed = Some(sealed);
                    row.key_id = key_id;
                }
            }
            PayoutMethod::Paypal => {
                row.method = "PAYPAL".into();
                v.check(
                    "payout_profile.paypal_email",
                    validate::email(p.paypal_email.trim()),
                );
                row.paypal_email = p.paypal_email.trim().to_owned();
                row.bank_country = legal_country.to_owned();
                v.finish()?;
            }
            PayoutMethod::Unspecified => {
                return Err(ProfileError::field(
                    "payout_profile.method",
                    "must be BANK_ACCOUNT or PAYPAL",
                ));
            }
        }
        Ok(row)
    }

    async fn legal_country(&self, conn: &mut sqlx::PgConnection, account: Uuid) -> Result<String> {
        Ok(store::profile(conn, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?
            .address
            .0
            .country)
    }

    async fn create_tax(
        &self,
        caller: &Caller,
        req: CreateTaxProfileRequest,
    ) -> Result<TaxProfile> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PAYOUT_WRITE, &account.to_string())?;
        let row = self.tax_row(account, &req.tax_profile.unwrap_or_default())?;
        let mut tx = self.pool.begin().await?;
        self.legal_country(&mut tx, account).await?;
        if !po::put_tax(&mut tx, account, &row, true).await? {
            return Err(ProfileError::Status(error::refused(
                Code::AlreadyExists,
                "TAX_PROFILE_EXISTS",
                "the account has a tax profile; update it instead",
            )));
        }
        store::record_activity(&mut tx, account, &caller.resource_name(), "tax_profile.created", &format!("accounts/{account}/taxProfile"), None, Some(json!({ "tax_form": row.tax_form, "country": row.country, "tax_identifier": bank::mask(&format!("00000{}", row.tin_last4)) }))).await?;
        let stored = po::tax(&mut tx, account, false)
            .await?
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("tax profile vanished")))?;
        tx.commit().await?;
        Ok(self.tax_message(account, &stored, may_see(caller)))
    }

    async fn get_tax(&self, caller: &Caller, req: GetTaxProfileRequest) -> Result<TaxProfile> {
        let account = singleton_account("name", &req.name, "taxProfile")?;
        caller.require(perm::PAYOUT_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let row = po::tax(&mut conn, account, false)
            .await?
            .ok_or_else(|| ProfileError::not_found("taxProfile", req.name.clone()))?;
        Ok(self.tax_message(account, &row, may_see(caller)))
    }

    async fn update_tax(
        &self,
        caller: &Caller,
        req: UpdateTaxProfileRequest,
    ) -> Result<TaxProfile> {
        let new = req.tax_profile.unwrap_or_default();
        let account = singleton_account("tax_profile.name", &new.name, "taxProfile")?;
        caller.require(perm::PAYOUT_WRITE, &account.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let allowed = ["entity_type", "tax_form", "country", "tax_identifier"];
        if paths.is_empty() || paths.iter().any(|p| !allowed.contains(&p.as_str())) {
            return Err(ProfileError::field(
                "update_mask",
                format!("name fields among {}", allowed.join(", ")),
            ));
        }
        if !paths.iter().any(|p| p == "tax_identifier") {
            return Err(ProfileError::field(
                "update_mask",
                "resubmit the tax_identifier with any change: the profile is validated again",
            ));
        }
        let mut tx = self.pool.begin().await?;
        let current = po::tax(&mut tx, account, true)
            .await?
            .ok_or_else(|| ProfileError::not_found("taxProfile", new.name.clone()))?;
        etag::check(&new.etag, current.version, &new.name)?;
        let has = |f: &str| paths.iter().any(|p| p == f);
        let merged = TaxProfile {
            entity_type: if has("entity_type") {
                new.entity_type
            } else {
                TaxEntityType::from_str_name(&current.entity_type)
                    .unwrap_or_default()
                    .into()
            },
            tax_form: if has("tax_form") {
                new.tax_form
            } else {
                TaxForm::from_str_name(&current.tax_form)
                    .unwrap_or_default()
                    .into()
            },
            country: if has("country") {
                new.country.clone()
            } else {
                current.country.clone()
            },
            tax_identifier: new.tax_identifier.clone(),
            ..TaxProfile::default()
        };
        let row = self.tax_row(account, &merged)?;
        po::put_tax(&mut tx, account, &row, false).await?;
        store::record_activity(&mut tx, account, &caller.resource_name(), "tax_profile.updated", &new.name, Some(json!({ "tax_form": current.tax_form, "country": current.country, "tax_identifier": bank::mask(&format!("00000{}", current.tin_last4)) })), Some(json!({ "tax_form": row.tax_form, "country": row.country, "tax_identifier": bank::mask(&format!("00000{}", row.tin_last4)) }))).await?;
        let stored = po::tax(&mut tx, account, false)
            .await?
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("tax profile vanished")))?;
        tx.commit().await?;
        Ok(self.tax_message(account, &stored, may_see(caller)))
    }

    async fn create_payout(
        &self,
        caller: &Caller,
        req: CreatePayoutProfileRequest,
    ) -> Result<PayoutProfile> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PAYOUT_WRITE, &account.to_string())?;
        let scope = format!("accounts/{account}:CreatePayoutProfile");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) =
            idempotency::replay::<PayoutProfile>(&mut tx, &scope, &req.request_id, &req).await?
        {
            // Stored masked: a replay never returns the numbers.
            return Ok(stored);
        }
        let country = self.legal_country(&mut tx, account).await?;
        if po::tax(&mut tx, account, false).await?.is_none() {
            return Err(ProfileError::precondition(
                "TAX_PROFILE_REQUIRED",
                "submit the tax profile before any payout profile",
            ));
        }
        let row = self.payout_row(
            Uuid::now_v7(),
            &req.payout_profile.clone().unwrap_or_default(),
            &country,
        )?;
        po::put_payout(&mut tx, account, &row).await?;
        let stored = po::payout(&mut tx, account, row.id, false)
            .await?
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("payout profile vanished")))?;
        let masked = self.payout_message(account, &stored, false);
        store::record_activity(&mut tx, account, &caller.resource_name(), "payout_profile.created", &masked.name, None, Some(json!({ "method": row.method, "iban": masked.iban, "account_number": masked.account_number, "bank_country": row.bank_country }))).await?;
        idempotency::remember(&mut tx, &scope, &req.request_id, &masked).await?;
        tx.commit().await?;
        Ok(self.payout_message(account, &stored, may_see(caller)))
    }

    async fn get_payout(
        &self,
        caller: &Caller,
        req: GetPayoutProfileRequest,
    ) -> Result<PayoutProfile> {
        let (account, id) = payout_name("name", &req.name)?;
        caller.require(perm::PAYOUT_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let row = po::payout(&mut conn, account, id, false)
            .await?
            .ok_or_else(|| ProfileError::not_found("payoutProfile", req.name.clone()))?;
        Ok(self.payout_message(account, &row, may_see(caller)))
    }

    async fn list_payouts(
        &self,
        caller: &Caller,
        req: ListPayoutProfilesRequest,
    ) -> Result<ListPayoutProfilesResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::PAYOUT_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let rows = po::payouts(&mut conn, account).await?;
        let see = may_see(caller);
        Ok(ListPayoutProfilesResponse {
            payout_profiles: rows
                .iter()
                .map(|r| self.payout_message(account, r, see))
                .collect(),
        })
    }

    async fn update_payout(
        &self,
        caller: &Caller,
        req: UpdatePayoutProfileRequest,
    ) -> Result<PayoutProfile> {
        let new = req.payout_profile.unwrap_or_default();
        let (account, id) = payout_name("payout_profile.name", &new.name)?;
        caller.require(perm::PAYOUT_WRITE, &account.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let allowed = [
            "account_holder_name",
            "iban",
            "account_number",
            "swift_bic",
            "paypal_email",
        ];
        if paths.is_empty() || paths.iter().any(|p| !allowed.contains(&p.as_str())) {
            return Err(ProfileError::field(
                "update_mask",
                format!("name fields among {}", allowed.join(", ")),
            ));
        }
        let has = |f: &str| paths.iter().any(|p| p == f);
        let mut tx = self.pool.begin().await?;
        let country = self.legal_country(&mut tx, account).await?;
        let current = po::payout(&mut tx, account, id, true)
            .await?
            .ok_or_else(|| ProfileError::not_found("payoutProfile", new.name.clone()))?;
        etag::check(&new.etag, current.version, &new.name)?;
        // A new number replaces the old one; otherwise the sealed one stays.
        let number_changed = has("iban") || has("account_number");
        let old = self.payout_message(account, &current, true);
        let merged = PayoutProfile {
            method: PayoutMethod::from_str_name(&format!("PAYOUT_METHOD_{}", current.method))
                .unwrap_or_default()
                .into(),
            account_holder_name: if has("account_holder_name") {
                new.account_holder_name.clone()
            } else {
                current.holder_name.clone()
            },
            iban: if number_changed {
                new.iban.clone()
            } else {
                old.iban.clone()
            },
            account_number: if number_changed {
                new.account_number.clone()
            } else {
                old.account_number.clone()
            },
            swift_bic: if has("swift_bic") {
                new.swift_bic.clone()
            } else {
                current.swift_bic.clone()
            },
            bank_country: current.bank_country.clone(),
            paypal_email: if has("paypal_email") {
                new.paypal_email.clone()
            } else {
                current.paypal_email.clone()
            },
            ..PayoutProfile::default()
        };
        if !number_changed && current.method == "BANK_ACCOUNT" && old.masked {
            return Err(ProfileError::precondition(
                "ENCRYPTION_KEY_UNAVAILABLE",
                "the stored bank number cannot be read with the configured keys; resubmit it",
            ));
        }
        let row = self.payout_row(id, &merged, &country)?;
        po::put_payout(&mut tx, account, &row).await?;
        let stored = po::payout(&mut tx, account, id, false)
            .await?
            .ok_or_else(|| ProfileError::Internal(anyhow::anyhow!("payout profile vanished")))?;
        let masked_before = self.payout_message(account, &current, false);
        let masked_after = self.payout_message(account, &stored, false);
        store::record_activity(&mut tx, account, &caller.resource_name(), "payout_profile.updated", &new.name, Some(json!({ "iban": masked_before.iban, "account_number": masked_before.account_number, "holder": masked_before.account_holder_name })), Some(json!({ "iban": masked_after.iban, "account_number": masked_after.account_number, "holder": masked_after.account_holder_name }))).await?;
        tx.commit().await?;
        Ok(self.payout_message(account, &stored, may_see(caller)))
    }

    async fn set_hold(&self, caller: &Caller, req: SetPayoutHoldRequest) -> Result<PayoutSettings> {
        let account = singleton_account("name", &req.name, "payoutSettings")?;
        caller.require(perm::PAYOUT_WRITE, &account.to_string())?;
        let mut tx = self.pool.begin().await?;
        self.legal_country(&mut tx, account).await?;
        po::set_hold(&mut tx, account, req.hold_payouts).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "payouts.hold_changed",
            &req.name,
            None,
            Some(json!({ "hold_payouts": req.hold_payouts })),
        )
        .await?;
        tx.commit().await?;
        Ok(PayoutSettings {
            name: req.name.clone(),
            hold_payouts: req.hold_payouts,
        })
    }
}

/// Parses `accounts/{a}/payoutProfiles/{p}`.
fn payout_name(field: &str, name: &str) -> Result<(Uuid, Uuid)> {
    let bad = || {
        ProfileError::field(
            field,
            "must be `accounts/{account}/payoutProfiles/{payout_profile}`",
        )
    };
    let rest = name.strip_prefix("accounts/").ok_or_else(bad)?;
    let (account, id) = rest.split_once("/payoutProfiles/").ok_or_else(bad)?;
    Ok((
        account.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

#[tonic::async_trait]
impl PayoutService for Profile {
    async fn create_tax_profile(
        &self,
        request: Request<CreateTaxProfileRequest>,
    ) -> Result<Response<TaxProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.create_tax(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_tax_profile(
        &self,
        request: Request<GetTaxProfileRequest>,
    ) -> Result<Response<TaxProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_tax(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_tax_profile(
        &self,
        request: Request<UpdateTaxProfileRequest>,
    ) -> Result<Response<TaxProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_tax(&caller, request.into_inner()).await?,
        ))
    }

    async fn create_payout_profile(
        &self,
        request: Request<CreatePayoutProfileRequest>,
    ) -> Result<Response<PayoutProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.create_payout(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_payout_profile(
        &self,
        request: Request<GetPayoutProfileRequest>,
    ) -> Result<Response<PayoutProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_payout(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_payout_profiles(
        &self,
        request: Request<ListPayoutProfilesRequest>,
    ) -> Result<Response<ListPayoutProfilesResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.list_payouts(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_payout_profile(
        &self,
        request: Request<UpdatePayoutProfileRequest>,
    ) -> Result<Response<PayoutProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_payout(&caller, request.into_inner()).await?,
        ))
    }

    async fn set_payout_hold(
        &self,
        request: Request<SetPayoutHoldRequest>,
    ) -> Result<Response<PayoutSettings>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.set_hold(&caller, request.into_inner()).await?,
        ))
    }
}
