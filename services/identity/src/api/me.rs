//! SelfService: the caller's own permissions and profile.

use std::collections::BTreeSet;

use chrono::Utc;
use partnerhub_platform::auth::{Caller, caller, roles};
use partnerhub_platform::outbox;
use partnerhub_platform::time::timestamp;
use partnerhub_platform::validate::{self, Violations};
use partnerhub_proto::identity::v1::{
    GetMyPermissionsRequest, GetMyPermissionsResponse, GrantedRole, UpdateMyProfileRequest, User,
    UserUpdated, self_service_server::SelfService,
};
use tonic::{Request, Response, Status};

use super::{Identity, SOURCE, caller_user, user_message};
use crate::domain::{self, authority};
use crate::error::{IdentityError, Result};
use crate::store::{accounts, activity, members};

const PROFILE_FIELDS: &[&str] = &["given_name", "family_name", "locale", "alternate_email"];

impl Identity {
    async fn my_permissions(&self, caller: &Caller) -> Result<GetMyPermissionsResponse> {
        let user = caller_user(caller)?;
        let account = caller.account.as_deref().and_then(|a| a.parse().ok());
        let mut conn = self.pool.acquire().await?;
        // Fresh from the database: roles may have changed since the token.
        let membership = accounts::membership(&mut conn, user, account)
            .await?
            .ok_or_else(|| {
                IdentityError::not_found(
                    "account",
                    format!("accounts/{}", caller.account.clone().unwrap_or_default()),
                )
            })?;
        let mut all = BTreeSet::new();
        let granted = authority::assignments(&membership.roles, &membership.scopes.0)
            .into_iter()
            .filter_map(|assignment| {
                let role = roles::find(&assignment.role)?;
                all.extend(role.permissions.iter().copied());
                Some(GrantedRole {
                    display_name: role.display_name.to_owned(),
                    permissions: role.permissions.iter().map(|p| (*p).to_owned()).collect(),
                    assignment: Some(assignment),
                })
            })
            .collect();
        Ok(GetMyPermissionsResponse {
            account: format!("accounts/{}", membership.account.id),
            roles: granted,
            permissions: all.into_iter().map(str::to_owned).collect(),
        })
    }

    async fn update_profile(&self, caller: &Caller, req: UpdateMyProfileRequest) -> Result<User> {
        let user_id = caller_user(caller)?;
        let new = req.user.unwrap_or_default();
        // A request naming another user must not change the caller instead.
        if !new.name.is_empty() && new.name != "users/me" && new.name != format!("users/{user_id}")
        {
            return Err(IdentityError::not_found("user", new.name));
        }
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("name the fields to change: {}", PROFILE_FIELDS.join(", ")),
            );
        }
        for p in &paths {
            match p.as_str() {
                "given_name" => v.check("user.given_name", validate::text(&new.given_name, 1, 50)),
                "family_name" => {
                    v.check("user.family_name", validate::text(&new.family_name, 1, 50))
                }
                "locale" if !domain::LOCALES.contains(&new.locale.as_str()) => {
                    v.add(
                        "user.locale",
                        format!("must be one of {}", domain::LOCALES.join(", ")),
                    );
                }
                "locale" => {}
                "alternate_email" if !new.alternate_email.is_empty() => {
                    v.check(
                        "user.alternate_email",
                        validate::email(&new.alternate_email),
                    );
                }
                "alternate_email" => {}
                other => v.add("update_mask", format!("{other} cannot be changed here")),
            }
        }
        v.finish()?;
        let mut tx = self.pool.begin().await?;
        let current = members::user(&mut tx, user_id)
            .await?
            .ok_or_else(|| IdentityError::not_found("user", format!("users/{user_id}")))?;
        let pick = |field: &str, new: &str, old: &str| -> String {
            if paths.iter().any(|p| p == field) {
                new.to_owned()
            } else {
                old.to_owned()
            }
        };
        let given = pick("given_name", &new.given_name, &current.given_name);
        let family = pick("family_name", &new.family_name, &current.family_name);
        let locale = pick("locale", &new.locale, &current.locale);
        let alternate = pick(
            "alternate_email",
            &new.alternate_email,
            current.alternate_email.as_deref().unwrap_or_default(),
        );
        let updated = members::update_profile(
            &mut tx,
            user_id,
            &members::ProfileChange {
                given_name: &given,
                family_name: &family,
                locale: &locale,
                alternate_email: (!alternate.is_empty()).then_some(alternate.as_str()),
            },
        )
        .await?;
        let user_name = format!("users/{user_id}");
        outbox::publish_event(
            &mut tx,
            SOURCE,
            &user_name,
            &UserUpdated {
                user: user_name.clone(),
                email: updated.email.clone(),
                given_name: updated.given_name.clone(),
                family_name: updated.family_name.clone(),
                locale: updated.locale.clone(),
                alternate_email: updated.alternate_email.clone().unwrap_or_default(),
                changed_fields: paths.clone(),
                update_time: Some(timestamp(Utc::now())),
            },
        )
        .await?;
        if let Some(account) = updated.home_account_id {
            activity::record(
                &mut tx,
                activity::Entry {
                    account,
                    actor: &user_name,
                    action: "user.updated",
                    target: &user_name,
                    old: Some(serde_json::json!({ "given_name": current.given_name, "family_name": current.family_name, "locale": current.locale, "alternate_email": current.alternate_email })),
                    new: Some(serde_json::json!({ "given_name": updated.given_name, "family_name": updated.family_name, "locale": updated.locale, "alternate_email": updated.alternate_email })),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(user_message(&updated))
    }
}

#[tonic::async_trait]
impl SelfService for Identity {
    async fn get_my_permissions(
        &self,
        request: Request<GetMyPermissionsRequest>,
    ) -> Result<Response<GetMyPermissionsResponse>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(self.my_permissions(&caller).await?))
    }

    async fn update_my_profile(
        &self,
        request: Request<UpdateMyProfileRequest>,
    ) -> Result<Response<User>, Status> {
        let caller = caller(&request)?.clone();
        Ok(Response::new(
            self.update_profile(&caller, request.into_inner()).await?,
        ))
    }
}
