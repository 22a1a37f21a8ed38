//go:build race

package signaling_test

// raceBuild: the race detector slows the media path several times over, so
// the heaviest tests scale down (see their comments).
const raceBuild = true
