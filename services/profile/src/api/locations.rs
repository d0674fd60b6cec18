//! LocationService: the account's business locations.

use chrono::{DateTime, Utc};
use partnerhub_platform::auth::{Caller, caller, roles::perm};
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::Violations;
use partnerhub_platform::{etag, idempotency, outbox, page};
use partnerhub_proto::profile::v1::{
    AddLocationRequest, DeleteLocationRequest, DeleteLocationResponse, GetLocationRequest,
    ListLocationsRequest, ListLocationsResponse, Location, LocationAdded, UpdateLocationRequest,
    location_service_server::LocationService,
};
use serde_json::json;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Profile, SOURCE, account_id, location_message, location_name, partner_id_text};
use crate::domain::{self, AddressDoc, ContactDoc};
use crate::error::{ProfileError, Result};
use crate::store;

/// Checks the editable fields of a location named in `paths` (all when
/// `paths` is `None`).
fn check_location(l: &Location, paths: Option<&[String]>, v: &mut Violations) -> Vec<String> {
    let has = |f: &str| paths.is_none_or(|p| p.iter().any(|x| x == f));
    let mut warnings = Vec::new();
    if has("business_name") {
        warnings = domain::check_legal_name("location.business_name", &l.business_name, v);
    }
    if has("address") {
        domain::check_address("location.address", l.address.as_ref(), v);
    }
    if has("contact") {
        domain::check_contact("location.contact", l.contact.as_ref(), v);
    }
    warnings
}

impl Profile {
    /// Like [`Profile::enrolled`], and locks the profile row for the
    /// transaction: changes to the account's profile resources serialize on it.
    pub(super) async fn lock_enrolled(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
    ) -> Result<()> {
        store::profile(conn, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .map(drop)
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))
    }

    /// The profile must exist and not be merged away.
    pub(super) async fn enrolled(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
    ) -> Result<()> {
        store::profile(conn, account, false)
            .await?
            .filter(|p| p.merged_into.is_none())
            .map(drop)
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))
    }

    async fn list_locations(
        &self,
        caller: &Caller,
        req: ListLocationsRequest,
    ) -> Result<ListLocationsResponse> {
        let account = account_id("parent", &req.parent)?;
        // A location-scoped role lists only its locations.
        let only: Option<Vec<Uuid>> = caller
            .require_in_locations(perm::LOCATIONS_READ, &account.to_string())?
            .map(|set| set.iter().filter_map(|l| l.parse().ok()).collect());
        let mut v = Violations::new();
        let size = page::page_size(req.page_size)
            .map_err(|e| v.add("page_size", e))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let fingerprint = page::fingerprint(&[&req.parent]);
        let after = page::decode::<(bool, DateTime<Utc>, Uuid)>(&req.page_token, &fingerprint)
            .map_err(|e| v.add("page_token", e))
            .ok()
            .flatten();
        v.finish()?;
        let mut conn = self.pool.acquire().await?;
        self.enrolled(&mut conn, account).await?;
        let mut rows =
            store::locations(&mut conn, account, after, only.as_deref(), size + 1).await?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => {
                page::encode(&(last.headquarters, last.created_at, last.id), &fingerprint)
            }
            _ => String::new(),
        };
        Ok(ListLocationsResponse {
            locations: rows.iter().map(location_message).collect(),
            next_page_token,
        })
    }

    async fn get_location(&self, caller: &Caller, req: GetLocationRequest) -> Result<Location> {
        let (account, id) = location_name("name", &req.name)?;
        caller.require_location(perm::LOCATIONS_READ, &account.to_string(), &id.to_string())?;
        let mut conn = self.pool.acquire().await?;
        let row = store::location(&mut conn, account, id)
            .await?
            .ok_or_else(|| ProfileError::not_found("location", req.name.clone()))?;
        Ok(location_message(&row))
    }

    async fn add_location(&self, caller: &Caller, req: AddLocationRequest) -> Result<Location> {
        let account = account_id("parent", &req.parent)?;
        caller.require(perm::LOCATIONS_WRITE, &account.to_string())?;
        let location = req.location.clone().unwrap_or_default();
        let mut v = Violations::new();
        check_location(&location, None, &mut v);
        v.finish()?;
        let scope = format!("accounts/{account}:AddLocation");
        let mut tx = self.pool.begin().await?;
        if let Some(stored) =
            idempotency::replay::<Location>(&mut tx, &scope, &req.request_id, &req).await?
        {
            return Ok(stored);
        }
        // Serialize with other profile changes of the account.
        store::profile(&mut tx, account, true)
            .await?
            .filter(|p| p.merged_into.is_none())
            .ok_or_else(|| ProfileError::NotEnrolled(format!("accounts/{account}/legalProfile")))?;
        let id = Uuid::now_v7();
        let partner_id = store::allocate_partner_id(&mut tx, "LOCATION", account, Some(id)).await?;
        let address = AddressDoc::from(&location.address.clone().unwrap_or_default());
        let contact = ContactDoc::from(&location.contact.clone().unwrap_or_default());
        let row = store::insert_location(
            &mut tx,
            &store::NewLocation {
                id,
                account,
                partner_id,
                business_name: location.business_name.trim(),
                address: &address,
                contact: &contact,
                headquarters: false,
            },
        )
        .await?;
        let message = location_message(&row);
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &message.name,
            &LocationAdded {
                account: format!("accounts/{account}"),
                location: message.name.clone(),
                partner_id: message.partner_id.clone(),
                business_name: row.business_name.clone(),
                address: message.address.clone(),
                create_time: Some(timestamp(row.created_at)),
            },
        )
        .await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "location.added",
            &message.name,
            None,
            Some(json!({ "business_name": row.business_name, "partner_id": message.partner_id, "country": address.country })),
        )
        .await?;
        idempotency::remember(&mut tx, &scope, &req.request_id, &message).await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn update_location(
        &self,
        caller: &Caller,
        req: UpdateLocationRequest,
    ) -> Result<Location> {
        let new = req.location.unwrap_or_default();
        let (account, id) = location_name("location.name", &new.name)?;
        caller.require_location(perm::LOCATIONS_WRITE, &account.to_string(), &id.to_string())?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                "name the fields to change: business_name, address, contact",
            );
        }
        for p in &paths {
            if !["business_name", "address", "contact"].contains(&p.as_str()) {
                v.add("update_mask", format!("{p} cannot be changed"));
            }
        }
        check_location(&new, Some(&paths), &mut v);
        v.finish()?;
        let has = |f: &str| paths.iter().any(|p| p == f);
        let mut tx = self.pool.begin().await?;
        let current = store::location(&mut tx, account, id)
            .await?
            .ok_or_else(|| ProfileError::not_found("location", new.name.clone()))?;
        etag::check(&new.etag, current.version, &new.name)?;
        let name = if has("business_name") {
            new.business_name.trim().to_owned()
        } else {
            current.business_name.clone()
        };
        let address = if has("address") {
            AddressDoc::from(&new.address.clone().unwrap_or_default())
        } else {
            current.address.0.clone()
        };
        let contact = if has("contact") {
            ContactDoc::from(&new.contact.clone().unwrap_or_default())
        } else {
            current.contact.0.clone()
        };
        let row = store::update_location(&mut tx, id, &name, &address, &contact).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "location.updated",
            &new.name,
            Some(json!({ "business_name": current.business_name, "country": current.address.0.country })),
            Some(json!({ "business_name": row.business_name, "country": row.address.0.country })),
        )
        .await?;
        tx.commit().await?;
        Ok(location_message(&row))
    }

    async fn delete_location(&self, caller: &Caller, req: DeleteLocationRequest) -> Result<()> {
        let (account, id) = location_name("name", &req.name)?;
        caller.require_location(perm::LOCATIONS_WRITE, &account.to_string(), &id.to_string())?;
        let mut tx = self.pool.begin().await?;
        store::profile(&mut tx, account, true).await?;
        let current = store::location(&mut tx, account, id)
            .await?
            .ok_or_else(|| ProfileError::not_found("location", req.name.clone()))?;
        etag::check(&req.etag, current.version, &req.name)?;
        if req.confirm_partner_id.trim() != partner_id_text(current.partner_id) {
            return Err(ProfileError::field(
                "confirm_partner_id",
                "must be the location's partner id, typed to confirm the deletion",
            ));
        }
        if store::count_locations(&mut tx, account).await? <= 1 {
            return Err(ProfileError::precondition(
                "LAST_LOCATION",
                "an account keeps at least one location",
            ));
        }
        if current.headquarters {
            return Err(ProfileError::precondition(
                "HEADQUARTERS",
                "the headquarters location holds the global account and cannot be deleted",
            ));
        }
        store::delete_location(&mut tx, id).await?;
        store::record_activity(
            &mut tx,
            account,
            &caller.resource_name(),
            "location.deleted",
            &req.name,
            Some(json!({ "business_name": current.business_name, "partner_id": partner_id_text(current.partner_id) })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl LocationService for Profile {
    async fn list_locations(
        &self,
        request: Request<ListLocationsRequest>,
    ) -> Result<Response<ListLocationsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::list_locations(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn get_location(
        &self,
        request: Request<GetLocationRequest>,
    ) -> Result<Response<Location>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::get_location(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn add_location(
        &self,
        request: Request<AddLocationRequest>,
    ) -> Result<Response<Location>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::add_location(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn update_location(
        &self,
        request: Request<UpdateLocationRequest>,
    ) -> Result<Response<Location>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            Profile::update_location(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn delete_location(
        &self,
        request: Request<DeleteLocationRequest>,
    ) -> Result<Response<DeleteLocationResponse>, Status> {
        let caller = caller(&request)?.clone();
        Profile::delete_location(self, &caller, request.into_inner()).await?;
        Ok(Response::new(DeleteLocationResponse {}))
    }
}
