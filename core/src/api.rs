//! Kafka API keys and error codes, the versions this proxy understands, and
//! header-version rules.
//!
//! [`ApiKey`] and [`ErrorCode`] are public: errors and close reasons carry
//! them. The version table is the crate's own: only the APIs the proxy
//! decodes beyond the request header are described in it; every other API
//! passes through by length. For each decoded API the table gives the
//! highest version the proxy can parse, which the ApiVersions rewrite uses as
//! a clamp, so a future Kafka version never reaches a parser that does not
//! know it.

/// A Kafka API key (`RequestApiKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiKey(pub i16);

/// The APIs the proxy looks into (every other key passes through by length).
impl ApiKey {
    /// `Produce` (0): from v10 its error responses may name brokers (KIP-951).
    pub const PRODUCE: ApiKey = ApiKey(0);
    /// `Fetch` (1): from v16 its responses may name brokers (KIP-951).
    pub const FETCH: ApiKey = ApiKey(1);
    /// `Metadata` (3): lists the brokers.
    pub const METADATA: ApiKey = ApiKey(3);
    /// `FindCoordinator` (10): names the coordinator broker.
    pub const FIND_COORDINATOR: ApiKey = ApiKey(10);
    /// `SaslHandshake` (17).
    pub const SASL_HANDSHAKE: ApiKey = ApiKey(17);
    /// `ApiVersions` (18): clamped to what the proxy parses.
    pub const API_VERSIONS: ApiKey = ApiKey(18);
    /// `SaslAuthenticate` (36).
    pub const SASL_AUTHENTICATE: ApiKey = ApiKey(36);
    /// `DescribeQuorum` (55): clamped to v1 (v2+ names controller listeners).
    pub const DESCRIBE_QUORUM: ApiKey = ApiKey(55);
    /// `DescribeCluster` (60): lists the brokers.
    pub const DESCRIBE_CLUSTER: ApiKey = ApiKey(60);
    /// `ShareFetch` (78): carries broker addresses; hidden from clients.
    pub const SHARE_FETCH: ApiKey = ApiKey(78);
    /// `ShareAcknowledge` (79): carries broker addresses; hidden from clients.
    pub const SHARE_ACKNOWLEDGE: ApiKey = ApiKey(79);
    /// `OffsetCommit` (8): refused by policy with the group error.
    pub const OFFSET_COMMIT: ApiKey = ApiKey(8);
    /// `CreateTopics` (19).
    pub const CREATE_TOPICS: ApiKey = ApiKey(19);
    /// `DeleteTopics` (20): the API the seed proxy's users forbid most.
    pub const DELETE_TOPICS: ApiKey = ApiKey(20);
    /// `DeleteRecords` (21).
    pub const DELETE_RECORDS: ApiKey = ApiKey(21);
    /// `InitProducerId` (22).
    pub const INIT_PRODUCER_ID: ApiKey = ApiKey(22);
    /// `CreateAcls` (30).
    pub const CREATE_ACLS: ApiKey = ApiKey(30);
    /// `DeleteAcls` (31).
    pub const DELETE_ACLS: ApiKey = ApiKey(31);
    /// `AlterConfigs` (33).
    pub const ALTER_CONFIGS: ApiKey = ApiKey(33);
    /// `CreatePartitions` (37).
    pub const CREATE_PARTITIONS: ApiKey = ApiKey(37);
    /// `DeleteGroups` (42).
    pub const DELETE_GROUPS: ApiKey = ApiKey(42);
    /// `IncrementalAlterConfigs` (44).
    pub const INCREMENTAL_ALTER_CONFIGS: ApiKey = ApiKey(44);
    /// `AlterPartitionReassignments` (45).
    pub const ALTER_PARTITION_REASSIGNMENTS: ApiKey = ApiKey(45);
    /// `OffsetDelete` (47).
    pub const OFFSET_DELETE: ApiKey = ApiKey(47);
    /// `AlterUserScramCredentials` (51).
    pub const ALTER_USER_SCRAM_CREDENTIALS: ApiKey = ApiKey(51);
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "api_key({})", self.0),
        }
    }
}

impl ApiKey {
    /// Kafka's name for the well-known keys, for logs and metrics.
    pub fn name(self) -> Option<&'static str> {
        API_NAMES.iter().find(|(key, _)| *key == self.0).map(|(_, name)| *name)
    }

    /// The key Kafka calls `name` (`DeleteTopics`), compared ASCII
    /// case-insensitively, for configurations that name APIs.
    pub fn from_name(name: &str) -> Option<ApiKey> {
        API_NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(key, _)| ApiKey(*key))
    }

    /// Every key Kafka names, in key order (for error messages and listings).
    pub fn named() -> impl Iterator<Item = (ApiKey, &'static str)> {
        API_NAMES.iter().map(|(key, name)| (ApiKey(*key), *name))
    }
}

/// Names of the public API keys (Kafka 4.1), for logs and metrics.
const API_NAMES: &[(i16, &str)] = &[
    (0, "Produce"),
    (1, "Fetch"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (8, "OffsetCommit"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (11, "JoinGroup"),
    (12, "Heartbeat"),
    (13, "LeaveGroup"),
    (14, "SyncGroup"),
    (15, "DescribeGroups"),
    (16, "ListGroups"),
    (17, "SaslHandshake"),
    (18, "ApiVersions"),
    (19, "CreateTopics"),
    (20, "DeleteTopics"),
    (21, "DeleteRecords"),
    (22, "InitProducerId"),
    (23, "OffsetForLeaderEpoch"),
    (24, "AddPartitionsToTxn"),
    (25, "AddOffsetsToTxn"),
    (26, "EndTxn"),
    (27, "WriteTxnMarkers"),
    (28, "TxnOffsetCommit"),
    (29, "DescribeAcls"),
    (30, "CreateAcls"),
    (31, "DeleteAcls"),
    (32, "DescribeConfigs"),
    (33, "AlterConfigs"),
    (34, "AlterReplicaLogDirs"),
    (35, "DescribeLogDirs"),
    (36, "SaslAuthenticate"),
    (37, "CreatePartitions"),
    (38, "CreateDelegationToken"),
    (39, "RenewDelegationToken"),
    (40, "ExpireDelegationToken"),
    (41, "DescribeDelegationToken"),
    (42, "DeleteGroups"),
    (43, "ElectLeaders"),
    (44, "IncrementalAlterConfigs"),
    (45, "AlterPartitionReassignments"),
    (46, "ListPartitionReassignments"),
    (47, "OffsetDelete"),
    (48, "DescribeClientQuotas"),
    (49, "AlterClientQuotas"),
    (50, "DescribeUserScramCredentials"),
    (51, "AlterUserScramCredentials"),
    (55, "DescribeQuorum"),
    (57, "UpdateFeatures"),
    (60, "DescribeCluster"),
    (61, "DescribeProducers"),
    (64, "UnregisterBroker"),
    (65, "DescribeTransactions"),
    (66, "ListTransactions"),
    (68, "ConsumerGroupHeartbeat"),
    (69, "ConsumerGroupDescribe"),
    (71, "GetTelemetrySubscriptions"),
    (72, "PushTelemetry"),
    (74, "ListConfigResources"),
    (75, "DescribeTopicPartitions"),
    (76, "ShareGroupHeartbeat"),
    (77, "ShareGroupDescribe"),
    (78, "ShareFetch"),
    (79, "ShareAcknowledge"),
];

/// What the proxy does with an API beyond the request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The API.
    pub key: ApiKey,
    /// The highest version the proxy parses; ApiVersions is clamped to it.
    pub max_version: i16,
    /// The first flexible (KIP-482) version.
    pub flexible_from: i16,
}

/// Every API the proxy decodes past the request header, with the highest
/// version it understands. ApiVersions responses are clamped to these.
pub(crate) const DECODED: &[Decoded] = &[
    Decoded { key: ApiKey::PRODUCE, max_version: 13, flexible_from: 9 },
    Decoded { key: ApiKey::FETCH, max_version: 18, flexible_from: 12 },
    Decoded { key: ApiKey::METADATA, max_version: 13, flexible_from: 9 },
    Decoded { key: ApiKey::FIND_COORDINATOR, max_version: 6, flexible_from: 3 },
    Decoded { key: ApiKey::SASL_HANDSHAKE, max_version: 1, flexible_from: i16::MAX },
    Decoded { key: ApiKey::API_VERSIONS, max_version: 4, flexible_from: 3 },
    Decoded { key: ApiKey::SASL_AUTHENTICATE, max_version: 2, flexible_from: 2 },
    Decoded { key: ApiKey::DESCRIBE_CLUSTER, max_version: 2, flexible_from: 0 },
    // v2+ (KIP-853) answers with controller listener addresses the proxy
    // cannot route to; v0–1 carry none.
    Decoded { key: ApiKey::DESCRIBE_QUORUM, max_version: 1, flexible_from: 0 },
];

/// The decoding description of `key`, if the proxy decodes it.
pub(crate) fn decoded(key: ApiKey) -> Option<&'static Decoded> {
    DECODED.iter().find(|d| d.key == key)
}

/// APIs that carry broker addresses the proxy cannot rewrite; they are
/// removed from ApiVersions so no client ever uses them through the proxy.
/// ShareFetch/ShareAcknowledge carry KIP-951 `NodeEndpoints` like Fetch.
pub(crate) const HIDDEN: &[ApiKey] = &[ApiKey::SHARE_FETCH, ApiKey::SHARE_ACKNOWLEDGE];

/// True when `version` of a decoded API uses flexible encodings.
pub(crate) fn is_flexible(d: &Decoded, version: i16) -> bool {
    version >= d.flexible_from
}

/// The response header version for a decoded API: v1 (with tagged fields)
/// for flexible versions, v0 otherwise, and always v0 for ApiVersions
/// (KIP-511: clients must read it before they know the broker's versions).
pub(crate) fn response_header_has_tags(d: &Decoded, version: i16) -> bool {
    d.key != ApiKey::API_VERSIONS && is_flexible(d, version)
}

/// A Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

/// The error codes the proxy itself sends or interprets.
impl ErrorCode {
    /// No error (0).
    pub const NONE: ErrorCode = ErrorCode(0);
    /// `COORDINATOR_NOT_AVAILABLE` (15): sent for a coordinator the proxy cannot expose.
    pub const COORDINATOR_NOT_AVAILABLE: ErrorCode = ErrorCode(15);
    /// `UNSUPPORTED_SASL_MECHANISM` (33).
    pub const UNSUPPORTED_SASL_MECHANISM: ErrorCode = ErrorCode(33);
    /// `ILLEGAL_SASL_STATE` (34).
    pub const ILLEGAL_SASL_STATE: ErrorCode = ErrorCode(34);
    /// `UNSUPPORTED_VERSION` (35).
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(35);
    /// `SASL_AUTHENTICATION_FAILED` (58).
    pub const SASL_AUTHENTICATION_FAILED: ErrorCode = ErrorCode(58);
    /// `CLUSTER_AUTHORIZATION_FAILED` (31).
    pub const CLUSTER_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(31);
    /// `TOPIC_AUTHORIZATION_FAILED` (29).
    pub const TOPIC_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(29);
    /// `GROUP_AUTHORIZATION_FAILED` (30).
    pub const GROUP_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(30);
    /// `INVALID_REQUEST` (42).
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(42);
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (53).
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ErrorCode = ErrorCode(53);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert_eq!(ApiKey::METADATA.to_string(), "Metadata(3)");
        assert_eq!(ApiKey(999).to_string(), "api_key(999)");
        assert_eq!(ApiKey::from_name("DeleteTopics"), Some(ApiKey::DELETE_TOPICS));
        assert_eq!(ApiKey::from_name("deletetopics"), Some(ApiKey::DELETE_TOPICS));
        assert_eq!(ApiKey::from_name("Delete"), None);
        assert_eq!(ApiKey::named().count(), API_NAMES.len());
    }

    #[test]
    fn api_versions_response_header_is_always_v0() {
        let av = decoded(ApiKey::API_VERSIONS).expect("decoded");
        assert!(!response_header_has_tags(av, 3));
        let md = decoded(ApiKey::METADATA).expect("decoded");
        assert!(response_header_has_tags(md, 9));
        assert!(!response_header_has_tags(md, 8));
    }
}
