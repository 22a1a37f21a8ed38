package e2ee_test

import (
	"fmt"

	"github.com/orville/orville/e2ee"
)

// A sender and a receiver share a base key through the messaging platform's
// E2E channel; the SFU in between only ever sees the encrypted frame.
func Example() {
	baseKey := []byte("secret from the E2E channel")
	kid, _ := e2ee.KIDScheme{R: 8}.KID(1, 0) // generation 1, ratchet step 0

	sender, _ := e2ee.NewContext(e2ee.DefaultSuite)
	_ = sender.AddSendKey(kid, baseKey)
	receiver, _ := e2ee.NewContext(e2ee.DefaultSuite)
	_ = receiver.AddRecvKey(kid, baseKey)

	opus := []byte{0x78, 'h', 'e', 'l', 'l', 'o'} // TOC byte + payload
	wire, _ := e2ee.EncryptFrame(sender, kid, e2ee.CodecOpus, opus, nil)
	fmt.Printf("TOC in clear: %#x, looks protected: %v\n", wire[0], e2ee.LooksProtected(e2ee.CodecOpus, wire))

	frame, err := e2ee.DecryptFrame(receiver, e2ee.CodecOpus, wire, nil)
	fmt.Printf("%q %v\n", frame[1:], err)
	// Output:
	// TOC in clear: 0x78, looks protected: true
	// "hello" <nil>
}
