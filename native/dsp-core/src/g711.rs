//! G.711 μ-law and A-law, following the ITU-T G.191 STL reference definitions
//! (`ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`; openitu/STL `src/g711/g711.c`).
//!
//! The encoders match the ITU reference for every int16 input. Negative inputs use
//! one's complement (`!x`), so −1 encodes like 0 (μ-law 0x7F, decoding to 0). The
//! Sun/sox/CPython `audioop` encoder uses two's complement and differs on 508
//! negative threshold inputs (measured over all 65 536 int16 inputs); we follow the ITU reference.
//!
//! Encoding is a table lookup: the ITU μ-law encoder only looks at `x >> 2`
//! (`!x >> 2 == !(x >> 2)` for an arithmetic shift) and the A-law one at `x >> 4`,
//! so 16384- and 4096-entry tables, built at compile time, cover every input.

use crate::error::{DspError, DspResult};

/// ITU `ulaw_compress` for one sample (the definition the tables are built from).
pub const fn ulaw_compress(x: i16) -> u8 {
    let mut absno: i32 = if x < 0 { ((!x) as i32 >> 2) + 33 } else { (x as i32 >> 2) + 33 };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno: i32 = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
    let mut out = (high_nibble << 4) | low_nibble;
    if x >= 0 {
        out |= 0x0080;
    }
    out as u8
}

/// ITU `ulaw_expand` for one code.
pub const fn ulaw_expand(code: u8) -> i16 {
    let sign: i32 = if code < 0x80 { -1 } else { 1 };
    let inv = !code as i32;
    let exponent = (inv >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = inv & 0x0F;
    let step = 4 << segment;
    (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

/// ITU `alaw_compress` for one sample.
pub const fn alaw_compress(x: i16) -> u8 {
    let mut ix: i32 = if x < 0 { (!x) as i32 >> 4 } else { x as i32 >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// ITU `alaw_expand` for one code.
pub const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let iexp = ix >> 4;
    let mut mant = ix & 0x0F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = ulaw_expand(c as u8);
        c += 1;
    }
    t
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = alaw_expand(c as u8);
        c += 1;
    }
    t
}

/// Indexed by `(x >> 2) + 8192`.
const fn build_ulaw_encode() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_compress(((i as i32 - 8192) << 2) as i16);
        i += 1;
    }
    t
}

/// Indexed by `(x >> 4) + 2048`.
const fn build_alaw_encode() -> [u8; 4096] {
    let mut t = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = alaw_compress(((i as i32 - 2048) << 4) as i16);
        i += 1;
    }
    t
}

pub static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
pub static ALAW_DECODE: [i16; 256] = build_alaw_decode();
static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 4096] = build_alaw_encode();

/// μ-law silence (the code of 0).
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law silence (the code of 0).
pub const ALAW_SILENCE: u8 = 0xD5;

#[inline(always)]
pub fn encode_ulaw_sample(x: i16) -> u8 {
    ULAW_ENCODE[((x >> 2) as i32 + 8192) as usize]
}

#[inline(always)]
pub fn encode_alaw_sample(x: i16) -> u8 {
    ALAW_ENCODE[((x >> 4) as i32 + 2048) as usize]
}

/// Decodes `src` into `dst[..src.len()]`; returns samples written.
pub fn decode_ulaw(src: &[u8], dst: &mut [i16]) -> DspResult<usize> {
    if dst.len() < src.len() {
        return Err(DspError::DstTooSmall);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = ULAW_DECODE[s as usize];
    }
    Ok(src.len())
}

/// Encodes `src` into `dst[..src.len()]`; returns bytes written.
pub fn encode_ulaw(src: &[i16], dst: &mut [u8]) -> DspResult<usize> {
    if dst.len() < src.len() {
        return Err(DspError::DstTooSmall);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = encode_ulaw_sample(s);
    }
    Ok(src.len())
}

pub fn decode_alaw(src: &[u8], dst: &mut [i16]) -> DspResult<usize> {
    if dst.len() < src.len() {
        return Err(DspError::DstTooSmall);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = ALAW_DECODE[s as usize];
    }
    Ok(src.len())
}

pub fn encode_alaw(src: &[i16], dst: &mut [u8]) -> DspResult<usize> {
    if dst.len() < src.len() {
        return Err(DspError::DstTooSmall);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = encode_alaw_sample(s);
    }
    Ok(src.len())
}

/// The G.711 codec of a telephony stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Ulaw,
    Alaw,
}

impl Codec {
    pub fn silence(self) -> u8 {
        match self {
            Codec::Ulaw => ULAW_SILENCE,
            Codec::Alaw => ALAW_SILENCE,
        }
    }
    pub fn decode(self, src: &[u8], dst: &mut [i16]) -> DspResult<usize> {
        match self {
            Codec::Ulaw => decode_ulaw(src, dst),
            Codec::Alaw => decode_alaw(src, dst),
        }
    }
    pub fn encode(self, src: &[i16], dst: &mut [u8]) -> DspResult<usize> {
        match self {
            Codec::Ulaw => encode_ulaw(src, dst),
            Codec::Alaw => encode_alaw(src, dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_known_values() {
        // The same values from the ITU `ulaw_expand`/`alaw_expand` and CPython `audioop`.
        assert_eq!(ULAW_DECODE[0x00], -32124);
        assert_eq!(ULAW_DECODE[0x7F], 0);
        assert_eq!(ULAW_DECODE[0x80], 32124);
        assert_eq!(ULAW_DECODE[0xFF], 0);
        assert_eq!(ALAW_DECODE[0x00], -5504);
        assert_eq!(ALAW_DECODE[0x7F], -848);
        assert_eq!(ALAW_DECODE[0x80], 5504);
        assert_eq!(ALAW_DECODE[0xFF], 848);
        assert_eq!(ALAW_DECODE[0x55], -8);
        assert_eq!(ALAW_DECODE[0xD5], 8);
        assert_eq!(*ULAW_DECODE.iter().max().unwrap(), 32124);
        assert_eq!(*ALAW_DECODE.iter().max().unwrap(), 32256);
        assert_eq!(*ALAW_DECODE.iter().min().unwrap(), -32256);
    }

    #[test]
    fn table_encoders_match_reference_for_all_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(encode_ulaw_sample(x), ulaw_compress(x), "ulaw {x}");
            assert_eq!(encode_alaw_sample(x), alaw_compress(x), "alaw {x}");
        }
    }

    #[test]
    fn encode_known_values() {
        assert_eq!(encode_ulaw_sample(0), 0xFF);
        assert_eq!(encode_ulaw_sample(-1), 0x7F); // ITU one's complement (audioop gives 0x7E)
        assert_eq!(encode_ulaw_sample(32767), 0x80);
        assert_eq!(encode_ulaw_sample(-32768), 0x00);
        assert_eq!(encode_alaw_sample(0), 0xD5);
    }

    #[test]
    fn round_trip_codes() {
        for c in 0..=255u8 {
            let back = encode_ulaw_sample(ULAW_DECODE[c as usize]);
            if c == 0x7F {
                assert_eq!(back, 0xFF); // decoded 0 re-encodes as +0
            } else {
                assert_eq!(back, c);
            }
            assert_eq!(encode_alaw_sample(ALAW_DECODE[c as usize]), c);
        }
    }

    #[test]
    fn short_destination_is_an_error() {
        let mut d = [0i16; 3];
        assert_eq!(decode_ulaw(&[0u8; 4], &mut d), Err(DspError::DstTooSmall));
    }
}
