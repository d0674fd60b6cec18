//! Authentication and authorization: access rules from the proto, token
//! verification with identity's JWKS, the role table, the `Caller`.

mod caller;
mod layer;
pub mod revocation;
pub mod roles;
mod rules;
mod token;
mod verified;

pub use caller::{Caller, PLATFORM_PREFIX, Principal, caller, denied};
pub use layer::{Auth, AuthLayer, token_refusal};
pub use revocation::{GrpcSessionCheck, Revocations, SessionCheck};
pub use rules::{AccessRules, Rule};
pub use token::{
    AUDIENCE, Claims, GrpcKeySource, ISSUER, KeySource, PrincipalKind, TokenError, TokenVerifier,
};
