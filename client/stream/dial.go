// Package stream is the client side of Kubernetes' streaming subresources
// (pods/exec, pods/attach, pods/portforward): an HTTP request upgraded to a
// multiplexed SPDY/3.1 connection, on which the client opens one stream per
// channel. It implements the remotecommand protocols (v4.channel.k8s.io,
// falling back to v3 and v2) and portforward.k8s.io, over
// k8s.io/streaming's SPDY connection and the same TLS settings and bearer
// token as client/rest.
//
// The protocols are described in the Kubernetes documentation and KEPs
// (the stream headers, the error stream's Status, the resize messages);
// this is minik8s's own implementation of them, not client-go's.
package stream

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/minik8s/minik8s/client/rest"
)

// DefaultPingPeriod is how often an idle connection is pinged, so that
// load balancers and proxies on the way do not drop a quiet session (a
// shell waiting for input, a forwarded port without traffic).
const DefaultPingPeriod = 5 * time.Second

// Dialer opens upgraded connections to an API server.
type Dialer struct {
	// TLS is the client TLS configuration for https URLs.
	TLS *tls.Config
	// BearerToken is sent as "Authorization: Bearer <token>" when set.
	BearerToken string
	// UserAgent is sent as User-Agent when set.
	UserAgent string
	// PingPeriod is the SPDY ping interval; zero means DefaultPingPeriod,
	// negative means no pings.
	PingPeriod time.Duration
}

// NewDialer builds a Dialer with a rest.Config's server trust, client
// certificate, token and user agent.
func NewDialer(cfg *rest.Config) (*Dialer, error) {
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	return &Dialer{TLS: tc, BearerToken: cfg.BearerToken, UserAgent: cfg.UserAgent}, nil
}

// Dial POSTs to u asking to upgrade to SPDY/3.1 with one of protocols
// (most preferred first) and returns the connection and the protocol the
// server chose. A refused upgrade is an error with the server's message.
func (d *Dialer) Dial(ctx context.Context, u *url.URL, protocols ...string) (httpstream.Connection, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	req.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	for _, p := range protocols {
		req.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	if d.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+d.BearerToken)
	}
	if d.UserAgent != "" {
		req.Header.Set("User-Agent", d.UserAgent)
	}
	// k8s.io/streaming's round tripper dials (through an HTTP or SOCKS
	// proxy from the environment when one is set, with TLS for https) and
	// writes the request; the response is read here so that a refused
	// upgrade closes the connection.
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{TLS: d.TLS})
	if err != nil {
		return nil, "", err
	}
	conn, err := rt.Dial(req)
	if err != nil {
		return nil, "", err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if !stop() {
		_ = conn.Close()
		return nil, "", ctx.Err()
	}
	if err != nil {
		_ = conn.Close()
		return nil, "", fmt.Errorf("reading the upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!headerHas(resp.Header, httpstream.HeaderConnection, "upgrade") ||
		!headerHas(resp.Header, httpstream.HeaderUpgrade, strings.ToLower(spdy.HeaderSpdy31)) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = conn.Close()
		return nil, "", &UpgradeError{StatusCode: resp.StatusCode, Message: statusMessage(body, resp.Status)}
	}
	protocol := resp.Header.Get(httpstream.HeaderProtocolVersion)
	period := d.PingPeriod
	if period == 0 {
		period = DefaultPingPeriod
	} else if period < 0 {
		period = 0
	}
	// Bytes the server sent right after its response are in br: read
	// through it.
	sc, err := spdy.NewClientConnectionWithPings(&bufferedConn{Conn: conn, r: br}, period)
	if err != nil {
		return nil, "", err
	}
	return sc, protocol, nil
}

// UpgradeError is a server's refusal to upgrade (a missing pod, no
// permission, an unsupported protocol).
type UpgradeError struct {
	StatusCode int
	Message    string
}

func (e *UpgradeError) Error() string {
	return "unable to upgrade connection: " + e.Message
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		if strings.Contains(strings.ToLower(v), token) {
			return true
		}
	}
	return false
}

// statusMessage is the message of a metav1.Status body, else the body,
// else the HTTP status line.
func statusMessage(body []byte, status string) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && strings.TrimSpace(st.Message) != "" {
		return strings.TrimSpace(st.Message)
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return s
	}
	return status
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
