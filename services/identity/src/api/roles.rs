//! RoleService: the role table, as data.

use partnerhub_platform::auth::roles::{self, Family};
use partnerhub_proto::identity::v1::{
    GetRoleRequest, ListRolesRequest, ListRolesResponse, Role, RoleFamily,
    role_service_server::RoleService,
};
use tonic::{Request, Response, Status};

use super::Identity;
use crate::error::IdentityError;

fn role_message(role: &roles::Role) -> Role {
    let family = match role.family {
        Family::Directory => RoleFamily::Directory,
        Family::Csp => RoleFamily::Csp,
        Family::Partner => RoleFamily::Partner,
        Family::Developer => RoleFamily::Developer,
    };
    Role {
        name: format!("roles/{}", role.id),
        id: role.id.to_owned(),
        display_name: role.display_name.to_owned(),
        family: family.into(),
        permissions: role.permissions.iter().map(|p| (*p).to_owned()).collect(),
        assignable_by: role.assignable_by.iter().map(|r| (*r).to_owned()).collect(),
        location_scopable: role.location_scopable,
    }
}

#[tonic::async_trait]
impl RoleService for Identity {
    async fn list_roles(
        &self,
        _request: Request<ListRolesRequest>,
    ) -> Result<Response<ListRolesResponse>, Status> {
        Ok(Response::new(ListRolesResponse {
            roles: roles::ROLES.iter().map(role_message).collect(),
        }))
    }

    async fn get_role(&self, request: Request<GetRoleRequest>) -> Result<Response<Role>, Status> {
        let name = &request.get_ref().name;
        let id = name
            .strip_prefix("roles/")
            .ok_or_else(|| IdentityError::field("name", "must be `roles/{role}`"))?;
        let role = roles::find(id).ok_or_else(|| IdentityError::not_found("role", name.clone()))?;
        Ok(Response::new(role_message(role)))
    }
}
