//! Policy: which APIs each principal may use, how fast it may move bytes,
//! and how many connections it (and each client address, and the whole
//! process) may hold.
//!
//! `refusal` answers a forbidden request the way Kafka answers an
//! unauthorized principal.

pub(crate) mod refusal;

pub use refusal::RefusalError;
