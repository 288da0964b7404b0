//! Drives `kafka-proxy-core` with tokio.
