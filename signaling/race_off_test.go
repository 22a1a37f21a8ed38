//go:build !race

package signaling_test

const raceBuild = false
