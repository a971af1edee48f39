//! Frame pipelines: one call per 20 ms frame per direction, no allocation after `new`.
//!
//! ```text
//! inbound  (caller → agent):  G.711 frame ─► JitterBuffer (reorder, gaps, PLC, decode) ─► 8 kHz PCM ─► Resampler ─► PCM16 @ to_hz
//! outbound (agent → caller):  PCM16 @ from_hz, any chunk size ─► Resampler ─► 8 kHz PCM accumulator ─► G.711 encode, exact 160-byte frames
//! ```
//!
//! Inbound releases frames only while the destination has room for a whole resampled
//! frame; anything that does not fit stays in the jitter buffer for the next call
//! (`poll`/`flush`), so a short destination never loses audio. Outbound checks its
//! destination against a state-independent bound before touching any state.

use crate::error::{DspError, DspResult};
use crate::g711::Codec;
use crate::jitter::{FrameKind, JitterBuffer, JitterConfig, JitterStats};
use crate::resampler::Resampler;
use crate::FRAME_SAMPLES_8K;

const RATE_8K: u32 = 8000;
/// Outbound input is resampled in blocks of at most this many samples so the scratch
/// buffer is fixed-size whatever chunk size the agent sends.
const OUT_BLOCK: usize = 1920;

pub struct InboundPipeline {
    jb: JitterBuffer,
    rs: Option<Resampler>,
    pcm: [i16; FRAME_SAMPLES_8K],
    to_hz: u32,
    max_frame_output: usize,
    tail_pending: bool,
}

impl InboundPipeline {
    pub fn new(to_hz: u32, quality: u32, cfg: JitterConfig) -> DspResult<InboundPipeline> {
        let rs = if to_hz == RATE_8K {
            None
        } else {
            Some(Resampler::new(RATE_8K, to_hz, quality)?)
        };
        let jb = JitterBuffer::new(cfg)?;
        let max_frame_output = match &rs {
            Some(r) => r.max_output_len(FRAME_SAMPLES_8K),
            None => FRAME_SAMPLES_8K,
        };
        Ok(InboundPipeline { jb, rs, pcm: [0; FRAME_SAMPLES_8K], to_hz, max_frame_output, tail_pending: false })
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Most samples one released frame can produce; size destinations as multiples of it.
    pub fn max_frame_output(&self) -> usize {
        self.max_frame_output
    }

    /// Samples the final `flush` may add after the last frame (the resampler tail).
    pub fn tail_len(&self) -> usize {
        self.rs.as_ref().map_or(0, |r| r.flush_len())
    }

    pub fn buffered_frames(&self) -> u32 {
        self.jb.stats().buffered_frames
    }

    /// Pushes one frame and releases every frame now due, as many as fit in `out`.
    pub fn push(&mut self, payload: &[u8], seq: u32, timestamp_ms: u32, now_ms: f64, out: &mut [i16]) -> DspResult<usize> {
        if out.len() < self.max_frame_output {
            return Err(DspError::DstTooSmall);
        }
        self.jb.push(payload, seq, timestamp_ms, now_ms)?;
        self.tail_pending = true;
        self.release(out, Some(now_ms))
    }

    /// Releases frames whose gap deadline has passed.
    pub fn poll(&mut self, now_ms: f64, out: &mut [i16]) -> DspResult<usize> {
        if out.len() < self.max_frame_output {
            return Err(DspError::DstTooSmall);
        }
        self.release(out, Some(now_ms))
    }

    /// Releases everything held (gaps concealed), then the resampler tail once it fits.
    /// Call until it returns 0 if `out` is short.
    pub fn flush(&mut self, out: &mut [i16]) -> DspResult<usize> {
        if out.len() < self.max_frame_output {
            return Err(DspError::DstTooSmall);
        }
        let mut written = self.release(out, None)?;
        if self.jb.stats().buffered_frames == 0 && self.tail_pending {
            if let Some(rs) = self.rs.as_mut() {
                if out.len() - written >= rs.flush_len() {
                    written += rs.flush(&mut out[written..])?;
                    self.tail_pending = false;
                }
            } else {
                self.tail_pending = false;
            }
        }
        Ok(written)
    }

    fn release(&mut self, out: &mut [i16], now_ms: Option<f64>) -> DspResult<usize> {
        let mut written = 0;
        while out.len() - written >= self.max_frame_output {
            let kind = match now_ms {
                Some(now) => self.jb.pop(now, &mut self.pcm)?,
                None => self.jb.pop_forced(&mut self.pcm)?,
            };
            if kind == FrameKind::None {
                break;
            }
            written += match self.rs.as_mut() {
                Some(rs) => rs.process(&self.pcm, &mut out[written..])?,
                None => {
                    out[written..written + FRAME_SAMPLES_8K].copy_from_slice(&self.pcm);
                    FRAME_SAMPLES_8K
                }
            };
        }
        Ok(written)
    }

    pub fn stats(&self) -> JitterStats {
        self.jb.stats()
    }

    pub fn reset(&mut self) {
        self.jb.reset();
        if let Some(rs) = self.rs.as_mut() {
            rs.reset();
        }
        self.tail_pending = false;
    }
}

pub struct OutboundPipeline {
    rs: Option<Resampler>,
    codec: Codec,
    from_hz: u32,
    /// 8 kHz PCM: `pending` samples waiting for a full frame, then room for one block's output.
    acc: Vec<i16>,
    pending: usize,
}

impl OutboundPipeline {
    pub fn new(from_hz: u32, quality: u32, codec: Codec) -> DspResult<OutboundPipeline> {
        let rs = if from_hz == RATE_8K {
            // Quality is still validated so a bad option fails the same way at every rate.
            if quality > 10 {
                return Err(DspError::InvalidQuality);
            }
            None
        } else {
            Some(Resampler::new(from_hz, RATE_8K, quality)?)
        };
        let block_out = match &rs {
            Some(r) => r.max_output_len(OUT_BLOCK).max(r.flush_len()),
            None => OUT_BLOCK,
        };
        let acc = vec![0i16; FRAME_SAMPLES_8K + block_out];
        Ok(OutboundPipeline { rs, codec, from_hz, acc, pending: 0 })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn pending_samples(&self) -> usize {
        self.pending
    }

    fn block_max(&self, n: usize) -> usize {
        match &self.rs {
            Some(r) => r.max_output_len(n),
            None => n,
        }
    }

    /// State-independent upper bound of the bytes `push` writes for `input_len` samples.
    pub fn max_output_bytes(&self, input_len: usize) -> usize {
        let full = input_len / OUT_BLOCK;
        let rest = input_len % OUT_BLOCK;
        let mut samples = (FRAME_SAMPLES_8K - 1) + full * self.block_max(OUT_BLOCK);
        if rest > 0 {
            samples += self.block_max(rest);
        }
        samples / FRAME_SAMPLES_8K * FRAME_SAMPLES_8K
    }

    /// Bytes `flush` may write: the pending partial frame plus the resampler tail, padded.
    pub fn max_flush_bytes(&self) -> usize {
        let tail = self.rs.as_ref().map_or(0, |r| r.flush_len());
        (FRAME_SAMPLES_8K - 1 + tail).div_ceil(FRAME_SAMPLES_8K) * FRAME_SAMPLES_8K
    }

    pub fn push(&mut self, src: &[i16], out: &mut [u8]) -> DspResult<usize> {
        if out.len() < self.max_output_bytes(src.len()) {
            return Err(DspError::DstTooSmall);
        }
        let mut written = 0;
        for block in src.chunks(OUT_BLOCK) {
            let n = match self.rs.as_mut() {
                Some(rs) => rs.process(block, &mut self.acc[self.pending..])?,
                None => {
                    self.acc[self.pending..self.pending + block.len()].copy_from_slice(block);
                    block.len()
                }
            };
            self.pending += n;
            written += self.emit_frames(&mut out[written..])?;
        }
        Ok(written)
    }

    /// Encodes every complete frame in the accumulator and keeps the remainder (< 160).
    fn emit_frames(&mut self, out: &mut [u8]) -> DspResult<usize> {
        let frames = self.pending / FRAME_SAMPLES_8K;
        let bytes = frames * FRAME_SAMPLES_8K;
        if bytes > 0 {
            self.codec.encode(&self.acc[..bytes], &mut out[..bytes])?;
            self.acc.copy_within(bytes..self.pending, 0);
            self.pending -= bytes;
        }
        Ok(bytes)
    }

    pub fn flush(&mut self, out: &mut [u8]) -> DspResult<usize> {
        if out.len() < self.max_flush_bytes() {
            return Err(DspError::DstTooSmall);
        }
        if let Some(rs) = self.rs.as_mut() {
            let n = rs.flush(&mut self.acc[self.pending..])?;
            self.pending += n;
        }
        let mut written = self.emit_frames(out)?;
        if self.pending > 0 {
            for s in &mut self.acc[self.pending..FRAME_SAMPLES_8K] {
                *s = 0;
            }
            self.codec.encode(&self.acc[..FRAME_SAMPLES_8K], &mut out[written..written + FRAME_SAMPLES_8K])?;
            written += FRAME_SAMPLES_8K;
            self.pending = 0;
        }
        Ok(written)
    }

    pub fn reset(&mut self) {
        self.pending = 0;
        if let Some(rs) = self.rs.as_mut() {
            rs.reset();
        }
    }
}
