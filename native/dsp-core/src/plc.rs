//! placeholder: replaced by the plc implementation
