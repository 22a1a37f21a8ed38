package e2ee

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// RFC 9605 Appendix C test vectors, in the JSON form published in the
// sframe-wg/sframe repository (see testdata/README.md).
type testVectors struct {
	Header []struct {
		KID     uint64   `json:"kid"`
		CTR     uint64   `json:"ctr"`
		Encoded hexBytes `json:"encoded"`
	} `json:"header"`
	AESCTRHMAC []struct {
		CipherSuite CipherSuite `json:"cipher_suite"`
		Key         hexBytes    `json:"key"`
		EncKey      hexBytes    `json:"enc_key"`
		AuthKey     hexBytes    `json:"auth_key"`
		Nonce       hexBytes    `json:"nonce"`
		AAD         hexBytes    `json:"aad"`
		PT          hexBytes    `json:"pt"`
		CT          hexBytes    `json:"ct"`
	} `json:"aes_ctr_hmac"`
	SFrame []struct {
		CipherSuite     CipherSuite `json:"cipher_suite"`
		KID             uint64      `json:"kid"`
		CTR             uint64      `json:"ctr"`
		BaseKey         hexBytes    `json:"base_key"`
		SFrameKeyLabel  hexBytes    `json:"sframe_key_label"`
		SFrameSaltLabel hexBytes    `json:"sframe_salt_label"`
		SFrameSecret    hexBytes    `json:"sframe_secret"`
		SFrameKey       hexBytes    `json:"sframe_key"`
		SFrameSalt      hexBytes    `json:"sframe_salt"`
		Metadata        hexBytes    `json:"metadata"`
		Nonce           hexBytes    `json:"nonce"`
		AAD             hexBytes    `json:"aad"`
		PT              hexBytes    `json:"pt"`
		CT              hexBytes    `json:"ct"`
	} `json:"sframe"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func loadVectors(t testing.TB) *testVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v testVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	// Appendix C.1 has 17 KIDs x 17 CTRs; C.2 three suites; C.3 five.
	if len(v.Header) != 289 || len(v.AESCTRHMAC) != 3 || len(v.SFrame) != 5 {
		t.Fatalf("unexpected vector counts: header %d, aes_ctr_hmac %d, sframe %d",
			len(v.Header), len(v.AESCTRHMAC), len(v.SFrame))
	}
	return &v
}

// TestVectorsHeader checks every header vector of RFC 9605 Appendix C.1 in
// both directions.
func TestVectorsHeader(t *testing.T) {
	for _, tc := range loadVectors(t).Header {
		h := Header{KID: tc.KID, CTR: tc.CTR}
		if got := h.AppendTo(nil); !bytes.Equal(got, tc.Encoded) {
			t.Errorf("encode kid=%d ctr=%d: got %x want %x", tc.KID, tc.CTR, got, tc.Encoded)
		}
		if h.Len() != len(tc.Encoded) {
			t.Errorf("Len kid=%d ctr=%d: got %d want %d", tc.KID, tc.CTR, h.Len(), len(tc.Encoded))
		}
		trailer := []byte{0xde, 0xad}
		got, n, err := ParseHeader(append(bytes.Clone(tc.Encoded), trailer...))
		if err != nil || got != h || n != len(tc.Encoded) {
			t.Errorf("parse %x: got %+v n=%d err=%v", tc.Encoded, got, n, err)
		}
		if _, _, err := ParseHeader(tc.Encoded[:len(tc.Encoded)-1]); len(tc.Encoded) > 1 && !errors.Is(err, ErrShortHeader) {
			t.Errorf("parse truncated %x: err=%v, want ErrShortHeader", tc.Encoded, err)
		}
	}
}

// TestVectorsAESCTRHMAC checks the AEAD of RFC 9605 §4.5.1 against every
// vector of Appendix C.2, including the subkey split.
func TestVectorsAESCTRHMAC(t *testing.T) {
	for _, tc := range loadVectors(t).AESCTRHMAC {
		t.Run(tc.CipherSuite.String(), func(t *testing.T) {
			p, ok := tc.CipherSuite.params()
			if !ok || p.gcm {
				t.Fatalf("suite %v is not a CTR+HMAC suite", tc.CipherSuite)
			}
			if !bytes.Equal(tc.Key[:p.nka], tc.EncKey) || !bytes.Equal(tc.Key[p.nka:], tc.AuthKey) {
				t.Fatal("derive_subkeys split does not match enc_key/auth_key")
			}
			a, err := newCTRHMAC(p, tc.Key)
			if err != nil {
				t.Fatal(err)
			}
			if ct := a.Seal(nil, tc.Nonce, tc.PT, tc.AAD); !bytes.Equal(ct, tc.CT) {
				t.Fatalf("Seal: got %x want %x", ct, tc.CT)
			}
			pt, err := a.Open(nil, tc.Nonce, tc.CT, tc.AAD)
			if err != nil || !bytes.Equal(pt, tc.PT) {
				t.Fatalf("Open: got %x, %v want %x", pt, err, tc.PT)
			}
			for i := range tc.CT {
				bad := bytes.Clone(tc.CT)
				bad[i] ^= 0x01
				if _, err := a.Open(nil, tc.Nonce, bad, tc.AAD); !errors.Is(err, ErrAuth) {
					t.Fatalf("Open with byte %d flipped: err=%v, want ErrAuth", i, err)
				}
			}
			if _, err := a.Open(nil, tc.Nonce, tc.CT, tc.AAD[1:]); !errors.Is(err, ErrAuth) {
				t.Fatalf("Open with wrong AAD: err=%v", err)
			}
		})
	}
}

// TestVectorsSFrame checks every vector of RFC 9605 Appendix C.3: the
// §4.4.2 labels, secret, key and salt, the §4.4.3 nonce and AAD, and
// encrypt(ctr, kid, metadata, pt) == ct and decrypt(metadata, ct) == pt
// through Context.
func TestVectorsSFrame(t *testing.T) {
	for _, tc := range loadVectors(t).SFrame {
		t.Run(tc.CipherSuite.String(), func(t *testing.T) {
			s := tc.CipherSuite
			p, _ := s.params()
			if got := kdfLabel(labelKey, tc.KID, s); !bytes.Equal(got, tc.SFrameKeyLabel) {
				t.Errorf("key label: got %x want %x", got, tc.SFrameKeyLabel)
			}
			if got := kdfLabel(labelSalt, tc.KID, s); !bytes.Equal(got, tc.SFrameSaltLabel) {
				t.Errorf("salt label: got %x want %x", got, tc.SFrameSaltLabel)
			}
			if got, err := sframeSecret(p, tc.BaseKey); err != nil || !bytes.Equal(got, tc.SFrameSecret) {
				t.Errorf("sframe_secret: got %x, %v want %x", got, err, tc.SFrameSecret)
			}
			key, salt, err := DeriveKeySalt(s, tc.KID, tc.BaseKey)
			if err != nil || !bytes.Equal(key, tc.SFrameKey) || !bytes.Equal(salt, tc.SFrameSalt) {
				t.Fatalf("DeriveKeySalt: key %x salt %x err %v; want %x %x", key, salt, err, tc.SFrameKey, tc.SFrameSalt)
			}

			ks, err := newKeyState(s, tc.KID, tc.BaseKey, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := ks.makeNonce(tc.CTR); !bytes.Equal(got, tc.Nonce) {
				t.Errorf("nonce: got %x want %x", got, tc.Nonce)
			}
			hdr := Header{KID: tc.KID, CTR: tc.CTR}.Marshal()
			if got := ks.makeAAD(hdr, tc.Metadata); !bytes.Equal(got, tc.AAD) {
				t.Errorf("aad: got %x want %x", got, tc.AAD)
			}

			send, _ := NewContext(s)
			if err := send.AddSendKey(tc.KID, tc.BaseKey); err != nil {
				t.Fatal(err)
			}
			send.setNextCounter(tc.KID, tc.CTR)
			ct, err := send.Protect(tc.KID, tc.Metadata, tc.PT, nil)
			if err != nil || !bytes.Equal(ct, tc.CT) {
				t.Fatalf("Protect: got %x, %v want %x", ct, err, tc.CT)
			}

			recv, _ := NewContext(s)
			if err := recv.AddRecvKey(tc.KID, tc.BaseKey); err != nil {
				t.Fatal(err)
			}
			pt, err := recv.Unprotect(tc.Metadata, tc.CT, nil)
			if err != nil || !bytes.Equal(pt, tc.PT) {
				t.Fatalf("Unprotect: got %x, %v want %x", pt, err, tc.PT)
			}
			if _, err := recv.Unprotect(tc.Metadata[1:], tc.CT, nil); !errors.Is(err, ErrAuth) {
				t.Fatalf("Unprotect with wrong metadata: err=%v, want ErrAuth", err)
			}
			for i := range tc.CT {
				bad := bytes.Clone(tc.CT)
				bad[i] ^= 0x10
				if _, err := recv.Unprotect(tc.Metadata, bad, nil); err == nil {
					t.Fatalf("Unprotect accepted ct with byte %d changed", i)
				}
			}
		})
	}
}
