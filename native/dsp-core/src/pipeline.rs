//! placeholder: replaced by the pipeline implementation
