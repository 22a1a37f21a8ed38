// Package tlsutil provides the server's TLS certificate: the operator's PEM
// files, or a self-signed one when none is given (DESIGN.md "Facts":
// certificates), and the SPKI hash clients such as Chromium can pin.
package tlsutil
