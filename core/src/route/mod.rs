//! Routing: which upstream a connection goes to.

pub mod sni;
