/**
 * The masking key for the bridge's client sockets to agent services that only ever
 * carry text (JSON) frames.
 *
 * RFC 6455 §5.3 makes a client mask every frame with an unpredictable key. The mask
 * exists to stop a hostile script in a *browser* from steering bytes on the wire and
 * poisoning an intermediary's cache (§10.3); it gives a server-side client talking
 * TLS to a known service nothing. Yet with a random key, ws copies every outgoing
 * string into a new Buffer and XORs it — per 20 ms frame of every call, ~1.3 KB each
 * for 24 kHz PCM in base64. With an all-zero key ws sends the string as it is (the
 * frame is still marked masked; XOR with 0 leaves it unchanged), which is ws's
 * documented use of `generateMask`.
 *
 * Only for sockets that send strings: with binary frames from a reused buffer a zero
 * key would let ws queue that buffer itself rather than a masked copy (the pipecat
 * adapter keeps a random, never-zero key for that reason).
 */
export function zeroMask(mask: Buffer): void {
  mask[0] = mask[1] = mask[2] = mask[3] = 0;
}
