//! napi-rs bindings of dsp-core. Argument conversion only: every algorithm lives in
//! dsp-core. Typed arrays are borrowed for the duration of the call (zero-copy);
//! outputs go into caller-supplied buffers. Errors are thrown with the stable
//! `BRIDGE_ERR_DSP_*` code as the message prefix ("CODE: text"); the TS adapter
//! (src/dsp/native-backend.ts) turns them into BridgeError with that code.

use napi::bindgen_prelude::*;
use napi_derive::napi;

fn to_napi(e: dsp_core::DspError) -> Error {
    Error::new(Status::GenericFailure, format!("{}", e))
}

#[napi]
pub fn decode_ulaw(src: Uint8ArraySlice, mut dst: Int16ArraySlice) -> Result<u32> {
    let d = unsafe { dst.as_mut() };
    dsp_core::g711::decode_ulaw(&src, d).map(|n| n as u32).map_err(to_napi)
}
