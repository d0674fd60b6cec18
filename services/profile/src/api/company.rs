//! CompanyProfileService: company and billing profiles, identifiers and
//! publishers.

use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{error, etag};
use partnerhub_proto::profile::v1::{
    AddPublisherRequest, AnnualRevenue, BillingProfile, CompanyProfile, CompanySize, CustomerCount,
    GetBillingProfileRequest, GetCompanyProfileRequest, GetIdentifiersRequest, Identifiers,
    LocationPartnerId, PartnershipType, Publisher, UpdateBillingProfileRequest,
    UpdateCompanyProfileRequest, WorkKind, company_profile_service_server::CompanyProfileService,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::types::Json;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use super::{Profile, account_id, location_name, partner_id_text, singleton_account};
use crate::domain::{self, AddressDoc, ContactDoc};
use crate::error::{ProfileError, Result};
use crate::store::{
    self,
    company::{self as co, BillingRow},
};

/// The company profile as stored: enum names, so values survive renumbering.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CompanyDoc {
    #[serde(default)]
    partnership_types: Vec<String>,
    #[serde(default)]
    customer_count: String,
    #[serde(default)]
    annual_revenue: String,
    #[serde(default)]
    company_size: String,
    #[serde(default)]
    work_kinds: Vec<String>,
    #[serde(default)]
    operating_regions: Vec<String>,
    #[serde(default)]
    expansion_regions: Vec<String>,
}

const COMPANY_FIELDS: &[&str] = &[
    "partnership_types",
    "customer_count",
    "annual_revenue",
    "company_size",
    "work_kinds",
    "operating_regions",
    "expansion_regions",
];

fn company_message(account: Uuid, doc: &CompanyDoc, version: i64) -> CompanyProfile {
    CompanyProfile {
        name: format!("accounts/{account}/companyProfile"),
        partnership_types: doc
            .partnership_types
            .iter()
            .filter_map(|t| PartnershipType::from_str_name(t))
            .map(Into::into)
            .collect(),
        customer_count: CustomerCount::from_str_name(&doc.customer_count)
            .unwrap_or_default()
            .into(),
        annual_revenue: AnnualRevenue::from_str_name(&doc.annual_revenue)
            .unwrap_or_default()
            .into(),
        company_size: CompanySize::from_str_name(&doc.company_size)
            .unwrap_or_default()
            .into(),
        work_kinds: doc
            .work_kinds
            .iter()
            .filter_map(|t| WorkKind::from_str_name(t))
            .map(Into::into)
            .collect(),
        operating_regions: doc.operating_regions.clone(),
        expansion_regions: doc.expansion_regions.clone(),
        etag: etag::of(version),
    }
}

/// Checks a list of enum values: known, set, each once.
fn enum_names<E: Copy + PartialEq>(
    field: &str,
    values: &[i32],
    parse: impl Fn(i32) -> Option<E>,
    unset: E,
    name: impl Fn(E) -> &'static str,
    v: &mut Violations,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match parse(*value) {
            Some(e) if e != unset => {
                let n = name(e).to_owned();
                if out.contains(&n) {
                    v.add(format!("{field}[{i}]"), "is listed twice");
                } else {
                    out.push(n);
                }
            }
            _ => v.add(format!("{field}[{i}]"), "is not a known value"),
        }
    }
    out
}

fn regions(field: &str, values: &[String], v: &mut Violations) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, c) in values.iter().enumerate() {
        let c = c.trim().to_uppercase();
        if !domain::is_country(&c) {
            v.add(
                format!("{field}[{i}]"),
                "must be an ISO 3166-1 alpha-2 country code",
            );
        } else if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn billing_message(
    account: Uuid,
    legal_name: &str,
    legal_address: &AddressDoc,
    b: &BillingRow,
) -> BillingProfile {
    BillingProfile {
        name: format!("accounts/{account}/billingProfile"),
        bill_to_name: legal_name.to_owned(),
        address: Some(
            b.address
                .as_ref()
                .map(|a| &a.0)
                .unwrap_or(legal_address)
                .into(),
        ),
        contact: b.contact.as_ref().map(|c| (&c.0).into()),
        po_number: b.po_number.clone(),
        tax_id: b.tax_id.clone(),
        vat_id: b.vat_id.clone(),
        currency: b.currency.clone(),
        etag: etag::of(b.version),
    }
}

/// A publisher id: 3–50 lower-case letters, digits and hyphens.
fn check_publisher_id(id: &str) -> Result<(), String> {
    let ok = (3..=50).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be 3 to 50 lower-case letters, digits and inner hyphens".into())
    }
}

impl Profile {
    async fn get_company(
        &self,
        caller: &Caller,
        req: GetCompanyProfileRequest,
    ) -> Result<CompanyProfile> {
        let account = singleton_account("name", &req.name, "companyProfile")?;
        caller.require(perm::COMPANY_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        self.enrolled(&mut conn, account).await?;
        let (doc, version) = co::company(&mut conn, account, false)
            .await?
            .unwrap_or((json!({}), 0));
        let doc: CompanyDoc = serde_json::from_value(doc).unwrap_or_default();
        Ok(company_message(account, &doc, version))
    }

    async fn update_company(
        &self,
        caller: &Caller,
        req: UpdateCompanyProfileRequest,
    ) -> Result<CompanyProfile> {
        let new = req.company_profile.unwrap_or_default();
        let account = singleton_account("company_profile.name", &new.name, "companyProfile")?;
        caller.require(perm::COMPANY_WRITE, &account.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("name the fields to change: {}", COMPANY_FIELDS.join(", ")),
            );
        }
        for p in &paths {
            if !COMPANY_FIELDS.contains(&p.as_str()) {
                v.add("update_mask", format!("{p} cannot be changed"));
            }
        }
        let has = |f: &str| paths.iter().any(|p| p == f);
        // Only the fields named in the mask are read, so only they are checked.
        let unmasked = CompanyProfile::default();
        let new = CompanyProfile {
            partnership_types: if has("partnership_types") {
                new.partnership_types
            } else {
                unmasked.partnership_types
            },
            work_kinds: if has("work_kinds") {
                new.work_kinds
            } else {
                unmasked.work_kinds
            },
            customer_count: if has("customer_count") {
                new.customer_count
            } else {
                unmasked.customer_count
            },
            annual_revenue: if has("annual_revenue") {
                new.annual_revenue
            } else {
                unmasked.annual_revenue
            },
            company_size: if has("company_size") {
                new.company_size
            } else {
                unmasked.company_size
            },
            operating_regions: if has("operating_regions") {
                new.operating_regions
            } else {
                unmasked.operating_regions
            },
            expansion_regions: if has("expansion_regions") {
                new.expansion_regions
            } else {
                unmasked.expansion_regions
            },
            ..new
        };
        let types = enum_names(
            "company_profile.partnership_types",
            &new.partnership_types,
            |x| PartnershipType::try_from(x).ok(),
            PartnershipType::Unspecified,
            |e| e.as_str_name(),
            &mut v,
        );
        let kinds = enum_names(
            "company_profile.work_kinds",
            &new.work_kinds,
            |x| WorkKind::try_from(x).ok(),
            WorkKind::Unspecified,
            |e| e.as_str_name(),
            &mut v,
        );
        let single = |field: &str, name: Option<&'static str>, v: &mut Violations| -> String {
            match name {
                Some(n) => n.to_owned(),
                None => {
                    v.add(format!("company_profile.{field}"), "is not a known value");
                    String::new()
                }
            }
        };
        let customers = single(
            "customer_count",
            CustomerCount::try_from(new.customer_count)
                .ok()
                .map(|e| e.as_str_name()),
            &mut v,
        );
        let revenue = single(
            "annual_revenue",
            AnnualRevenue::try_from(new.annual_revenue)
                .ok()
                .map(|e| e.as_str_name()),
            &mut v,
        );
        let size = single(
            "company_size",
            CompanySize::try_from(new.company_size)
                .ok()
                .map(|e| e.as_str_name()),
            &mut v,
        );
        let operating = regions(
            "company_profile.operating_regions",
            &new.operating_regions,
            &mut v,
        );
        let expansion = regions(
            "company_profile.expansion_regions",
            &new.expansion_regions,
            &mut v,
        );
        v.finish()?;
        let mut tx = self.pool.begin().await?;
        // Lock the profile row: the company row may not exist yet.
        self.lock_enrolled(&mut tx, account).await?;
        let (old, version) = co::company(&mut tx, account, true)
            .await?
            .unwrap_or((json!({}), 0));
        etag::check(&new.etag, version, &new.name)?;
        let mut doc: CompanyDoc = serde_json::from_value(old.clone()).unwrap_or_default();
        if has("partnership_types") {
            doc.partnership_types = types;
        }
        if has("work_kinds") {
            doc.work_kinds = kinds;
        }
        if has("customer_count") {
            doc.customer_count = customers;
        }
        if has("annual_revenue") {
            doc.annual_revenue = revenue;
        }
        if has("company_size") {
            doc.company_size = size;
        }
        if has("operating_regions") {
            doc.operating_regions = operating;
        }
        if has("expansion_regions") {
            doc.expansion_regions = expansion;
        }
        let value = serde_json::to_value(&doc).map_err(|e| ProfileError::Internal(e.into()))?;
        let version = co::set_company(&mut tx, account, &value).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "company_profile.updated",
            &new.name,
            Some(old),
            Some(value),
        )
        .await?;
        tx.commit().await?;
        Ok(company_message(account, &doc, version))
    }

    async fn get_billing(
        &self,
        caller: &Caller,
        req: GetBillingProfileRequest,
    ) -> Result<BillingProfile> {
        let account = singleton_account("name", &req.name, "billingProfile")?;
        caller.require(perm::BILLING_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let profile = store::profile(&mut conn, account, false)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        let billing = co::billing(&mut conn, account, false).await?;
        Ok(billing_message(
            account,
            &profile.legal_name,
            &profile.address.0,
            &billing,
        ))
    }

    async fn update_billing(
        &self,
        caller: &Caller,
        req: UpdateBillingProfileRequest,
    ) -> Result<BillingProfile> {
        let new = req.billing_profile.unwrap_or_default();
        let account = singleton_account("billing_profile.name", &new.name, "billingProfile")?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let has = |f: &str| paths.iter().any(|p| p == f);
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                "name the fields to change: address, contact, po_number, tax_id, vat_id, currency",
            );
        }
        for p in &paths {
            match p.as_str() {
                "address" => {
                    domain::check_address("billing_profile.address", new.address.as_ref(), &mut v)
                }
                "contact" => {
                    domain::check_contact("billing_profile.contact", new.contact.as_ref(), &mut v)
                }
                "po_number" => v.check(
                    "billing_profile.po_number",
                    validate::text(new.po_number.trim(), 0, 50),
                ),
                "tax_id" => v.check(
                    "billing_profile.tax_id",
                    validate::text(new.tax_id.trim(), 0, 30),
                ),
                "vat_id" => v.check(
                    "billing_profile.vat_id",
                    validate::text(new.vat_id.trim(), 0, 30),
                ),
                "currency" => {
                    if iso_currency::Currency::from_code(new.currency.trim()).is_none() {
                        v.add(
                            "billing_profile.currency",
                            "must be an ISO 4217 currency code such as EUR",
                        );
                    }
                }
                "bill_to_name" => v.add(
                    "update_mask",
                    "bill_to_name is the legal name and cannot be changed here",
                ),
                other => v.add("update_mask", format!("{other} cannot be changed")),
            }
        }
        v.finish()?;
        // Tax and VAT ids are their own permission (Global admin, Billing
        // admin, Admin agent); the rest of the profile is billing.write.
        if has("tax_id") || has("vat_id") {
            caller.require(perm::TAX_IDS_WRITE, &account.to_string())?;
        }
        if paths
            .iter()
            .any(|p| !matches!(p.as_str(), "tax_id" | "vat_id"))
        {
            caller.require(perm::BILLING_WRITE, &account.to_string())?;
        }
        let mut tx = self.pool.begin().await?;
        let profile = store::profile(&mut tx, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        let mut billing = co::billing(&mut tx, account, true).await?;
        etag::check(&new.etag, billing.version, &new.name)?;
        let old = billing_message(account, &profile.legal_name, &profile.address.0, &billing);
        if has("currency") {
            let currency = new.currency.trim().to_uppercase();
            if !billing.currency.is_empty() && billing.currency != currency {
                return Err(ProfileError::precondition(
                    "CURRENCY_FIXED",
                    format!(
                        "the billing currency is {} and cannot change once set",
                        billing.currency
                    ),
                ));
            }
            billing.currency = currency;
        }
        if has("address") {
            billing.address = new.address.as_ref().map(|a| Json(AddressDoc::from(a)));
        }
        if has("contact") {
            billing.contact = new.contact.as_ref().map(|c| Json(ContactDoc::from(c)));
        }
        if has("po_number") {
            billing.po_number = new.po_number.trim().to_owned();
        }
        if has("tax_id") {
            billing.tax_id = new.tax_id.trim().to_owned();
        }
        if has("vat_id") {
            billing.vat_id = new.vat_id.trim().to_owned();
        }
        billing.version = co::set_billing(&mut tx, account, &billing).await?;
        let updated = billing_message(account, &profile.legal_name, &profile.address.0, &billing);
        let summary = |b: &BillingProfile| json!({ "po_number": b.po_number, "tax_id": b.tax_id, "vat_id": b.vat_id, "currency": b.currency, "country": b.address.as_ref().map(|a| a.country.clone()) });
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "billing_profile.updated",
            &new.name,
            Some(summary(&old)),
            Some(summary(&updated)),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn identifiers(
        &self,
        caller: &Caller,
        req: GetIdentifiersRequest,
    ) -> Result<Identifiers> {
        let account = singleton_account("name", &req.name, "identifiers")?;
        caller.require(perm::COMPANY_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let profile = store::profile(&mut conn, account, false)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        let locations = store::locations(&mut conn, account, None, None, 1000).await?;
        let publishers = co::publishers(&mut conn, account).await?;
        let seller = co::seller_id(&mut conn, account, false).await?;
        Ok(Identifiers {
            name: req.name.clone(),
            global_partner_id: partner_id_text(profile.global_partner_id),
            location_partner_ids: locations
                .iter()
                .map(|l| LocationPartnerId {
                    location: format!("accounts/{account}/locations/{}", l.id),
                    partner_id: partner_id_text(l.partner_id),
                })
                .collect(),
            publishers: publishers
                .iter()
                .map(|p| publisher_message(account, p))
                .collect(),
            seller_id: seller.map(|s| s.to_string()).unwrap_or_default(),
        })
    }

    async fn add_publisher(&self, caller: &Caller, req: AddPublisherRequest) -> Result<Publisher> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::COMPANY_WRITE, &account.to_string())?;
        let p = req.publisher.unwrap_or_default();
        let mut v = Violations::new();
        v.check(
            "publisher.publisher_id",
            check_publisher_id(&p.publisher_id),
        );
        v.check(
            "publisher.display_name",
            validate::text(p.display_name.trim(), 1, 100),
        );
        let location = location_name("publisher.location", &p.location).map_err(|e| {
            if let ProfileError::Invalid(f) = e {
                f.into_iter().for_each(|f| v.add(f.field, f.description));
            }
        });
        domain::check_contact("publisher.contact", p.contact.as_ref(), &mut v);
        v.finish()?;
        let Ok((location_account, location)) = location else {
            return Err(ProfileError::field("publisher.location", "is required"));
        };
        let mut tx = self.pool.begin().await?;
        self.enrolled(&mut tx, account).await?;
        if location_account != account
            || store::location(&mut tx, account, location).await?.is_none()
        {
            return Err(ProfileError::field(
                "publisher.location",
                "must be a location of this account",
            ));
        }
        let contact = ContactDoc::from(&p.contact.clone().unwrap_or_default());
        let row = co::insert_publisher(
            &mut tx,
            account,
            &p.publisher_id,
            p.display_name.trim(),
            location,
            &contact,
        )
        .await?
        .ok_or_else(|| {
            ProfileError::Status(error::refused(
                Code::AlreadyExists,
                "PUBLISHER_ID_TAKEN",
                "this publisher id is taken or was used before; publisher ids are never reused",
            ))
        })?;
        co::seller_id(&mut tx, account, true).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "publisher.added",
            &req.parent,
            None,
            Some(json!({ "publisher_id": row.publisher_id, "display_name": row.display_name })),
        )
        .await?;
        tx.commit().await?;
        Ok(publisher_message(account, &row))
    }
}

fn publisher_message(account: Uuid, p: &co::PublisherRow) -> Publisher {
    Publisher {
        publisher_id: p.publisher_id.clone(),
        display_name: p.display_name.clone(),
        location: format!("accounts/{account}/locations/{}", p.location_id),
        contact: Some((&p.contact.0).into()),
        create_time: Some(timestamp(p.created_at)),
    }
}

#[tonic::async_trait]
impl CompanyProfileService for Profile {
    async fn get_company_profile(
        &self,
        request: Request<GetCompanyProfileRequest>,
    ) -> Result<Response<CompanyProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_company(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_company_profile(
        &self,
        request: Request<UpdateCompanyProfileRequest>,
    ) -> Result<Response<CompanyProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_company(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_billing_profile(
        &self,
        request: Request<GetBillingProfileRequest>,
    ) -> Result<Response<BillingProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_billing(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_billing_profile(
        &self,
        request: Request<UpdateBillingProfileRequest>,
    ) -> Result<Response<BillingProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_billing(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_identifiers(
        &self,
        request: Request<GetIdentifiersRequest>,
    ) -> Result<Response<Identifiers>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.identifiers(&caller, request.into_inner()).await?,
        ))
    }

    async fn add_publisher(
        &self,
        request: Request<AddPublisherRequest>,
    ) -> Result<Response<Publisher>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::add_publisher(self, &caller, request.into_inner()).await?,
        ))
    }
}
