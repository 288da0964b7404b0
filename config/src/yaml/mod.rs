//! YAML for the configuration: saphyr's parser (pure Rust, YAML 1.2) turns the text into
//! events, and a serde `Deserializer` over those events reads them into the model with
//! serde_yaml 0.9's rules, so files keep their meaning and errors their wording (see
//! `de` for the rules, `scalar` for what `yes`, `007` or `0x1F` mean).
//!
//! Only the first document is read; a second one is an error.

mod de;
pub(crate) mod emit;
mod error;
mod load;
mod scalar;

#[cfg(test)]
mod tests;

pub(crate) use de::Deserializer;
pub(crate) use error::Error;
pub(crate) use load::Document;
