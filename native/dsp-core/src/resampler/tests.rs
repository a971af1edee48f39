use super::*;

#[test]
fn smoke() {
    let mut r = Resampler::new(8000, 24000, 7).unwrap();
    let input = vec![1000i16; 160];
    let mut out = vec![0i16; 480];
    assert_eq!(r.process(&input, &mut out).unwrap(), 480);
}
