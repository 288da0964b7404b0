//! The `kafka-proxy` command.
fn main() {}
