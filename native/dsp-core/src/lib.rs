//! voice-bridge DSP core. Pure Rust, no Node: `cargo test` runs without it.
//!
//! Every 20 ms frame of every call crosses this crate twice:
//! inbound  (8 kHz G.711 frame → jitter buffer/PLC → PCM16 at the agent's rate) and
//! outbound (PCM16 at any rate, any chunk size → 8 kHz G.711, re-framed to exact 160-byte frames).
//! Nothing on the frame path allocates: outputs go into caller-supplied slices.

pub mod error;
pub mod g711;
pub mod jitter;
pub mod pipeline;
pub mod plc;
pub mod resampler;

pub use error::{DspError, DspResult, MAX_RATE_HZ, MIN_RATE_HZ};

/// Samples in one 20 ms frame at 8 kHz (= bytes of one G.711 frame).
pub const FRAME_SAMPLES_8K: usize = 160;
/// Duration of one telephony frame.
pub const FRAME_MS: u32 = 20;
