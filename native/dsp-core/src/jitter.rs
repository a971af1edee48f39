//! Jitter buffer for 20 ms 8 kHz G.711 frames, with packet-loss concealment
//! (`crate::plc`). The TypeScript twin `src/dsp/ts/jitter-buffer.ts` is the same
//! algorithm; for the same calls both produce bit-identical PCM and identical stats
//! (checked by a shared checksum, see the `parity_*` tests).
//!
//! # Why this shape
//! Twilio Media Streams arrive over TCP: reordering is rare, but stalls followed by
//! bursts, and timestamp gaps (upstream loss), are common. The consumer (an AI agent)
//! takes audio faster than real time. So, unlike a playout buffer (NetEQ, Speex,
//! pjmedia), this buffer never *paces* audio and never delays in-order audio:
//!
//! * **Release is driven by arrivals.** `pop` releases position `next` as soon as its
//!   frame is held. A missing position is waited for only while a later frame is held,
//!   and only until `missing_since + target` on the caller's `now_ms` clock, where
//!   `missing_since` is the arrival time of the first later frame. Then it is declared
//!   lost and concealed. Since nothing waits on a playout clock, sender/receiver clock
//!   skew cannot accumulate delay.
//! * **Position** = round(unwrapped(timestamp − first) / 20 ms). Timestamps are u32 ms
//!   and wrap; they are unwrapped RTP-style against the highest timestamp seen (the
//!   signed 32-bit difference). `seq` is accepted for the interface but positions come
//!   from timestamps (Twilio's timestamps are authoritative; a sequence number cannot
//!   tell how much audio an upstream gap lost).
//! * **Adaptive target, NetEQ-style** (WebRTC `neteq/delay_manager.cc`: NetEQ's delay manager keeps
//!   a forgetting histogram of relative arrival delay in 20 ms buckets, forget factor
//!   0.983, and targets its 0.95 quantile). Here the measured quantity is *reorder
//!   lateness*: how long after the first later frame a frame arrived (in-order frames
//!   count 0; a frame that arrives after its position was concealed counts with the
//!   lateness it reached, capped at the top bucket). Bucket 0 is exactly 0 ms, bucket k
//!   is (20(k−1), 20k] ms; target = 20 ms × the 0.95-quantile bucket, clamped to
//!   [min, max]. Starting target: `initial_delay_ms`, with the histogram's whole mass
//!   in that delay's bucket (0.983^n < 0.05 after about 175 in-order frames, 3.5 s, so
//!   the start value washes out; NetEQ starts at 80 ms the same way). Once adapting, the
//!   target moves in 20 ms steps. A 0.95 quantile tolerates
//!   ≈5 % late frames, close to SpeexDSP's 4 % default max late rate (`libspeexdsp/jitter.c`).
//! * **Gaps**: a forward jump of ≤ `max_gap_fill_frames` missing frames is filled:
//!   the PLC for the first 60 ms (`crate::plc`: one pitch period repeated, fading from
//!   10 ms; what it conceals stays in its history, so a loss soon after another sees a
//!   continuous signal), then `Silence` (zeros), all counted `concealed`; the
//!   positions count `lost` (a frame that later arrives `Late` is taken back out of
//!   `lost`). A longer forward jump, or a backward jump beyond
//!   max(capacity, max_gap_fill_frames) frames (a stream restart), is a **Resync**:
//!   start afresh at that frame (frames still held are discarded and count as lost).
//! * **Bounded memory**: a ring of `capacity_frames` slots indexed by position mod
//!   capacity, each tagged with the position it describes. A frame at or beyond
//!   `next + capacity` makes every position before `index − capacity + 1` due at once
//!   (`force_until`), so the caller's next pops conceal that gap; a held frame whose
//!   slot is needed before it was popped is overwritten and later concealed (counted
//!   lost) — the SpeexDSP rule of dropping the oldest when full. Nothing allocates
//!   after `new`.
//!
//! ```text
//! per slot (tagged with a position p):
//!   EMPTY ──later frame arrives──► MISSING(since) ──frame arrives──► HELD(arrival)
//!     │                               │ now ≥ since+target, or p < force_until │
//!     └──frame arrives──► HELD        ▼  (pop: PLC / silence)               pop ▼
//!                               CONCEALED ──frame arrives (Late)──► LATE_SEEN   RELEASED
//! push of a released position: RELEASED/LATE_SEEN → Duplicate; CONCEALED or unknown → Late
//! ```

use crate::error::{DspError, DspResult};
use crate::g711::{Codec, ALAW_DECODE, ULAW_DECODE};
use crate::plc::Plc;
use crate::FRAME_SAMPLES_8K as FRAME;

const FRAME_MS: f64 = 20.0;
/// NetEQ DelayManager forget factor (WebRTC `modules/audio_coding/neteq/delay_manager.cc`).
const FORGET: f64 = 0.983;
const QUANTILE: f64 = 0.95;
pub const MAX_CAPACITY_FRAMES: usize = 3000;
pub const MAX_DELAY_LIMIT_MS: u32 = 10_000;
pub const MAX_GAP_FILL_LIMIT: u32 = 3000;

const EMPTY: u8 = 0;
const MISSING: u8 = 1;
const HELD: u8 = 2;
const RELEASED: u8 = 3;
const CONCEALED: u8 = 4;
const LATE_SEEN: u8 = 5;
const NO_TAG: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    pub codec: Codec,
    pub capacity_frames: usize,
    pub initial_delay_ms: u32,
    pub min_delay_ms: u32,
    pub max_delay_ms: u32,
    pub max_gap_fill_frames: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            codec: Codec::Ulaw,
            capacity_frames: 50,
            initial_delay_ms: 20,
            min_delay_ms: 0,
            max_delay_ms: 200,
            max_gap_fill_frames: 50,
        }
    }
}

#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult {
    Accepted = 0,
    Duplicate = 1,
    Late = 2,
    Resync = 3,
}

#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    None = 0,
    Normal = 1,
    Concealed = 2,
    Silence = 3,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct JitterStats {
    /// Every push with a valid payload (including duplicates, late frames, resyncs).
    pub frames_in: u64,
    /// Every frame popped (normal + concealed + silence).
    pub frames_out: u64,
    pub duplicate: u64,
    /// Frames that arrived after their position was released (concealed or forgotten).
    pub late: u64,
    /// Positions concealed whose frame never arrived, plus frames overwritten on ring
    /// overflow or discarded at a resync.
    pub lost: u64,
    /// Frames popped as `Concealed` or `Silence`.
    pub concealed: u64,
    pub resyncs: u64,
    pub buffered_frames: u32,
    /// Time the last released real frame spent in the buffer (release − arrival).
    pub current_delay_ms: f64,
    pub target_delay_ms: f64,
}

pub struct JitterBuffer {
    cfg: JitterConfig,
    decode: &'static [i16; 256],
    cap: usize,
    payload: Vec<u8>,
    tag: Vec<i64>,
    state: Vec<u8>,
    time: Vec<f64>,
    hist: Vec<f64>,
    plc: Plc,
    started: bool,
    top_ts: u32,
    top_unw: i64,
    highest: i64,
    next: i64,
    force_until: i64,
    held: u32,
    last_now: f64,
    target: f64,
    st: JitterStats,
}

impl JitterBuffer {
    pub fn new(cfg: JitterConfig) -> DspResult<JitterBuffer> {
        if cfg.capacity_frames == 0
            || cfg.capacity_frames > MAX_CAPACITY_FRAMES
            || cfg.min_delay_ms > cfg.max_delay_ms
            || cfg.max_delay_ms > MAX_DELAY_LIMIT_MS
            || cfg.initial_delay_ms < cfg.min_delay_ms
            || cfg.initial_delay_ms > cfg.max_delay_ms
            || cfg.max_gap_fill_frames > MAX_GAP_FILL_LIMIT
        {
            return Err(DspError::InvalidArgument);
        }
        let cap = cfg.capacity_frames;
        let buckets = (cfg.max_delay_ms as usize).div_ceil(20) + 1;
        let mut jb = JitterBuffer {
            cfg,
            decode: match cfg.codec {
                Codec::Ulaw => &ULAW_DECODE,
                Codec::Alaw => &ALAW_DECODE,
            },
            cap,
            payload: vec![0; cap * FRAME],
            tag: vec![NO_TAG; cap],
            state: vec![EMPTY; cap],
            time: vec![0.0; cap],
            hist: vec![0.0; buckets],
            plc: Plc::new(),
            started: false,
            top_ts: 0,
            top_unw: 0,
            highest: 0,
            next: 0,
            force_until: 0,
            held: 0,
            last_now: 0.0,
            target: 0.0,
            st: JitterStats::default(),
        };
        jb.reset();
        Ok(jb)
    }

    pub fn reset(&mut self) {
        self.tag.fill(NO_TAG);
        self.state.fill(EMPTY);
        self.time.fill(0.0);
        self.hist.fill(0.0);
        let b = self.bucket(self.cfg.initial_delay_ms as f64);
        self.hist[b] = 1.0;
        self.plc.reset();
        self.started = false;
        self.top_ts = 0;
        self.top_unw = 0;
        self.highest = 0;
        self.next = 0;
        self.force_until = 0;
        self.held = 0;
        self.last_now = 0.0;
        self.target = self.cfg.initial_delay_ms as f64;
        self.st = JitterStats::default();
    }

    pub fn stats(&self) -> JitterStats {
        let mut s = self.st;
        s.buffered_frames = self.held;
        s.target_delay_ms = self.target;
        s
    }

    pub fn push(&mut self, payload: &[u8], seq: u32, timestamp_ms: u32, now_ms: f64) -> DspResult<PushResult> {
        if payload.len() != FRAME {
            return Err(DspError::InvalidFrameSize);
        }
        if !now_ms.is_finite() {
            return Err(DspError::InvalidArgument);
        }
        let _ = seq; // positions come from timestamps (see header)
        self.st.frames_in += 1;
        self.last_now = now_ms;
        if !self.started {
            self.start_at(payload, timestamp_ms, now_ms);
            return Ok(PushResult::Accepted);
        }
        let diff = timestamp_ms.wrapping_sub(self.top_ts) as i32 as i64;
        let unw = self.top_unw + diff;
        let index = (unw + 10).div_euclid(20);
        let back_limit = self.cap.max(self.cfg.max_gap_fill_frames as usize) as i64;
        if index - self.highest - 1 > self.cfg.max_gap_fill_frames as i64 || self.highest - index > back_limit {
            self.st.resyncs += 1;
            self.st.lost += self.held as u64;
            self.start_at(payload, timestamp_ms, now_ms);
            return Ok(PushResult::Resync);
        }
        if diff > 0 {
            self.top_ts = timestamp_ms;
            self.top_unw = unw;
        }
        let s = self.slot(index);
        if index < self.next {
            if self.tag[s] == index && self.state[s] != EMPTY {
                if self.state[s] == CONCEALED {
                    self.state[s] = LATE_SEEN;
                    self.st.late += 1;
                    self.st.lost -= 1;
                    let lateness = now_ms - self.time[s];
                    self.record(lateness);
                    return Ok(PushResult::Late);
                }
                self.st.duplicate += 1;
                return Ok(PushResult::Duplicate);
            }
            self.st.late += 1;
            self.record(f64::INFINITY);
            return Ok(PushResult::Late);
        }
        let mut lateness = 0.0;
        if self.tag[s] == index {
            match self.state[s] {
                HELD => {
                    self.st.duplicate += 1;
                    return Ok(PushResult::Duplicate);
                }
                MISSING => lateness = now_ms - self.time[s],
                _ => {}
            }
        } else if self.tag[s] > index && (self.state[s] == HELD || self.state[s] == MISSING) {
            // The slot already belongs to a newer position (ring overflow): too old to keep.
            self.st.late += 1;
            self.record(f64::INFINITY);
            return Ok(PushResult::Late);
        }
        let cap = self.cap as i64;
        if index >= self.next + cap && index - cap + 1 > self.force_until {
            self.force_until = index - cap + 1;
        }
        if index > self.highest {
            let mut p = self.highest + 1;
            if p < index - cap + 1 {
                p = index - cap + 1;
            }
            if p < self.next {
                p = self.next;
            }
            while p < index {
                let q = self.slot(p);
                self.claim(q, p, MISSING, now_ms);
                p += 1;
            }
            self.highest = index;
        }
        self.claim(s, index, HELD, now_ms);
        self.held += 1;
        self.payload[s * FRAME..(s + 1) * FRAME].copy_from_slice(payload);
        self.record(lateness);
        Ok(PushResult::Accepted)
    }

    pub fn pop(&mut self, now_ms: f64, out: &mut [i16]) -> DspResult<FrameKind> {
        if out.len() < FRAME {
            return Err(DspError::DstTooSmall);
        }
        if !now_ms.is_finite() {
            return Err(DspError::InvalidArgument);
        }
        self.last_now = now_ms;
        if !self.started || self.held == 0 {
            return Ok(FrameKind::None);
        }
        let s = self.slot(self.next);
        let tagged = self.tag[s] == self.next;
        if tagged && self.state[s] == HELD {
            return Ok(self.release(s, now_ms, out));
        }
        let due = self.next < self.force_until
            || !(tagged && self.state[s] == MISSING)
            || now_ms >= self.time[s] + self.target;
        if !due {
            return Ok(FrameKind::None);
        }
        Ok(self.conceal(s, out))
    }

    pub fn pop_forced(&mut self, out: &mut [i16]) -> DspResult<FrameKind> {
        if out.len() < FRAME {
            return Err(DspError::DstTooSmall);
        }
        if !self.started || self.held == 0 {
            return Ok(FrameKind::None);
        }
        let s = self.slot(self.next);
        if self.tag[s] == self.next && self.state[s] == HELD {
            let now = self.last_now;
            return Ok(self.release(s, now, out));
        }
        Ok(self.conceal(s, out))
    }

    fn start_at(&mut self, payload: &[u8], ts: u32, now_ms: f64) {
        self.tag.fill(NO_TAG);
        self.state.fill(EMPTY);
        self.started = true;
        self.top_ts = ts;
        self.top_unw = 0;
        self.highest = 0;
        self.next = 0;
        self.force_until = 0;
        self.state[0] = HELD;
        self.tag[0] = 0;
        self.time[0] = now_ms;
        self.payload[..FRAME].copy_from_slice(payload);
        self.held = 1;
        self.record(0.0);
    }

    #[inline]
    fn slot(&self, p: i64) -> usize {
        p.rem_euclid(self.cap as i64) as usize
    }

    /// Takes slot `s` for position `p`; a frame still held there for another position
    /// is overwritten (ring overflow) and will be concealed when its position is due.
    fn claim(&mut self, s: usize, p: i64, state: u8, now_ms: f64) {
        if self.state[s] == HELD && self.tag[s] != p {
            self.held -= 1;
        }
        self.tag[s] = p;
        self.state[s] = state;
        self.time[s] = now_ms;
    }

    fn release(&mut self, s: usize, now_ms: f64, out: &mut [i16]) -> FrameKind {
        let src = &self.payload[s * FRAME..(s + 1) * FRAME];
        for (y, &c) in out[..FRAME].iter_mut().zip(src) {
            *y = self.decode[c as usize];
        }
        self.plc.good(&mut out[..FRAME]);
        self.state[s] = RELEASED;
        self.held -= 1;
        self.st.frames_out += 1;
        self.st.current_delay_ms = now_ms - self.time[s];
        self.next += 1;
        FrameKind::Normal
    }

    fn conceal(&mut self, s: usize, out: &mut [i16]) -> FrameKind {
        let audible = self.plc.conceal(&mut out[..FRAME]);
        let p = self.next;
        let owned_by_newer = self.tag[s] > p && self.state[s] != EMPTY;
        if !owned_by_newer {
            if !(self.tag[s] == p && self.state[s] == MISSING) {
                self.time[s] = self.last_now;
            }
            self.tag[s] = p;
            self.state[s] = CONCEALED;
        }
        self.st.lost += 1;
        self.st.concealed += 1;
        self.st.frames_out += 1;
        self.next += 1;
        if audible {
            FrameKind::Concealed
        } else {
            FrameKind::Silence
        }
    }

    /// Bucket of a lateness: 0 for 0 ms, k for (20(k−1), 20k] ms, capped at the top.
    fn bucket(&self, lateness_ms: f64) -> usize {
        let top = self.hist.len() - 1;
        if lateness_ms.is_nan() || lateness_ms <= 0.0 {
            return 0;
        }
        let b = (lateness_ms / FRAME_MS).ceil();
        if b >= top as f64 {
            top
        } else {
            b as usize
        }
    }

    /// Adds one lateness observation to the forgetting histogram; updates the target.
    fn record(&mut self, lateness_ms: f64) {
        let b = self.bucket(lateness_ms);
        for h in self.hist.iter_mut() {
            *h *= FORGET;
        }
        self.hist[b] += 1.0 - FORGET;
        let mut cum = 0.0;
        let mut k = self.hist.len() - 1;
        for (i, &h) in self.hist.iter().enumerate() {
            cum += h;
            if cum >= QUANTILE {
                k = i;
                break;
            }
        }
        let mut t = k as f64 * FRAME_MS;
        if t < self.cfg.min_delay_ms as f64 {
            t = self.cfg.min_delay_ms as f64;
        }
        if t > self.cfg.max_delay_ms as f64 {
            t = self.cfg.max_delay_ms as f64;
        }
        self.target = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plc::tests::speech;

    fn fixture_ulaw() -> Vec<u8> {
        let sig = speech();
        sig.iter().map(|&x| crate::g711::encode_ulaw_sample(x)).collect()
    }

    struct H {
        jb: JitterBuffer,
        data: Vec<u8>,
        out: [i16; 160],
    }

    impl H {
        fn new(cfg: JitterConfig) -> H {
            H { jb: JitterBuffer::new(cfg).unwrap(), data: fixture_ulaw(), out: [0; 160] }
        }
        fn frame(&self, k: u32) -> &[u8] {
            let n = self.data.len() / 160;
            let i = (k as usize) % n;
            &self.data[i * 160..(i + 1) * 160]
        }
        fn push_ts(&mut self, k: u32, ts: u32, now: f64) -> PushResult {
            let f: Vec<u8> = self.frame(k).to_vec();
            self.jb.push(&f, k, ts, now).unwrap()
        }
        fn push(&mut self, k: u32, now: f64) -> PushResult {
            self.push_ts(k, k.wrapping_mul(20), now)
        }
        fn pop(&mut self, now: f64) -> FrameKind {
            self.jb.pop(now, &mut self.out).unwrap()
        }
        /// Pops everything due; returns the kinds.
        fn drain(&mut self, now: f64) -> Vec<FrameKind> {
            let mut v = vec![];
            loop {
                let k = self.pop(now);
                if k == FrameKind::None {
                    return v;
                }
                v.push(k);
            }
        }
    }

    use FrameKind::{Concealed as C, Normal as N, Silence as S};

    #[test]
    fn in_order_frames_are_released_at_once_and_decoded() {
        let mut h = H::new(JitterConfig::default());
        for k in 0..10 {
            assert_eq!(h.push(k, k as f64 * 20.0), PushResult::Accepted);
            assert_eq!(h.drain(k as f64 * 20.0), vec![N]);
            let expect: Vec<i16> = h.frame(k).iter().map(|&c| ULAW_DECODE[c as usize]).collect();
            assert_eq!(&h.out[..], &expect[..]);
        }
        let s = h.jb.stats();
        assert_eq!((s.frames_in, s.frames_out, s.buffered_frames), (10, 10, 0));
        assert_eq!(s.current_delay_ms, 0.0);
    }

    #[test]
    fn reorder_within_target_is_restored() {
        let mut h = H::new(JitterConfig::default());
        h.push(0, 0.0);
        assert_eq!(h.drain(0.0), vec![N]);
        // 2 arrives before 1; 1 arrives 10 ms later (target 20 ms).
        h.push(2, 40.0);
        assert_eq!(h.drain(40.0), vec![]);
        assert_eq!(h.drain(49.0), vec![]);
        assert_eq!(h.push(1, 50.0), PushResult::Accepted);
        let f1: Vec<i16> = h.frame(1).iter().map(|&c| ULAW_DECODE[c as usize]).collect();
        assert_eq!(h.pop(50.0), N);
        assert_eq!(&h.out[..], &f1[..]);
        assert_eq!(h.drain(50.0), vec![N]);
        let s = h.jb.stats();
        assert_eq!((s.lost, s.concealed, s.late), (0, 0, 0));
        assert_eq!(s.current_delay_ms, 10.0); // frame 2 waited 10 ms
    }

    #[test]
    fn duplicates_held_and_released() {
        let mut h = H::new(JitterConfig::default());
        h.push(0, 0.0);
        assert_eq!(h.push(0, 1.0), PushResult::Duplicate); // held duplicate
        h.drain(1.0);
        assert_eq!(h.push(0, 2.0), PushResult::Duplicate); // released duplicate
        h.push(2, 40.0);
        assert_eq!(h.push(2, 41.0), PushResult::Duplicate);
        let s = h.jb.stats();
        assert_eq!((s.duplicate, s.frames_in, s.buffered_frames), (3, 5, 1));
    }

    #[test]
    fn burst_after_stall_is_released_together() {
        let mut h = H::new(JitterConfig::default());
        h.push(0, 0.0);
        h.drain(0.0);
        // 500 ms TCP stall, then 25 frames at once.
        for k in 1..=25 {
            h.push(k, 520.0);
        }
        assert_eq!(h.drain(520.0), vec![N; 25]);
        assert_eq!(h.jb.stats().concealed, 0);
    }

    #[test]
    fn gap_is_concealed_after_target_then_silence() {
        let mut h = H::new(JitterConfig::default());
        for k in 0..20 {
            h.push(k, k as f64 * 20.0);
            h.drain(k as f64 * 20.0);
        }
        // Frames 20..=24 never sent (100 ms gap); 25 arrives at 500.
        h.push(25, 500.0);
        let target = h.jb.stats().target_delay_ms;
        assert!((0.0..=20.0).contains(&target));
        if target > 0.0 {
            assert_eq!(h.drain(500.0 + target - 0.5), vec![]);
        }
        assert_eq!(h.drain(500.0 + target), vec![C, C, C, S, S, N]);
        let s = h.jb.stats();
        assert_eq!((s.lost, s.concealed, s.frames_out, s.buffered_frames), (5, 5, 26, 0));
        assert!(h.out.iter().any(|&x| x != 0));
    }

    #[test]
    fn late_arrival_after_concealment() {
        let mut h = H::new(JitterConfig { initial_delay_ms: 20, ..Default::default() });
        h.push(0, 0.0);
        h.drain(0.0);
        h.push(2, 40.0);
        assert_eq!(h.drain(60.0), vec![C, N]);
        assert_eq!(h.push(1, 75.0), PushResult::Late);
        assert_eq!(h.push(1, 76.0), PushResult::Duplicate);
        let s = h.jb.stats();
        assert_eq!((s.late, s.lost, s.concealed, s.duplicate), (1, 0, 1, 1));
        // Released positions are remembered while their ring slot is not reused.
        let mut h = H::new(JitterConfig { capacity_frames: 10, ..Default::default() });
        for k in 0..200 {
            h.push(k, k as f64 * 20.0);
            h.drain(k as f64 * 20.0);
        }
        assert_eq!(h.push(195, 4000.0), PushResult::Duplicate); // remembered as played
        assert_eq!(h.push(170, 4000.0), PushResult::Late); // slot reused: no memory left
        assert_eq!(h.push(100, 4000.0), PushResult::Resync); // > max(capacity, max gap) back
        let s = h.jb.stats();
        assert_eq!((s.duplicate, s.late, s.resyncs), (1, 1, 1));
    }

    #[test]
    fn long_outage_fills_up_to_max_gap_then_resyncs() {
        let mut h = H::new(JitterConfig::default());
        h.push(0, 0.0);
        h.drain(0.0);
        // 50 missing frames (1 s): filled.
        assert_eq!(h.push(51, 1020.0), PushResult::Accepted);
        let kinds = h.drain(2000.0);
        assert_eq!(kinds.len(), 51);
        assert_eq!(&kinds[..3], &[C, C, C]);
        assert!(kinds[3..50].iter().all(|&k| k == S));
        assert_eq!(kinds[50], N);
        // 51 missing frames: resync; the new frame is position 0 of a fresh stream.
        assert_eq!(h.push(103, 2060.0), PushResult::Resync);
        assert_eq!(h.drain(2060.0), vec![N]);
        assert_eq!(h.push(104, 2080.0), PushResult::Accepted);
        assert_eq!(h.drain(2080.0), vec![N]);
        // A big backward jump (stream restart) also resyncs.
        assert_eq!(h.push(1, 2100.0), PushResult::Resync);
        let s = h.jb.stats();
        assert_eq!((s.resyncs, s.lost, s.concealed), (2, 50, 50));
    }

    #[test]
    fn timestamp_and_sequence_wrap() {
        let mut h = H::new(JitterConfig::default());
        let t0 = u32::MAX - 99; // wraps between frames 4 and 5
        for k in 0..12u32 {
            if k == 7 {
                continue; // lost across the wrap
            }
            let r = h.push_ts(k, t0.wrapping_add(20 * k), k as f64 * 20.0);
            assert_eq!(r, PushResult::Accepted, "k={k}");
        }
        let kinds = h.drain(1000.0);
        assert_eq!(kinds, vec![N, N, N, N, N, N, N, C, N, N, N, N]);
        assert_eq!(h.jb.stats().resyncs, 0);
        // Reordered across the wrap.
        let mut h = H::new(JitterConfig::default());
        h.push_ts(0, u32::MAX - 19, 0.0);
        h.drain(0.0);
        h.push_ts(2, 20, 40.0);
        h.push_ts(1, 0, 45.0);
        assert_eq!(h.drain(45.0), vec![N, N]);
    }

    #[test]
    fn clock_skew_does_not_drift() {
        // Sender clock 1 % fast / slow against the receiver's, 10 minutes, ~1 % loss.
        for &rate in &[1.01f64, 0.99] {
            let mut h = H::new(JitterConfig::default());
            let n = 30_000u32;
            let (mut early_max, mut late_max, mut max_buf) = (0.0f64, 0.0f64, 0u32);
            for k in 0..n {
                if k % 97 == 50 {
                    continue;
                }
                let now = k as f64 * 20.0 / rate;
                assert_eq!(h.push(k, now), PushResult::Accepted);
                max_buf = max_buf.max(h.jb.stats().buffered_frames);
                h.drain(now);
                let d = h.jb.stats().current_delay_ms;
                if k < 3000 {
                    early_max = early_max.max(d);
                } else if k >= n - 3000 {
                    late_max = late_max.max(d);
                }
            }
            let s = h.jb.stats();
            assert_eq!(s.frames_out, n as u64, "rate {rate}");
            assert_eq!(s.lost, (0..n).filter(|k| k % 97 == 50).count() as u64);
            assert_eq!(s.late + s.duplicate + s.resyncs, 0);
            // Held delay never exceeds the initial target and does not grow over time.
            assert!(max_buf <= 3, "{max_buf}");
            assert!(early_max <= 40.0, "{early_max}");
            assert!(late_max <= early_max, "drift: {late_max} > {early_max}");
        }
    }

    #[test]
    fn flood_of_far_future_frames_stays_bounded() {
        let cfg = JitterConfig { capacity_frames: 10, ..Default::default() };
        let mut h = H::new(cfg);
        h.push(0, 0.0);
        h.drain(0.0);
        // Without popping, each frame jumps 7 positions ahead (within max gap fill).
        for i in 1..500u32 {
            let r = h.push(i * 7, 1.0);
            assert_eq!(r, PushResult::Accepted);
            assert!(h.jb.stats().buffered_frames <= 10);
        }
        // Everything before the last 10 positions is due now.
        let kinds = h.drain(1.0);
        let s = h.jb.stats();
        assert_eq!(s.frames_out as usize, 1 + kinds.len());
        assert!(s.buffered_frames <= 2);
        // Flush the rest.
        while h.jb.pop_forced(&mut h.out).unwrap() != FrameKind::None {}
        let s = h.jb.stats();
        assert_eq!(s.frames_out, 1 + 499 * 7);
        assert_eq!(s.buffered_frames, 0);
        // Received frames that never played are counted lost with the gaps.
        assert_eq!(s.concealed, s.lost);
        // Played: frame 0 and the two frames (3486, 3493) inside the final ring window.
        assert_eq!(s.frames_out - s.concealed, 3);
    }

    #[test]
    fn overflow_forces_gap_release_without_dropping_held_audio() {
        let cfg = JitterConfig { capacity_frames: 8, initial_delay_ms: 200, max_delay_ms: 200, ..Default::default() };
        let mut h = H::new(cfg);
        h.push(0, 0.0);
        h.drain(0.0);
        // 1 missing; 2..=8 held (7 frames); then 9 needs the slot of position 1.
        for k in 2..=9 {
            h.push(k, k as f64 * 20.0);
            h.drain(k as f64 * 20.0);
        }
        // Position 1 was forced out by frame 9 well before its 200 ms deadline.
        let s = h.jb.stats();
        assert_eq!((s.frames_out, s.concealed, s.buffered_frames), (10, 1, 0));
    }

    #[test]
    fn pop_forced_flushes_held_frames_and_gaps() {
        let mut h = H::new(JitterConfig { initial_delay_ms: 200, ..Default::default() });
        h.push(0, 0.0);
        h.push(3, 60.0);
        h.push(4, 80.0);
        assert_eq!(h.drain(80.0), vec![N]);
        let mut kinds = vec![];
        loop {
            let k = h.jb.pop_forced(&mut h.out).unwrap();
            if k == FrameKind::None {
                break;
            }
            kinds.push(k);
        }
        assert_eq!(kinds, vec![C, C, N, N]);
    }

    #[test]
    fn target_adapts_up_under_reordering_and_back_down() {
        let mut h = H::new(JitterConfig::default());
        let mut now = 0.0;
        let mut k = 0u32;
        // 20 % of frames arrive 50 ms after their successor.
        while k < 1000 {
            now += 20.0;
            if k % 5 == 1 {
                h.push(k + 1, now);
                h.drain(now);
                h.push(k, now + 50.0);
                h.drain(now + 50.0);
                now += 50.0;
                k += 2;
                continue;
            }
            h.push(k, now);
            h.drain(now);
            k += 1;
        }
        let s = h.jb.stats();
        assert_eq!(s.target_delay_ms, 60.0, "{s:?}");
        let late_after_adapt = s.late;
        // Once adapted, later reorders are caught: the late count stopped growing.
        assert!(late_after_adapt < 60, "{s:?}");
        // Reordering stops: the target decays back to the minimum.
        for _ in 0..400 {
            now += 20.0;
            h.push(k, now);
            h.drain(now);
            k += 1;
        }
        assert_eq!(h.jb.stats().target_delay_ms, 0.0);
        assert_eq!(h.jb.stats().late, late_after_adapt);
    }

    #[test]
    fn stats_invariants_on_mixed_traffic() {
        let (_, jb) = run_scenario(12345, JitterConfig::default());
        let s = jb.stats();
        assert_eq!(s.buffered_frames, 0);
        assert!(s.frames_out >= s.concealed);
        let normal = s.frames_out - s.concealed;
        // Every valid push is played, a duplicate, late, lost (overflow/resync) or was a resync start.
        assert!(normal + s.duplicate + s.late <= s.frames_in);
        assert!(s.lost <= s.concealed + s.frames_in);
        assert!(s.resyncs >= 1);
    }

    #[test]
    fn validation() {
        let bad = [
            JitterConfig { capacity_frames: 0, ..Default::default() },
            JitterConfig { capacity_frames: 3001, ..Default::default() },
            JitterConfig { min_delay_ms: 100, max_delay_ms: 50, initial_delay_ms: 50, ..Default::default() },
            JitterConfig { initial_delay_ms: 300, ..Default::default() },
            JitterConfig { max_delay_ms: 20_000, ..Default::default() },
            JitterConfig { max_gap_fill_frames: 5000, ..Default::default() },
        ];
        for c in bad {
            assert_eq!(JitterBuffer::new(c).err(), Some(DspError::InvalidArgument), "{c:?}");
        }
        let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
        assert_eq!(jb.push(&[0xFF; 159], 0, 0, 0.0), Err(DspError::InvalidFrameSize));
        assert_eq!(jb.push(&[0xFF; 160], 0, 0, f64::NAN), Err(DspError::InvalidArgument));
        assert_eq!(jb.stats().frames_in, 0);
        jb.push(&[0xFF; 160], 0, 0, 0.0).unwrap();
        let mut small = [0i16; 159];
        assert_eq!(jb.pop(0.0, &mut small), Err(DspError::DstTooSmall));
        assert_eq!(jb.pop_forced(&mut small), Err(DspError::DstTooSmall));
        assert_eq!(jb.stats().buffered_frames, 1);
        let mut out = [1i16; 160];
        assert_eq!(jb.pop(0.0, &mut out), Ok(FrameKind::Normal));
        assert!(out.iter().all(|&x| x == 0));
        jb.reset();
        assert_eq!(jb.stats().frames_in, 0);
        assert_eq!(jb.pop(0.0, &mut out), Ok(FrameKind::None));
    }

    #[test]
    fn alaw_decodes() {
        let mut jb = JitterBuffer::new(JitterConfig { codec: Codec::Alaw, ..Default::default() }).unwrap();
        jb.push(&[0xD5; 160], 0, 0, 0.0).unwrap();
        let mut out = [0i16; 160];
        jb.pop(0.0, &mut out).unwrap();
        assert!(out.iter().all(|&x| x == 8));
    }

    // ---- parity with src/dsp/ts/jitter-buffer.ts -------------------------------
    // The same generator and driver are written in test/dsp/ts-jitter.test.ts.

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            let mut s = self.0;
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            self.0 = s;
            s
        }
        fn f(&mut self) -> f64 {
            self.next() as f64 / 4294967296.0
        }
    }

    struct Fnv(u32);
    impl Fnv {
        fn bytes(&mut self, b: &[u8]) {
            for &x in b {
                self.0 ^= x as u32;
                self.0 = self.0.wrapping_mul(16777619);
            }
        }
        fn u32(&mut self, v: u32) {
            self.bytes(&v.to_le_bytes());
        }
        fn f64(&mut self, v: f64) {
            self.bytes(&v.to_le_bytes());
        }
    }

    /// Deterministic Twilio-like trace: jittered arrivals on a 0.3 %-fast sender clock,
    /// random loss, reorders (some very late), duplicates, stall-then-burst, outages, a
    /// timestamp wrap (at frame ~1500), a stream restart (frame 2000) and ±1 ms
    /// timestamp noise. Returns the checksum and the buffer for stats checks.
    fn run_scenario(seed: u32, cfg: JitterConfig) -> (u32, JitterBuffer) {
        let data = fixture_ulaw();
        let nframes = data.len() / 160;
        let mut rng = Rng(seed);
        let n: u32 = 3000;
        let ts0: u32 = 4294967296u64.wrapping_sub(30_000) as u32;
        let mut ev: Vec<(f64, u32, u32)> = Vec::new(); // (arrival, frame, timestamp)
        let ts_of = |k: u32, rng: &mut Rng| -> u32 {
            let off: u32 = if k >= 2000 { 5_000_000 } else { 0 };
            let j = rng.next() % 3;
            ts0.wrapping_add(20 * k).wrapping_add(off).wrapping_add(j).wrapping_sub(1)
        };
        let mut now = 1000.0f64;
        let mut k = 0u32;
        while k < n {
            now += 19.94 + (rng.f() - 0.5) * 6.0;
            let r = rng.f();
            if r < 0.03 {
                k += 1;
            } else if r < 0.06 && k + 1 < n {
                let t1 = ts_of(k + 1, &mut rng);
                ev.push((now, k + 1, t1));
                let t0 = ts_of(k, &mut rng);
                ev.push((now + rng.f() * 90.0, k, t0));
                k += 2;
            } else if r < 0.07 {
                let t = ts_of(k, &mut rng);
                ev.push((now, k, t));
                ev.push((now + 1.5, k, t));
                k += 1;
            } else if r < 0.08 {
                let m = 3 + rng.next() % 12;
                let at = now + m as f64 * 20.0;
                let mut i = 0;
                while i < m && k < n {
                    let t = ts_of(k, &mut rng);
                    ev.push((at, k, t));
                    k += 1;
                    i += 1;
                }
                now = at;
            } else if r < 0.083 {
                k += 5 + rng.next() % 40;
            } else {
                let t = ts_of(k, &mut rng);
                ev.push((now, k, t));
                k += 1;
            }
        }
        ev.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());

        let mut jb = JitterBuffer::new(cfg).unwrap();
        let mut h = Fnv(0x811c9dc5);
        let mut out = [0i16; 160];
        let drain = |jb: &mut JitterBuffer, h: &mut Fnv, now: f64, out: &mut [i16; 160]| loop {
            let kind = jb.pop(now, out).unwrap();
            h.u32(kind as u32);
            if kind == FrameKind::None {
                break;
            }
            for &x in out.iter() {
                h.bytes(&(x as u16).to_le_bytes());
            }
        };
        let mut clock = ev[0].0;
        for &(t, fk, ts) in &ev {
            while clock + 5.0 <= t {
                clock += 5.0;
                drain(&mut jb, &mut h, clock, &mut out);
            }
            let i = (fk as usize) % nframes;
            let r = jb.push(&data[i * 160..(i + 1) * 160], fk.wrapping_add(0xFFFF_FF00), ts, t).unwrap();
            h.u32(r as u32);
            drain(&mut jb, &mut h, t, &mut out);
        }
        loop {
            let kind = jb.pop_forced(&mut out).unwrap();
            h.u32(kind as u32);
            if kind == FrameKind::None {
                break;
            }
            for &x in out.iter() {
                h.bytes(&(x as u16).to_le_bytes());
            }
        }
        let s = jb.stats();
        for v in [s.frames_in, s.frames_out, s.duplicate, s.late, s.lost, s.concealed, s.resyncs] {
            h.u32(v as u32);
        }
        h.u32(s.buffered_frames);
        h.f64(s.current_delay_ms);
        h.f64(s.target_delay_ms);
        println!("scenario {seed}: checksum {:#010x} stats {s:?}", h.0);
        (h.0, jb)
    }

    pub(crate) const PARITY_ULAW: u32 = 0x892c_dfc6;
    pub(crate) const PARITY_SMALL: u32 = 0xc209_23f0;

    #[test]
    fn parity_checksum_default_config() {
        let (c, _) = run_scenario(0x1234_5678, JitterConfig::default());
        assert_eq!(c, PARITY_ULAW);
    }

    #[test]
    fn parity_checksum_small_ring() {
        let cfg = JitterConfig {
            codec: Codec::Alaw,
            capacity_frames: 6,
            initial_delay_ms: 40,
            min_delay_ms: 20,
            max_delay_ms: 100,
            max_gap_fill_frames: 20,
        };
        let (c, _) = run_scenario(0xC0FF_EE01, cfg);
        assert_eq!(c, PARITY_SMALL);
    }
}
