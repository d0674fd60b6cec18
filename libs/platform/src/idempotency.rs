//! `request_id` idempotency: the first response to a request is stored in the
//! same transaction as its effects and replayed to every retry. A concurrent
//! retry waits on the row lock of the first attempt, then replays its
//! response; the same `request_id` with a different request is refused.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use tonic::{Code, Status};

/// What the caller should do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// First time: perform it, then `complete`.
    Proceed,
    /// Seen before: return this stored (encoded) response.
    Replay(Vec<u8>),
}

/// Hash of the request body that a `request_id` is bound to.
pub fn request_hash(encoded_request: &[u8]) -> Vec<u8> {
    Sha256::digest(encoded_request).to_vec()
}

/// Claims `request_id` within `scope` (for example `accounts/{a}:CreateUser`)
/// in the caller's transaction.
pub async fn begin(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    hash: &[u8],
) -> Result<Outcome, Status> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency (scope, request_id, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(scope)
    .bind(request_id)
    .bind(hash)
    .execute(&mut *conn)
    .await
    .map_err(|e| crate::error::from_sqlx(&e))?
    .rows_affected();
    if inserted == 1 {
        return Ok(Outcome::Proceed);
    }
    let (stored_hash, response): (Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT request_hash, response FROM idempotency WHERE scope = $1 AND request_id = $2",
    )
    .bind(scope)
    .bind(request_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| crate::error::from_sqlx(&e))?;
    if stored_hash != hash {
        return Err(crate::error::refused(
            Code::InvalidArgument,
            "REQUEST_ID_REUSED",
            "request_id was already used for a different request",
        ));
    }
    match response {
        Some(bytes) => Ok(Outcome::Replay(bytes)),
        // The first attempt committed without a response: it failed after
        // claiming; let this one proceed.
        None => Ok(Outcome::Proceed),
    }
}

/// Stores the response of a request claimed with `begin`.
pub async fn complete(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    response: &[u8],
) -> Result<(), Status> {
    sqlx::query("UPDATE idempotency SET response = $3 WHERE scope = $1 AND request_id = $2")
        .bind(scope)
        .bind(request_id)
        .bind(response)
        .execute(&mut *conn)
        .await
        .map_err(|e| crate::error::from_sqlx(&e))?;
    Ok(())
}

/// Claims `request_id` in `scope` for `request` in the caller's transaction;
/// `Some(response)` is the stored answer of an earlier identical request to
/// return as is. An empty `request_id` means no idempotency.
pub async fn replay<M: prost::Message + Default>(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    request: &impl prost::Message,
) -> Result<Option<M>, Status> {
    if request_id.is_empty() {
        return Ok(None);
    }
    if request_id.len() > 100 {
        return Err(crate::error::invalid_argument(vec![
            crate::error::FieldViolation::new("request_id", "must be at most 100 characters"),
        ]));
    }
    let hash = request_hash(&request.encode_to_vec());
    match begin(conn, scope, request_id, &hash).await? {
        Outcome::Proceed => Ok(None),
        Outcome::Replay(bytes) => M::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| crate::error::internal(&e)),
    }
}

/// Stores the response of a request claimed with [`replay`] (nothing when
/// `request_id` is empty).
pub async fn remember(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    response: &impl prost::Message,
) -> Result<(), Status> {
    if request_id.is_empty() {
        return Ok(());
    }
    complete(conn, scope, request_id, &response.encode_to_vec()).await
}
