//! Onyx core: the ToteSys → S3 → warehouse pipeline as a library. The Lambda binaries and the
//! `onyx` CLI are thin adapters around these modules.

pub mod config;
pub mod db;
pub mod extract;
pub mod frames;
pub mod handlers;
pub mod key_ranges;
pub mod keys;
pub mod lake;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod load;
pub mod ops;
pub mod pgpass;
pub mod pipeline;
pub mod runs;
pub mod seed;
pub mod simulate;
pub mod stack;
pub mod storage;
pub mod tables;
pub mod telemetry;
pub mod transform;
pub mod values;
pub mod verify;
pub mod warehouse;

pub use chrono;
/// The PostgreSQL client type the stages take.
pub use tokio_postgres;
