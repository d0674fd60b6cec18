//! Row 7: ListMembers and ListLocations of one company at 1 k and at 1 M
//! rows. Rows are seeded straight into the services' databases, in the
//! shape their stores write, with one `INSERT … SELECT generate_series` per
//! table; each size is measured on the first page and on a page from the
//! middle of the keyset.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use partnerhub_platform::page;
use partnerhub_proto::identity::v1::ListMembersRequest;
use partnerhub_proto::identity::v1::member_service_client::MemberServiceClient;
use partnerhub_proto::profile::v1::ListLocationsRequest;
use partnerhub_proto::profile::v1::location_service_client::LocationServiceClient;
use partnerhub_testkit::{Company, bearer};
use sqlx::PgPool;
use uuid::Uuid;

use crate::grpc::channels;
use crate::load::{FnWorker, LoadSettings, Stats, closed_loop};

/// Page size of the listings (the services' default).
const PAGE_SIZE: i32 = 25;

/// The two lists, measured at one size.
#[derive(Debug, Clone, Copy)]
pub struct Lists {
    /// ListMembers, first page.
    pub members_first: Stats,
    /// ListMembers, a page from the middle.
    pub members_middle: Stats,
    /// ListLocations, first page.
    pub locations_first: Stats,
    /// ListLocations, a page from the middle.
    pub locations_middle: Stats,
}

/// The company being grown and the databases behind it.
pub struct Growth {
    company: Company,
    identity_db: PgPool,
    profile_db: PgPool,
    account: Uuid,
}

impl Growth {
    /// Grows `company` (enrolled, used for nothing else).
    pub fn new(company: Company, identity_db: PgPool, profile_db: PgPool) -> anyhow::Result<Self> {
        let account = company.account_id().parse().context("bad account id")?;
        Ok(Self {
            company,
            identity_db,
            profile_db,
            account,
        })
    }

    /// Adds members and locations until the company has `rows` of each.
    pub async fn grow_to(&self, rows: i64) -> anyhow::Result<()> {
        let members: i64 =
            sqlx::query_scalar("SELECT count(*) FROM memberships WHERE account_id = $1")
                .bind(self.account)
                .fetch_one(&self.identity_db)
                .await?;
        let tag = partnerhub_testkit::unique();
        sqlx::query(
            "WITH new_users AS (
                 INSERT INTO users (id, email, email_normalized, given_name, family_name, locale,
                                    password_hash, home_account_id)
                 SELECT gen_random_uuid(), 'member' || g || '@' || $2 || '.test',
                        'member' || g || '@' || $2 || '.test', 'Bench', 'Member ' || g, 'en-US',
                        NULL, $1
                 FROM generate_series(1, $3::bigint) g
                 RETURNING id)
             INSERT INTO memberships (account_id, user_id, roles, state)
             SELECT $1, id, ARRAY['developer'], 'ACTIVE' FROM new_users",
        )
        .bind(self.account)
        .bind(&tag)
        .bind(rows - members)
        .execute(&self.identity_db)
        .await
        .context("cannot seed members")?;
        sqlx::query("ANALYZE users, memberships")
            .execute(&self.identity_db)
            .await?;

        let locations: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM locations WHERE account_id = $1 AND deleted_at IS NULL",
        )
        .bind(self.account)
        .fetch_one(&self.profile_db)
        .await?;
        sqlx::query(
            "WITH ids AS (
                 INSERT INTO partner_ids (partner_id, kind, account_id, location_id)
                 SELECT 2000000 + $2 + g, 'LOCATION', $1, gen_random_uuid()
                 FROM generate_series(1, $3::bigint) g
                 ON CONFLICT DO NOTHING
                 RETURNING partner_id, location_id),
             hq AS (
                 SELECT address, contact FROM locations WHERE account_id = $1 AND headquarters)
             INSERT INTO locations (id, account_id, partner_id, business_name, address, contact,
                                    headquarters, created_at)
             SELECT ids.location_id, $1, ids.partner_id, 'Branch ' || ids.partner_id,
                    hq.address, hq.contact, false,
                    now() + (ids.partner_id - 2000000) * interval '1 millisecond'
             FROM ids, hq",
        )
        .bind(self.account)
        .bind(locations)
        .bind(rows - locations)
        .execute(&self.profile_db)
        .await
        .context("cannot seed locations")?;
        sqlx::query("ANALYZE partner_ids, locations")
            .execute(&self.profile_db)
            .await?;
        Ok(())
    }

    /// Measures both lists at the current size.
    pub async fn measure(
        &self,
        settings: &LoadSettings,
        identity: SocketAddr,
        profile: SocketAddr,
    ) -> anyhow::Result<Lists> {
        let parent = self.company.account.clone();
        let middle_member: Uuid = sqlx::query_scalar(
            "SELECT user_id FROM memberships WHERE account_id = $1 ORDER BY user_id
             OFFSET (SELECT count(*) / 2 FROM memberships WHERE account_id = $1) LIMIT 1",
        )
        .bind(self.account)
        .fetch_one(&self.identity_db)
        .await?;
        let member_token = page::encode(&middle_member, &page::fingerprint(&[&parent, "", "0"]));
        let (created_at, id): (DateTime<Utc>, Uuid) = sqlx::query_as(
            "SELECT created_at, id FROM locations WHERE account_id = $1 AND deleted_at IS NULL
             ORDER BY headquarters DESC, created_at, id
             OFFSET (SELECT count(*) / 2 FROM locations WHERE account_id = $1) LIMIT 1",
        )
        .bind(self.account)
        .fetch_one(&self.profile_db)
        .await?;
        let location_token = page::encode(&(false, created_at, id), &page::fingerprint(&[&parent]));
        Ok(Lists {
            members_first: self.members(settings, identity, String::new()).await?,
            members_middle: self.members(settings, identity, member_token).await?,
            locations_first: self.locations(settings, profile, String::new()).await?,
            locations_middle: self.locations(settings, profile, location_token).await?,
        })
    }

    async fn members(
        &self,
        settings: &LoadSettings,
        identity: SocketAddr,
        page_token: String,
    ) -> anyhow::Result<Stats> {
        let channels = channels(identity, settings.connections).await?;
        let company = Arc::new(self.company.clone());
        let workers = (0..settings.in_flight)
            .map(|i| {
                let client = MemberServiceClient::new(channels[i % channels.len()].clone());
                let company = company.clone();
                let page_token = page_token.clone();
                FnWorker(move || {
                    let mut client = client.clone();
                    let request = bearer(
                        &company.token,
                        ListMembersRequest {
                            parent: company.account.clone(),
                            page_size: PAGE_SIZE,
                            page_token: page_token.clone(),
                            ..ListMembersRequest::default()
                        },
                    );
                    async move {
                        let page = client
                            .list_members(request?)
                            .await
                            .context("ListMembers failed")?;
                        anyhow::ensure!(!page.into_inner().members.is_empty(), "an empty page");
                        Ok(())
                    }
                })
            })
            .collect();
        closed_loop(settings, workers).await
    }

    async fn locations(
        &self,
        settings: &LoadSettings,
        profile: SocketAddr,
        page_token: String,
    ) -> anyhow::Result<Stats> {
        let channels = channels(profile, settings.connections).await?;
        let company = Arc::new(self.company.clone());
        let workers = (0..settings.in_flight)
            .map(|i| {
                let client = LocationServiceClient::new(channels[i % channels.len()].clone());
                let company = company.clone();
                let page_token = page_token.clone();
                FnWorker(move || {
                    let mut client = client.clone();
                    let request = bearer(
                        &company.token,
                        ListLocationsRequest {
                            parent: company.account.clone(),
                            page_size: PAGE_SIZE,
                            page_token: page_token.clone(),
                        },
                    );
                    async move {
                        let page = client
                            .list_locations(request?)
                            .await
                            .context("ListLocations failed")?;
                        anyhow::ensure!(!page.into_inner().locations.is_empty(), "an empty page");
                        Ok(())
                    }
                })
            })
            .collect();
        closed_loop(settings, workers).await
    }
}
