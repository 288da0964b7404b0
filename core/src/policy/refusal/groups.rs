//! Consumer groups: DeleteGroups, OffsetDelete, OffsetCommit. Kafka refuses
//! them with `GROUP_AUTHORIZATION_FAILED`.

use crate::api::ErrorCode;
use crate::rewrite::reader::Read;

use super::{Answer, Exchange};

const GROUP: ErrorCode = ErrorCode::GROUP_AUTHORIZATION_FAILED;

/// DeleteGroups v0–2: every group refused.
pub(super) fn delete_groups(x: &mut Exchange<'_>) -> Read<Answer> {
    x.results("groups_names", |x| {
        let group = x.string("group name")?;
        x.out.string(group);
        x.out.error(GROUP);
        x.out.tags();
        Ok(())
    })
}

/// OffsetDelete v0: the request-level error, no topics (Kafka's error response).
pub(super) fn offset_delete(x: &mut Exchange<'_>) -> Read<Answer> {
    x.string("group_id")?;
    for _ in 0..x.array_len("topics")? {
        x.string("topic name")?;
        let partitions = x.array_len("partitions")?;
        x.r.skip(partitions.saturating_mul(4), "partition_index")?;
    }
    x.out.error(GROUP);
    x.out.i32(0); // throttle_time_ms
    x.out.array_len(0); // topics
    Ok(Answer::Written)
}

/// OffsetCommit v2–9: every partition refused.
pub(super) fn offset_commit(x: &mut Exchange<'_>) -> Read<Answer> {
    let v = x.version;
    x.string("group_id")?;
    x.r.skip(4, "generation_id_or_member_epoch")?;
    x.string("member_id")?;
    if v >= 7 {
        x.nullable_string("group_instance_id")?;
    }
    if v <= 4 {
        x.r.skip(8, "retention_time_ms")?;
    }
    if v >= 3 {
        x.out.i32(0); // throttle_time_ms
    }
    x.topics("topics", false, "partitions", |x| {
        let index = x.r.i32("partition_index")?;
        x.r.skip(8, "committed_offset")?;
        if v >= 6 {
            x.r.skip(4, "committed_leader_epoch")?;
        }
        x.nullable_string("committed_metadata")?;
        x.skip_tags("partition tagged fields")?;
        x.out.i32(index);
        x.out.error(GROUP);
        x.out.tags();
        Ok(())
    })?;
    x.out.tags();
    Ok(Answer::Written)
}
