//! placeholder: replaced by the resampler implementation
