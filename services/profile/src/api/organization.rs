//! TenantService and SupportProfileService.

use partnerhub_platform::auth::{Caller, caller, denied, roles::perm};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_platform::{error, etag};
use partnerhub_proto::profile::v1::{
    AssociateTenantRequest, GetSupportProfileRequest, ListTenantsRequest, ListTenantsResponse,
    RemoveTenantRequest, RemoveTenantResponse, SupportProfile, Tenant, TenantKind,
    UpdateSupportProfileRequest, support_profile_service_server::SupportProfileService,
    tenant_service_server::TenantService,
};
use serde_json::json;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use super::{Profile, account_id, singleton_account};
use crate::error::{ProfileError, Result};
use crate::store::{
    self,
    organization::{self as org, TenantRow},
};

fn tenant_message(row: &TenantRow) -> Tenant {
    Tenant {
        name: format!("accounts/{}/tenants/{}", row.account_id, row.tenant_id),
        tenant_id: row.tenant_id.to_string(),
        domain: row.domain.clone(),
        kind: if row.kind == "DEVELOPER" {
            TenantKind::Developer
        } else {
            TenantKind::Commercial
        }
        .into(),
        primary: row.is_primary,
        create_time: Some(timestamp(row.created_at)),
    }
}

/// A DNS domain: labels of letters, digits and hyphens, at least one dot.
fn check_domain(domain: &str) -> Result<(), String> {
    let ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err("must be a domain name such as contoso.com".into())
    }
}

fn support_message(
    account: Uuid,
    (email, phone, website, version): (String, String, String, i64),
) -> SupportProfile {
    SupportProfile {
        name: format!("accounts/{account}/supportProfile"),
        email,
        phone,
        website,
        etag: etag::of(version),
    }
}

impl Profile {
    async fn list_tenants(
        &self,
        caller: &Caller,
        req: ListTenantsRequest,
    ) -> Result<ListTenantsResponse> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::TENANTS_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let rows = org::tenants(&mut conn, account).await?;
        Ok(ListTenantsResponse {
            tenants: rows.iter().map(tenant_message).collect(),
        })
    }

    async fn associate(&self, caller: &Caller, req: AssociateTenantRequest) -> Result<Tenant> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::TENANTS_WRITE, &account.to_string())?;
        let tenant = req.tenant.unwrap_or_default();
        let mut v = Violations::new();
        let id = Uuid::try_parse(&tenant.tenant_id)
            .map_err(|_| v.add("tenant.tenant_id", "must be a directory tenant id (GUID)"))
            .ok();
        let domain = tenant.domain.trim().to_lowercase();
        v.check("tenant.domain", check_domain(&domain));
        let kind = match TenantKind::try_from(tenant.kind) {
            Ok(TenantKind::Commercial) => "COMMERCIAL",
            Ok(TenantKind::Developer) => "DEVELOPER",
            _ => {
                v.add("tenant.kind", "must be COMMERCIAL or DEVELOPER");
                ""
            }
        };
        v.finish()?;
        let Some(id) = id else {
            return Err(ProfileError::field("tenant.tenant_id", "is required"));
        };
        // Commercial tenants are associated by a Global admin; developer
        // tenants by whoever manages tenants (Manager, Owner).
        if kind == "COMMERCIAL" && !caller.roles.iter().any(|r| r == "global_admin") {
            return Err(denied("associate a commercial tenant (Global admin only)").into());
        }
        let mut tx = self.pool.begin().await?;
        // The profile row serializes tenant changes of the account, so two
        // first tenants cannot both become primary.
        self.lock_enrolled(&mut tx, account).await?;
        let first = org::tenants(&mut tx, account).await?.is_empty();
        let row = org::insert_tenant(&mut tx, id, account, &domain, kind, first)
            .await?
            .ok_or_else(|| {
                ProfileError::Status(error::refused(
                    Code::AlreadyExists,
                    "TENANT_TAKEN",
                    "this tenant is already associated with a partner account",
                ))
            })?;
        let message = tenant_message(&row);
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "tenant.associated",
            &message.name,
            None,
            Some(json!({ "domain": domain, "kind": kind, "primary": first })),
        )
        .await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn remove_tenant(&self, caller: &Caller, req: RemoveTenantRequest) -> Result<()> {
        let bad =
            || ProfileError::field("name", "must be `accounts/{account}/tenants/{tenant_id}`");
        let rest = req.name.strip_prefix("accounts/").ok_or_else(bad)?;
        let (account, tenant) = rest.split_once("/tenants/").ok_or_else(bad)?;
        let account: Uuid = account.parse().map_err(|_| bad())?;
        let tenant: Uuid = tenant.parse().map_err(|_| bad())?;
        caller.require(perm::TENANTS_WRITE, &account.to_string())?;
        let mut tx = self.pool.begin().await?;
        let row = org::tenant(&mut tx, tenant)
            .await?
            .filter(|t| t.account_id == account)
            .ok_or_else(|| ProfileError::not_found("tenant", req.name.clone()))?;
        if row.is_primary {
            return Err(ProfileError::precondition(
                "PRIMARY_TENANT",
                "the primary tenant cannot be removed",
            ));
        }
        if !caller.email_domain.is_empty() && row.domain == caller.email_domain {
            return Err(ProfileError::precondition(
                "OWN_TENANT",
                "you cannot remove the tenant you are signed in with; ask an admin of another tenant",
            ));
        }
        if row.kind == "COMMERCIAL" && !caller.roles.iter().any(|r| r == "global_admin") {
            return Err(denied("remove a commercial tenant (Global admin only)").into());
        }
        org::delete_tenant(&mut tx, tenant).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "tenant.removed",
            &req.name,
            Some(json!({ "domain": row.domain, "kind": row.kind })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_support(
        &self,
        caller: &Caller,
        req: GetSupportProfileRequest,
    ) -> Result<SupportProfile> {
        let account = singleton_account("name", &req.name, "supportProfile")?;
        caller.require(perm::COMPANY_READ, &account.to_string())?;
        let mut conn = self.pool.acquire().await?;
        self.enrolled(&mut conn, account).await?;
        Ok(support_message(
            account,
            org::support(&mut conn, account, false).await?,
        ))
    }

    async fn update_support(
        &self,
        caller: &Caller,
        req: UpdateSupportProfileRequest,
    ) -> Result<SupportProfile> {
        let new = req.support_profile.unwrap_or_default();
        let account = singleton_account("support_profile.name", &new.name, "supportProfile")?;
        caller.require(perm::COMPANY_WRITE, &account.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let has = |f: &str| paths.iter().any(|p| p == f);
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                "name the fields to change: email, phone, website",
            );
        }
        for p in &paths {
            match p.as_str() {
                "email" if !new.email.is_empty() => {
                    v.check("support_profile.email", validate::email(new.email.trim()))
                }
                "phone" if !new.phone.is_empty() => v.check(
                    "support_profile.phone",
                    validate::e164_phone(new.phone.trim()),
                ),
                "website" if !new.website.is_empty() => v.check(
                    "support_profile.website",
                    validate::https_url(new.website.trim()),
                ),
                "email" | "phone" | "website" => {}
                other => v.add("update_mask", format!("{other} cannot be changed")),
            }
        }
        v.finish()?;
        let mut tx = self.pool.begin().await?;
        // Lock the profile row: before the first write there is no support
        // row to lock, and two writers with etag "0" must not both pass.
        self.lock_enrolled(&mut tx, account).await?;
        let (email, phone, website, version) = org::support(&mut tx, account, true).await?;
        etag::check(&new.etag, version, &new.name)?;
        let pick = |f: &str, new: &str, old: &str| {
            if has(f) {
                new.trim().to_owned()
            } else {
                old.to_owned()
            }
        };
        let (e, p, w) = (
            pick("email", &new.email, &email),
            pick("phone", &new.phone, &phone),
            pick("website", &new.website, &website),
        );
        let version = org::set_support(&mut tx, account, &e, &p, &w).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "support_profile.updated",
            &new.name,
            Some(json!({ "email": email, "phone": phone, "website": website })),
            Some(json!({ "email": e, "phone": p, "website": w })),
        )
        .await?;
        tx.commit().await?;
        Ok(support_message(account, (e, p, w, version)))
    }
}

#[tonic::async_trait]
impl TenantService for Profile {
    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::list_tenants(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn associate_tenant(
        &self,
        request: Request<AssociateTenantRequest>,
    ) -> Result<Response<Tenant>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.associate(&caller, request.into_inner()).await?,
        ))
    }

    async fn remove_tenant(
        &self,
        request: Request<RemoveTenantRequest>,
    ) -> Result<Response<RemoveTenantResponse>, Status> {
        let caller = caller(&request)?.clone();
        Profile::remove_tenant(self, &caller, request.into_inner()).await?;
        Ok(Response::new(RemoveTenantResponse {}))
    }
}

#[tonic::async_trait]
impl SupportProfileService for Profile {
    async fn get_support_profile(
        &self,
        request: Request<GetSupportProfileRequest>,
    ) -> Result<Response<SupportProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.get_support(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_support_profile(
        &self,
        request: Request<UpdateSupportProfileRequest>,
    ) -> Result<Response<SupportProfile>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_support(&caller, request.into_inner()).await?,
        ))
    }
}
