//! Compiles the shared helpers; the real tests are in the other files.

mod common;

#[tokio::test]
async fn founders_sign_up_and_see_their_roles() -> anyhow::Result<()> {
    let h = common::Harness::start().await?;
    let founder = h.sign_up().await?;
    let me = founder
        .me()
        .get_my_permissions(founder.req(partnerhub_proto::identity::v1::GetMyPermissionsRequest {}))
        .await?
        .into_inner();
    let roles: Vec<_> = me
        .roles
        .iter()
        .filter_map(|r| r.assignment.as_ref())
        .map(|a| a.role.clone())
        .collect();
    assert_eq!(roles, ["global_admin", "admin_agent", "owner"]);
    assert!(
        me.permissions
            .iter()
            .any(|p| p == "identity.members.create")
    );
    h.stop().await
}
