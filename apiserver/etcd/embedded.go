package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults for an embedded member. They are tuned for a small box (2 cores)
// running the whole control plane in one process.
const (
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	// DefaultQuotaBackendBytes is 4 GiB: etcd's own default (2 GiB) is
	// easy to hit with a busy event stream before compaction+defrag, and
	// 8 GiB is etcd's documented upper recommendation.
	DefaultQuotaBackendBytes = 4 << 30
	// DefaultProgressNotifyInterval makes etcd tell idle watchers the
	// current revision, so watch caches of quiet resources still move
	// forward (their bookmarks stay fresh and do not point at revisions
	// that get compacted).
	DefaultProgressNotifyInterval = time.Minute
	defaultStartTimeout           = time.Minute
)

// Config describes an embedded etcd member. Zero values pick the defaults.
type Config struct {
	// DataDir holds the member's WAL and database. Required.
	DataDir string
	// Name of the member; "default" if empty.
	Name string
	// ClientURL is where clients connect, e.g. "http://127.0.0.1:2379".
	// Port 0 picks a free port; Endpoints() reports the real one.
	ClientURL string
	// PeerURL is where other members would connect. A single-member
	// cluster never dials it, but etcd insists on listening. Port 0 picks
	// a free port.
	PeerURL string
	// QuotaBackendBytes caps the database size (DefaultQuotaBackendBytes
	// if 0).
	QuotaBackendBytes int64
	// ProgressNotifyInterval is how often etcd sends progress
	// notifications to watchers that asked for them
	// (DefaultProgressNotifyInterval if 0).
	ProgressNotifyInterval time.Duration
	// UnsafeNoFsync skips fsync: only for tests, a crash loses data.
	UnsafeNoFsync bool
	// LogLevel is the zap level for etcd's own log ("error" if empty),
	// so a healthy member is silent.
	LogLevel string
	// StartTimeout bounds how long Start waits for the member to serve
	// (one minute if 0).
	StartTimeout time.Duration
}

// Embedded is a running in-process etcd member plus a client connected to
// it. Close stops both.
type Embedded struct {
	etcd      *embed.Etcd
	client    *clientv3.Client
	endpoints []string
	closing   *atomic.Bool // silences the member's log once Close started
}

// Start launches an embedded single-member etcd and connects a client to it.
// Auto-compaction is off: the apiserver compacts (see RunCompactor), the
// way Kubernetes does, so the retention window is one compaction interval.
// ctx bounds the startup only; the member runs until Close.
func Start(ctx context.Context, cfg Config) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("etcd: Config.DataDir is required")
	}
	ec := embed.NewConfig()
	ec.Dir = cfg.DataDir
	if cfg.Name != "" {
		ec.Name = cfg.Name
	}
	clientURL, err := parseURL(orDefault(cfg.ClientURL, DefaultClientURL))
	if err != nil {
		return nil, fmt.Errorf("etcd: client URL: %w", err)
	}
	peerURL, err := parseURL(orDefault(cfg.PeerURL, DefaultPeerURL))
	if err != nil {
		return nil, fmt.Errorf("etcd: peer URL: %w", err)
	}
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)

	ec.AutoCompactionMode = embed.CompactorModeRevision
	ec.AutoCompactionRetention = "0" // off: the apiserver compacts
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	if ec.QuotaBackendBytes == 0 {
		ec.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	ec.WatchProgressNotifyInterval = cfg.ProgressNotifyInterval
	if ec.WatchProgressNotifyInterval == 0 {
		ec.WatchProgressNotifyInterval = DefaultProgressNotifyInterval
	}
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	// Nobody talks HTTP/JSON to etcd here; skip the gateway's goroutines.
	ec.EnableGRPCGateway = false
	ec.Logger = "zap"
	ec.LogLevel = orDefault(cfg.LogLevel, "error")
	ec.LogOutputs = []string{embed.StdErrLogOutput}
	closing := new(atomic.Bool)
	lg, err := memberLogger(ec.LogLevel, closing)
	if err != nil {
		return nil, fmt.Errorf("etcd: logger: %w", err)
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)

	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = defaultStartTimeout
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcd: start member in %s: %w", cfg.DataDir, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: member in %s failed while starting: %w", cfg.DataDir, err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcd: member in %s not ready after %s", cfg.DataDir, timeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcd: start member in %s: %w", cfg.DataDir, ctx.Err())
	}

	// With port 0 the configured URL is not where the member listens;
	// ask the listeners.
	endpoints := make([]string, 0, len(e.Clients))
	for _, l := range e.Clients {
		endpoints = append(endpoints, clientURL.Scheme+"://"+l.Addr().String())
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		Logger:      quietLogger(),
		Context:     context.Background(),
	})
	if err != nil {
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcd: connect to embedded member at %v: %w", endpoints, err)
	}
	return &Embedded{etcd: e, client: client, endpoints: endpoints, closing: closing}, nil
}

// Client returns the client connected to the member. It is closed by Close.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Endpoints returns the client URLs the member really listens on.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Err delivers a fatal error of the running member (the channel is closed
// once the member has stopped).
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close closes the client and stops the member, waiting for it to flush.
// Safe to call more than once.
func (e *Embedded) Close() error {
	var err error
	if e.client != nil {
		err = e.client.Close()
		e.client = nil
	}
	if e.etcd != nil {
		// Stopping makes every listener report "server closed" at
		// error level; that is the expected outcome, not news.
		e.closing.Store(true)
		e.etcd.Close()
		e.etcd = nil
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd: close client: %w", err)
	}
	return nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs" {
		return nil, fmt.Errorf("%q: scheme must be http, https, unix or unixs", s)
	}
	return u, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// quietLogger is what etcd's client logs through: errors only, so a test
// run or an apiserver's stderr is not flooded with connection chatter.
func quietLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return zap.NewNop()
	}
	return lg
}

// memberLogger builds the embedded member's logger: JSON to stderr at
// level, without stack traces (etcd logs expected conditions at error
// level with a stack), and muted below DPanic once closing is set.
func memberLogger(level string, closing *atomic.Bool) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return lg.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return mutableCore{Core: c, closing: closing}
	})), nil
}

// mutableCore drops entries below DPanic while its member is shutting down.
type mutableCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c mutableCore) With(fields []zapcore.Field) zapcore.Core {
	return mutableCore{Core: c.Core.With(fields), closing: c.closing}
}

func (c mutableCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() && ent.Level < zapcore.DPanicLevel {
		return ce
	}
	return c.Core.Check(ent, ce)
}
