package e2ee

import "testing"

func benchContexts(b *testing.B, s CipherSuite) (send, recv *Context) {
	return pair(b, s, 0x1234, []byte("benchmark base key 0123456789abcdef"))
}

type benchSize struct {
	name string
	n    int
}

func benchSizes() []benchSize { return []benchSize{{"audio160", 160}, {"video6000", 6000}} }

func BenchmarkProtect(b *testing.B) {
	for _, sz := range benchSizes() {
		b.Run(sz.name, func(b *testing.B) {
			send, _ := benchContexts(b, DefaultSuite)
			pt := make([]byte, sz.n)
			dst := make([]byte, 0, sz.n+DefaultSuite.MaxOverhead())
			meta := []byte{0x50, 1, 2}
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := send.Protect(0x1234, meta, pt, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnprotect(b *testing.B) {
	for _, sz := range benchSizes() {
		b.Run(sz.name, func(b *testing.B) {
			send, recv := benchContexts(b, DefaultSuite)
			meta := []byte{0x50, 1, 2}
			ct, err := send.Protect(0x1234, meta, make([]byte, sz.n), nil)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := recv.Unprotect(meta, ct, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFrame measures the client path: EncryptFrame + DecryptFrame of a
// VP8 delta frame, for every suite.
func BenchmarkFrame(b *testing.B) {
	for _, s := range allSuites() {
		b.Run(s.String(), func(b *testing.B) {
			send, recv := benchContexts(b, s)
			frame := vp8Frame(false, 6000)
			enc := make([]byte, 0, len(frame)+s.MaxOverhead())
			dec := make([]byte, 0, len(frame))
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				e, err := EncryptFrame(send, 0x1234, CodecVP8, frame, enc[:0])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := DecryptFrame(recv, CodecVP8, e, dec[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
