//! Security administration: CreateAcls, DeleteAcls, AlterUserScramCredentials.
//! Kafka refuses all three with `CLUSTER_AUTHORIZATION_FAILED` in every result.

use std::collections::HashSet;

use crate::api::ErrorCode;
use crate::rewrite::reader::Read;

use super::{Answer, Exchange, message};

const CLUSTER: ErrorCode = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;

/// The error part every result of these responses shares.
fn cluster_error(x: &mut Exchange<'_>) {
    x.out.error(CLUSTER);
    x.out.nullable_string(Some(message(CLUSTER)));
}

/// CreateAcls v1–3: one refused result per creation.
pub(super) fn create_acls(x: &mut Exchange<'_>) -> Read<Answer> {
    x.results("creations", |x| {
        x.r.skip(1, "resource_type")?;
        x.string("resource_name")?;
        x.r.skip(1, "resource_pattern_type")?;
        x.string("principal")?;
        x.string("host")?;
        x.r.skip(2, "operation, permission_type")?;
        x.skip_tags("creation tagged fields")?;
        cluster_error(x);
        x.out.tags();
        Ok(())
    })
}

/// DeleteAcls v1–3: one refused filter result (matching nothing) per filter.
pub(super) fn delete_acls(x: &mut Exchange<'_>) -> Read<Answer> {
    x.results("filters", |x| {
        x.r.skip(1, "resource_type_filter")?;
        x.nullable_string("resource_name_filter")?;
        x.r.skip(1, "pattern_type_filter")?;
        x.nullable_string("principal_filter")?;
        x.nullable_string("host_filter")?;
        x.r.skip(2, "operation, permission_type")?;
        x.skip_tags("filter tagged fields")?;
        cluster_error(x);
        x.out.array_len(0); // matching_acls
        x.out.tags();
        Ok(())
    })
}

/// AlterUserScramCredentials v0: one refused result per user named in the
/// deletions or upsertions (each user once, in order of first mention).
pub(super) fn alter_user_scram_credentials(x: &mut Exchange<'_>) -> Read<Answer> {
    let mut users: Vec<&[u8]> = Vec::new();
    for _ in 0..x.array_len("deletions")? {
        users.push(x.string("deletion name")?);
        x.r.skip(1, "mechanism")?;
        x.skip_tags("deletion tagged fields")?;
    }
    for _ in 0..x.array_len("upsertions")? {
        users.push(x.string("upsertion name")?);
        x.r.skip(1 + 4, "mechanism, iterations")?;
        x.r.nullable_bytes(true, "salt")?;
        x.r.nullable_bytes(true, "salted_password")?;
        x.skip_tags("upsertion tagged fields")?;
    }
    x.skip_tags("tagged fields")?;
    let mut seen = HashSet::with_capacity(users.len());
    users.retain(|user| seen.insert(*user));
    // Each result is the user and ~35 bytes: bound the answer before building it.
    let size: usize = users.iter().map(|u| u.len() + 40).sum();
    if size > super::MAX_REFUSAL_BYTES {
        return Err(x.r.fault(super::TOO_LARGE));
    }
    x.out.i32(0); // throttle_time_ms
    x.out.array_len(users.len());
    for user in users {
        x.out.string(user);
        cluster_error(x);
        x.out.tags();
    }
    x.out.tags();
    Ok(Answer::Written)
}
