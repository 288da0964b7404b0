//! Topic and cluster administration: CreateTopics, DeleteTopics,
//! DeleteRecords, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
//! AlterPartitionReassignments.

use crate::api::ErrorCode;
use crate::rewrite::reader::Read;

use super::{Answer, Exchange, message};

const TOPIC: ErrorCode = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
const CLUSTER: ErrorCode = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;

/// `CreatableTopicResult.TopicConfigErrorCode`: the tag of the tagged field.
const TOPIC_CONFIG_ERROR_CODE_TAG: u32 = 0;

/// CreateTopics v2–7: every topic `TOPIC_AUTHORIZATION_FAILED` ("Authorization
/// failed.", as Kafka writes it), no partitions, replication factor or
/// configs, and (v5+) no configs to describe either.
pub(super) fn create_topics(x: &mut Exchange<'_>) -> Read<Answer> {
    let v = x.version;
    x.results("topics", |x| {
        let name = x.string("topic name")?;
        x.r.skip(4 + 2, "num_partitions, replication_factor")?;
        for _ in 0..x.array_len("assignments")? {
            x.r.skip(4, "partition_index")?;
            x.skip_i32s("broker_ids")?;
            x.skip_tags("assignment tagged fields")?;
        }
        for _ in 0..x.array_len("configs")? {
            x.string("config name")?;
            x.nullable_string("config value")?;
            x.skip_tags("config tagged fields")?;
        }
        x.skip_tags("topic tagged fields")?;
        x.out.string(name);
        if v >= 7 {
            x.out.raw(&[0; 16]); // topic_id
        }
        x.out.error(TOPIC);
        x.out.nullable_string(Some(b"Authorization failed."));
        if v >= 5 {
            x.out.i32(-1); // num_partitions
            x.out.i16(-1); // replication_factor
            x.out.array_len(0); // configs
            x.out.tags_with_i16(TOPIC_CONFIG_ERROR_CODE_TAG, TOPIC.0);
        }
        Ok(())
    })
}

/// DeleteTopics v1–6: every topic (by name, or v6 by name and id)
/// `TOPIC_AUTHORIZATION_FAILED`.
pub(super) fn delete_topics(x: &mut Exchange<'_>) -> Read<Answer> {
    if x.version >= 6 {
        x.results("topics", |x| {
            let name = x.nullable_string("topic name")?;
            let id = x.uuid("topic_id")?;
            x.skip_tags("topic tagged fields")?;
            x.out.nullable_string(name);
            x.out.raw(id);
            deleted_topic_error(x);
            Ok(())
        })
    } else {
        x.results("topic_names", |x| {
            let name = x.string("topic name")?;
            x.out.string(name);
            deleted_topic_error(x);
            Ok(())
        })
    }
}

/// The rest of a `DeletableTopicResult` after its name (and id).
fn deleted_topic_error(x: &mut Exchange<'_>) {
    x.out.error(TOPIC);
    if x.version >= 5 {
        x.out.nullable_string(Some(message(TOPIC)));
    }
    x.out.tags();
}

/// DeleteRecords v0–2: every partition `TOPIC_AUTHORIZATION_FAILED`, low
/// watermark unknown (-1).
pub(super) fn delete_records(x: &mut Exchange<'_>) -> Read<Answer> {
    x.out.i32(0); // throttle_time_ms
    x.topics("topics", false, "partitions", |x| {
        let index = x.r.i32("partition_index")?;
        x.r.skip(8, "offset")?;
        x.skip_tags("partition tagged fields")?;
        x.out.i32(index);
        x.out.i64(-1); // low_watermark
        x.out.error(TOPIC);
        x.out.tags();
        Ok(())
    })?;
    x.out.tags();
    Ok(Answer::Written)
}

/// CreatePartitions v0–3: every topic `TOPIC_AUTHORIZATION_FAILED`.
pub(super) fn create_partitions(x: &mut Exchange<'_>) -> Read<Answer> {
    x.results("topics", |x| {
        let name = x.string("topic name")?;
        x.r.skip(4, "count")?;
        if let Some(n) = x.nullable_array_len("assignments")? {
            for _ in 0..n {
                x.skip_i32s("broker_ids")?;
                x.skip_tags("assignment tagged fields")?;
            }
        }
        x.skip_tags("topic tagged fields")?;
        x.out.string(name);
        x.out.error(TOPIC);
        x.out.nullable_string(Some(message(TOPIC)));
        x.out.tags();
        Ok(())
    })
}

/// The error Kafka sends for a config resource the principal may not alter:
/// topics `TOPIC_AUTHORIZATION_FAILED`, groups `GROUP_AUTHORIZATION_FAILED`,
/// brokers, broker loggers and client-metrics subscriptions
/// `CLUSTER_AUTHORIZATION_FAILED`; an unknown resource type is an
/// `INVALID_REQUEST`.
fn config_resource_error(resource_type: i8) -> ErrorCode {
    match resource_type {
        2 => TOPIC,
        32 => ErrorCode::GROUP_AUTHORIZATION_FAILED,
        4 | 8 | 16 => CLUSTER,
        _ => ErrorCode::INVALID_REQUEST,
    }
}

/// AlterConfigs v0–2 and IncrementalAlterConfigs v0–1: every resource
/// refused with the error of its type (no message, as Kafka sends none).
fn alter_configs_with(x: &mut Exchange<'_>, incremental: bool) -> Read<Answer> {
    x.results("resources", |x| {
        let resource_type = x.r.i8("resource_type")?;
        let resource_name = x.string("resource_name")?;
        for _ in 0..x.array_len("configs")? {
            x.string("config name")?;
            if incremental {
                x.r.skip(1, "config_operation")?;
            }
            x.nullable_string("config value")?;
            x.skip_tags("config tagged fields")?;
        }
        x.skip_tags("resource tagged fields")?;
        let error = config_resource_error(resource_type);
        x.out.error(error);
        x.out.nullable_string(
            (error == ErrorCode::INVALID_REQUEST).then_some(b"Unknown resource type.".as_slice()),
        );
        x.out.i8(resource_type);
        x.out.string(resource_name);
        x.out.tags();
        Ok(())
    })
}

/// AlterConfigs v0–2.
pub(super) fn alter_configs(x: &mut Exchange<'_>) -> Read<Answer> {
    alter_configs_with(x, false)
}

/// IncrementalAlterConfigs v0–1.
pub(super) fn incremental_alter_configs(x: &mut Exchange<'_>) -> Read<Answer> {
    alter_configs_with(x, true)
}

/// AlterPartitionReassignments v0–1: `CLUSTER_AUTHORIZATION_FAILED` for the
/// request and for every partition it named (Kafka's error response).
pub(super) fn alter_partition_reassignments(x: &mut Exchange<'_>) -> Read<Answer> {
    let v = x.version;
    x.r.skip(4, "timeout_ms")?;
    let allow_rf_change = if v >= 1 { x.r.i8("allow_replication_factor_change")? != 0 } else { true };
    x.out.i32(0); // throttle_time_ms
    if v >= 1 {
        x.out.bool(allow_rf_change);
    }
    x.out.error(CLUSTER);
    x.out.nullable_string(Some(message(CLUSTER)));
    x.topics("topics", false, "partitions", |x| {
        let index = x.r.i32("partition_index")?;
        x.skip_nullable_i32s("replicas")?;
        x.skip_tags("partition tagged fields")?;
        x.out.i32(index);
        x.out.error(CLUSTER);
        x.out.nullable_string(Some(message(CLUSTER)));
        x.out.tags();
        Ok(())
    })?;
    x.out.tags();
    Ok(Answer::Written)
}
