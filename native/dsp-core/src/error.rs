//! Errors of the DSP core. Each maps to one stable `BRIDGE_ERR_DSP_*` code that
//! the Node binding passes through unchanged (see README "Error codes").

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DspError {
    /// A sample rate outside 1000..=192000 Hz.
    InvalidRate,
    /// A resampler quality outside 0..=10.
    InvalidQuality,
    /// The caller-supplied destination cannot hold the output. Checked before any
    /// state changes, so the call can be retried with a larger buffer.
    DstTooSmall,
    /// A frame or payload of the wrong size (e.g. a μ-law frame that is not 160 bytes).
    InvalidFrameSize,
    /// Any other invalid argument (a zero capacity, min delay above max, ...).
    InvalidArgument,
}

impl DspError {
    pub const fn code(self) -> &'static str {
        match self {
            DspError::InvalidRate => "BRIDGE_ERR_DSP_RATE",
            DspError::InvalidQuality => "BRIDGE_ERR_DSP_QUALITY",
            DspError::DstTooSmall => "BRIDGE_ERR_DSP_DST_TOO_SMALL",
            DspError::InvalidFrameSize => "BRIDGE_ERR_DSP_FRAME_SIZE",
            DspError::InvalidArgument => "BRIDGE_ERR_DSP_ARGUMENT",
        }
    }

    pub const fn message(self) -> &'static str {
        match self {
            DspError::InvalidRate => "sample rate must be an integer from 1000 to 192000 Hz",
            DspError::InvalidQuality => "resampler quality must be an integer from 0 to 10",
            DspError::DstTooSmall => "destination buffer is too small for the output",
            DspError::InvalidFrameSize => "frame has the wrong size",
            DspError::InvalidArgument => "invalid argument",
        }
    }
}

impl fmt::Display for DspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for DspError {}

pub type DspResult<T> = Result<T, DspError>;

/// Lowest and highest sample rates any component accepts.
pub const MIN_RATE_HZ: u32 = 1000;
pub const MAX_RATE_HZ: u32 = 192_000;
