//! placeholder: replaced by the jitter implementation
