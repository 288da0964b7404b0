//! The response rewriters against an independent implementation of the
//! protocol (`kafka-protocol`, generated from Kafka's message schemas), and
//! against hostile and malformed bodies.

mod malformed;
mod oracle;
mod rewrite_oracle;
mod stream_oracle;
