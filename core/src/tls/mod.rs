//! TLS on both sides, driven through rustls' unbuffered API.
