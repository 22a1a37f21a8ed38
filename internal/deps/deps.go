package main
import (
 _ "github.com/pion/webrtc/v4"
 _ "github.com/pion/ice/v4"
 _ "github.com/pion/rtp"
 _ "github.com/pion/rtcp"
 _ "github.com/pion/interceptor"
 _ "github.com/pion/transport/v5"
 _ "github.com/pion/turn/v5"
 _ "github.com/gorilla/websocket"
 _ "go.uber.org/zap"
 _ "github.com/golang-jwt/jwt/v5"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/net/ipv4"
 _ "go.uber.org/goleak"
 _ "gopkg.in/yaml.v3"
)
func main(){}
