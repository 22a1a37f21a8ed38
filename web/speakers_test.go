package web_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/orville/orville/client"
)

// Issue 9: a Chromium page in a call of three hears the server's `speakers`
// events, and when the Go client with the highest level starts talking,
// the page marks it as the dominant speaker.
func TestBrowserReceivesSpeakers(t *testing.T) {
	s := startCallServer(t, 27130, nil)
	call := s.createCall(t)
	b := newBrowser(t, "alice", s)
	b.navigate(s.callURL(s.token(t, call, "alice"), callSecret))
	b.waitStats(15*time.Second, "alice connected", func(st pageStats) bool { return st.State == "connected" })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	join := func(id string, level uint8) *client.Client {
		c, err := client.Join(ctx, client.Config{SignalingURL: "wss" + s.base[len("https"):] + "/v1/rtc",
			Token: s.token(t, call, id), TLSConfig: &tls.Config{InsecureSkipVerify: true}, ParticipantID: id,
			PublishAudio: true, AudioLevel: level})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	quiet := join("quiet", 45) // talks, softly
	defer quiet.Close()
	loud := join("loud", client.Silence) // silent at first
	defer loud.Close()
	b.waitStats(15*time.Second, "the page hears the quiet talker through a speakers event",
		func(st pageStats) bool { return st.SpeakerSource == "server" })

	loud.SetAudioLevel(5) // -5 dBov: louder than the browser's fake microphone and the quiet one
	b.waitJS(10*time.Second, "the loud Go client marked dominant on the page",
		fmt.Sprintf(`(document.querySelector(%s) || {dataset: {}}).dataset.dominant === 'yes'`, js(tileSel("loud", "camera"))))
	if src := b.stats().SpeakerSource; src != "server" {
		t.Errorf("speaker source %q: the dominant speaker must come from the server's events", src)
	}
}
