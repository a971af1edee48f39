//! napi-rs bindings of dsp-core. Argument conversion only: every algorithm lives in
//! dsp-core. Typed arrays are borrowed for the duration of the call (zero-copy);
//! outputs go into caller-supplied buffers; nothing is allocated per frame.
//!
//! Errors are thrown with the stable `BRIDGE_ERR_DSP_*` code as the message prefix
//! ("CODE: text"); the TS adapter (src/dsp/native-backend.ts) turns them into
//! BridgeError with that code. napi-rs cannot return a custom `code` from a
//! `Result`, and the adapter only parses on the (rare) error path.

use dsp_core::g711::{self, Codec};
use dsp_core::jitter::{JitterBuffer, JitterConfig, JitterStats};
use dsp_core::pipeline::{InboundPipeline, OutboundPipeline};
use dsp_core::resampler::Resampler;
use dsp_core::DspError;
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn to_napi(e: DspError) -> Error {
    Error::new(Status::GenericFailure, format!("{}", e))
}

fn closed() -> Error {
    Error::new(Status::GenericFailure, "BRIDGE_ERR_DSP_CLOSED: used after close()".to_string())
}

fn argument(msg: &str) -> Error {
    Error::new(Status::GenericFailure, format!("BRIDGE_ERR_DSP_ARGUMENT: {msg}"))
}

/// A rate must be an integer in range; 8000.5 or NaN are errors, not truncated.
fn rate(v: f64) -> Result<u32> {
    if v.is_finite() && v.fract() == 0.0 && v >= dsp_core::MIN_RATE_HZ as f64 && v <= dsp_core::MAX_RATE_HZ as f64 {
        Ok(v as u32)
    } else {
        Err(to_napi(DspError::InvalidRate))
    }
}

fn quality(v: f64) -> Result<u32> {
    if v.is_finite() && v.fract() == 0.0 && (0.0..=10.0).contains(&v) {
        Ok(v as u32)
    } else {
        Err(to_napi(DspError::InvalidQuality))
    }
}

fn codec(name: &str) -> Result<Codec> {
    match name {
        "ulaw" => Ok(Codec::Ulaw),
        "alaw" => Ok(Codec::Alaw),
        _ => Err(argument("codec must be 'ulaw' or 'alaw'")),
    }
}

fn non_negative_u32(v: f64, what: &str) -> Result<u32> {
    if v.is_finite() && v.fract() == 0.0 && v >= 0.0 && v <= u32::MAX as f64 {
        Ok(v as u32)
    } else {
        Err(argument(&format!("{what} must be a non-negative integer")))
    }
}

// ---------------------------------------------------------------- G.711

#[napi]
pub fn decode_ulaw(src: Uint8ArraySlice, mut dst: Int16ArraySlice) -> Result<u32> {
    g711::decode_ulaw(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
}

#[napi]
pub fn encode_ulaw(src: Int16ArraySlice, mut dst: Uint8ArraySlice) -> Result<u32> {
    g711::encode_ulaw(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
}

#[napi]
pub fn decode_alaw(src: Uint8ArraySlice, mut dst: Int16ArraySlice) -> Result<u32> {
    g711::decode_alaw(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
}

#[napi]
pub fn encode_alaw(src: Int16ArraySlice, mut dst: Uint8ArraySlice) -> Result<u32> {
    g711::encode_alaw(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
}

/// Which SIMD kernel the resampler picked at run time on this CPU.
#[napi]
pub fn simd_level() -> String {
    dsp_core::resampler::simd_level().to_string()
}

// ---------------------------------------------------------------- Resampler

#[napi]
pub struct NativeResampler {
    // Boxed: close() must free the state now, not when the GC finalizes the JS object
    // (a None of an inline struct still occupies the struct's full size).
    inner: Option<Box<Resampler>>,
}

#[napi]
impl NativeResampler {
    #[napi(constructor)]
    pub fn new(from_hz: f64, to_hz: f64, q: f64) -> Result<Self> {
        let r = Resampler::new(rate(from_hz)?, rate(to_hz)?, quality(q)?).map_err(to_napi)?;
        Ok(NativeResampler { inner: Some(Box::new(r)) })
    }

    fn get(&mut self) -> Result<&mut Resampler> {
        self.inner.as_deref_mut().ok_or_else(closed)
    }

    #[napi(getter)]
    pub fn input_latency(&mut self) -> Result<u32> {
        Ok(self.get()?.input_latency() as u32)
    }

    #[napi(getter)]
    pub fn output_latency(&mut self) -> Result<u32> {
        Ok(self.get()?.output_latency() as u32)
    }

    #[napi]
    pub fn max_output(&mut self, input_samples: f64) -> Result<u32> {
        let n = non_negative_u32(input_samples, "inputSamples")?;
        Ok(self.get()?.max_output_len(n as usize) as u32)
    }

    #[napi]
    pub fn process(&mut self, src: Int16ArraySlice, mut dst: Int16ArraySlice) -> Result<u32> {
        let r = self.get()?;
        r.process(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn flush(&mut self, mut dst: Int16ArraySlice) -> Result<u32> {
        let r = self.get()?;
        r.flush(unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn reset(&mut self) -> Result<()> {
        self.get()?.reset();
        Ok(())
    }

    /// Frees the filter state now (the GC would, later). Idempotent.
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

// ---------------------------------------------------------------- Jitter buffer

#[napi(object)]
pub struct JitterOptions {
    pub codec: Option<String>,
    pub capacity_frames: Option<f64>,
    pub initial_delay_ms: Option<f64>,
    pub min_delay_ms: Option<f64>,
    pub max_delay_ms: Option<f64>,
    pub max_gap_fill_frames: Option<f64>,
}

fn jitter_config(o: Option<JitterOptions>, codec_override: Option<Codec>) -> Result<JitterConfig> {
    let mut cfg = JitterConfig::default();
    if let Some(o) = o {
        if let Some(c) = o.codec {
            cfg.codec = codec(&c)?;
        }
        if let Some(v) = o.capacity_frames {
            cfg.capacity_frames = non_negative_u32(v, "capacityFrames")? as usize;
        }
        if let Some(v) = o.initial_delay_ms {
            cfg.initial_delay_ms = non_negative_u32(v, "initialDelayMs")?;
        }
        if let Some(v) = o.min_delay_ms {
            cfg.min_delay_ms = non_negative_u32(v, "minDelayMs")?;
        }
        if let Some(v) = o.max_delay_ms {
            cfg.max_delay_ms = non_negative_u32(v, "maxDelayMs")?;
        }
        if let Some(v) = o.max_gap_fill_frames {
            cfg.max_gap_fill_frames = non_negative_u32(v, "maxGapFillFrames")?;
        }
    }
    if let Some(c) = codec_override {
        cfg.codec = c;
    }
    Ok(cfg)
}

#[napi(object)]
pub struct JsJitterStats {
    pub frames_in: f64,
    pub frames_out: f64,
    pub duplicate: f64,
    pub late: f64,
    pub lost: f64,
    pub concealed: f64,
    pub resyncs: f64,
    pub buffered_frames: u32,
    pub current_delay_ms: f64,
    pub target_delay_ms: f64,
}

impl From<JitterStats> for JsJitterStats {
    fn from(s: JitterStats) -> Self {
        JsJitterStats {
            frames_in: s.frames_in as f64,
            frames_out: s.frames_out as f64,
            duplicate: s.duplicate as f64,
            late: s.late as f64,
            lost: s.lost as f64,
            concealed: s.concealed as f64,
            resyncs: s.resyncs as f64,
            buffered_frames: s.buffered_frames,
            current_delay_ms: s.current_delay_ms,
            target_delay_ms: s.target_delay_ms,
        }
    }
}

#[napi]
pub struct NativeJitterBuffer {
    // Boxed: close() must free the state now, not when the GC finalizes the JS object
    // (a None of an inline struct still occupies the struct's full size).
    inner: Option<Box<JitterBuffer>>,
}

#[napi]
impl NativeJitterBuffer {
    #[napi(constructor)]
    pub fn new(options: Option<JitterOptions>) -> Result<Self> {
        let jb = JitterBuffer::new(jitter_config(options, None)?).map_err(to_napi)?;
        Ok(NativeJitterBuffer { inner: Some(Box::new(jb)) })
    }

    fn get(&mut self) -> Result<&mut JitterBuffer> {
        self.inner.as_deref_mut().ok_or_else(closed)
    }

    /// seq and timestampMs arrive as JS numbers converted with ToUint32 (they wrap at 2^32).
    #[napi]
    pub fn push(&mut self, payload: Uint8ArraySlice, seq: u32, timestamp_ms: u32, now_ms: f64) -> Result<u32> {
        let jb = self.get()?;
        jb.push(&payload, seq, timestamp_ms, now_ms).map(|r| r as u32).map_err(to_napi)
    }

    #[napi]
    pub fn pop(&mut self, now_ms: f64, mut dst: Int16ArraySlice) -> Result<u32> {
        let jb = self.get()?;
        jb.pop(now_ms, unsafe { dst.as_mut() }).map(|k| k as u32).map_err(to_napi)
    }

    #[napi]
    pub fn pop_forced(&mut self, mut dst: Int16ArraySlice) -> Result<u32> {
        let jb = self.get()?;
        jb.pop_forced(unsafe { dst.as_mut() }).map(|k| k as u32).map_err(to_napi)
    }

    #[napi]
    pub fn stats(&mut self) -> Result<JsJitterStats> {
        Ok(self.get()?.stats().into())
    }

    #[napi]
    pub fn reset(&mut self) -> Result<()> {
        self.get()?.reset();
        Ok(())
    }

    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

// ---------------------------------------------------------------- Pipelines

#[napi]
pub struct NativeInboundPipeline {
    // Boxed: close() must free the state now, not when the GC finalizes the JS object
    // (a None of an inline struct still occupies the struct's full size).
    inner: Option<Box<InboundPipeline>>,
}

#[napi]
impl NativeInboundPipeline {
    #[napi(constructor)]
    pub fn new(to_hz: f64, q: f64, codec_name: String, jitter: Option<JitterOptions>) -> Result<Self> {
        let cfg = jitter_config(jitter, Some(codec(&codec_name)?))?;
        let p = InboundPipeline::new(rate(to_hz)?, quality(q)?, cfg).map_err(to_napi)?;
        Ok(NativeInboundPipeline { inner: Some(Box::new(p)) })
    }

    fn get(&mut self) -> Result<&mut InboundPipeline> {
        self.inner.as_deref_mut().ok_or_else(closed)
    }

    #[napi(getter)]
    pub fn max_frame_output(&mut self) -> Result<u32> {
        Ok(self.get()?.max_frame_output() as u32)
    }

    #[napi(getter)]
    pub fn buffered_frames(&mut self) -> Result<u32> {
        Ok(self.get()?.buffered_frames())
    }

    #[napi]
    pub fn push(&mut self, payload: Uint8ArraySlice, seq: u32, timestamp_ms: u32, now_ms: f64, mut dst: Int16ArraySlice) -> Result<u32> {
        let p = self.get()?;
        p.push(&payload, seq, timestamp_ms, now_ms, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn poll(&mut self, now_ms: f64, mut dst: Int16ArraySlice) -> Result<u32> {
        let p = self.get()?;
        p.poll(now_ms, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn flush(&mut self, mut dst: Int16ArraySlice) -> Result<u32> {
        let p = self.get()?;
        p.flush(unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn stats(&mut self) -> Result<JsJitterStats> {
        Ok(self.get()?.stats().into())
    }

    #[napi]
    pub fn reset(&mut self) -> Result<()> {
        self.get()?.reset();
        Ok(())
    }

    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

#[napi]
pub struct NativeOutboundPipeline {
    // Boxed: close() must free the state now, not when the GC finalizes the JS object
    // (a None of an inline struct still occupies the struct's full size).
    inner: Option<Box<OutboundPipeline>>,
}

#[napi]
impl NativeOutboundPipeline {
    #[napi(constructor)]
    pub fn new(from_hz: f64, q: f64, codec_name: String) -> Result<Self> {
        let p = OutboundPipeline::new(rate(from_hz)?, quality(q)?, codec(&codec_name)?).map_err(to_napi)?;
        Ok(NativeOutboundPipeline { inner: Some(Box::new(p)) })
    }

    fn get(&mut self) -> Result<&mut OutboundPipeline> {
        self.inner.as_deref_mut().ok_or_else(closed)
    }

    #[napi(getter)]
    pub fn pending_samples(&mut self) -> Result<u32> {
        Ok(self.get()?.pending_samples() as u32)
    }

    #[napi]
    pub fn max_output_bytes(&mut self, input_samples: f64) -> Result<u32> {
        let n = non_negative_u32(input_samples, "inputSamples")?;
        Ok(self.get()?.max_output_bytes(n as usize) as u32)
    }

    #[napi]
    pub fn max_flush_bytes(&mut self) -> Result<u32> {
        Ok(self.get()?.max_flush_bytes() as u32)
    }

    #[napi]
    pub fn push(&mut self, src: Int16ArraySlice, mut dst: Uint8ArraySlice) -> Result<u32> {
        let p = self.get()?;
        p.push(&src, unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn flush(&mut self, mut dst: Uint8ArraySlice) -> Result<u32> {
        let p = self.get()?;
        p.flush(unsafe { dst.as_mut() }).map(|n| n as u32).map_err(to_napi)
    }

    #[napi]
    pub fn reset(&mut self) -> Result<()> {
        self.get()?.reset();
        Ok(())
    }

    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}
