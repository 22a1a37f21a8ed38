// Package e2ee implements SFrame (RFC 9605), the end-to-end media encryption
// used by Orville clients, on the Go standard library only.
//
// Every media frame is encrypted by the sending client before it is
// packetized and decrypted by each receiving client after depacketization.
// The on-the-wire layout of an encrypted frame is
//
//	[codec clear prefix][SFrame header][ciphertext+tag]
//
// where the clear prefix (a few codec bytes the SFU and the receiver's
// depacketizer need, such as the VP8 key-frame bit) is authenticated as SFrame
// metadata but not encrypted; see [EncryptFrame] and [DecryptFrame].
//
// The package provides:
//   - the SFrame header encoding of RFC 9605 §4.3 ([Header], [ParseHeader]);
//   - the five cipher suites of RFC 9605 §4.5 / §8.1 ([CipherSuite]),
//     including the AES-CTR + HMAC construction of §4.5.1;
//   - per-KID key and salt derivation (§4.4.2, [DeriveKeySalt]);
//   - an SFrame context with send and receive keys and per-key counters
//     ([Context]; §4.4.1, §4.4.3, §4.4.4);
//   - the sender-key ratchet and KID layout of §5.1 ([Ratchet], [KIDScheme],
//     [SenderKey]).
//
// Replay protection is out of scope for RFC 9605 (§7.4) and is deliberately
// not implemented.
//
// Only clients import this package. The server side (packages sfu, roommgr,
// signaling, turnproxy) never imports it, never holds key material and only
// ever forwards ciphertext; a static test elsewhere in the repository enforces
// the import rule.
package e2ee
