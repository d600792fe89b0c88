package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/minik8s/minik8s/api/scheme"
	"github.com/minik8s/minik8s/apiserver/auth"
	"github.com/minik8s/minik8s/apiserver/certs"
	"github.com/minik8s/minik8s/apiserver/encryption"
	"github.com/minik8s/minik8s/apiserver/etcd"
	"github.com/minik8s/minik8s/apiserver/registry"
	"github.com/minik8s/minik8s/apiserver/rest"
	"github.com/minik8s/minik8s/apiserver/storage"
	"github.com/minik8s/minik8s/apiserver/storage/cacher"
	"github.com/minik8s/minik8s/apiserver/storage/etcd3"
	"github.com/minik8s/minik8s/client/join"
	"github.com/minik8s/minik8s/client/kubeconfig"
)

// Component users get their own tokens (and kubeconfigs) on first start.
var componentUsers = []string{auth.UserAdmin, auth.UserControllerManager, auth.UserScheduler, auth.UserProxy, auth.UserNodeJoin}

// Server is a running API server.
type Server struct {
	opts    Options
	log     *slog.Logger
	etcd    *etcd.Embedded // nil with external etcd
	client  *clientv3.Client
	pki     *certs.PKI
	tokens  *auth.TokenFile
	api     *rest.API
	stores  map[*registry.Resource]storage.Interface
	handler http.Handler
	routes  http.Handler // handler without authentication
	metrics *metrics
	openapi openAPI
	// kubeletTransport carries log/exec/port-forward requests to kubelets.
	kubeletTransport http.RoundTripper
	cancel           context.CancelFunc
	// listener is bound in New so the real port is known early.
	listener net.Listener
}

// New prepares everything the server needs: etcd, PKI, tokens, encryption
// key, stores, watch caches, allocators and the built-in objects. It does
// not listen yet; see Serve. Stop with Close.
func New(ctx context.Context, opts Options, log *slog.Logger) (_ *Server, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if opts.AdvertiseAddress == "" {
		opts.AdvertiseAddress = firstHostIPv4()
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", opts.DataDir, err)
	}
	s := &Server{opts: opts, log: log, stores: map[*registry.Resource]storage.Interface{}}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	// Listen first: with --secure-port=0 the kernel picks the port, and the
	// kubernetes Endpoints and kubeconfigs must name the real one.
	if s.listener, err = net.Listen("tcp", net.JoinHostPort(opts.BindAddress, fmt.Sprint(opts.SecurePort))); err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", opts.BindAddress, opts.SecurePort, err)
	}
	s.opts.SecurePort = s.listener.Addr().(*net.TCPAddr).Port
	opts = s.opts
	if err := s.startEtcd(ctx); err != nil {
		return nil, err
	}
	firstIP, err := firstServiceIP(opts.ServiceClusterIPRange)
	if err != nil {
		return nil, err
	}
	sans := append([]string{firstIP.String(), opts.AdvertiseAddress}, opts.ExtraSANs...)
	if s.pki, err = certs.EnsurePKI(filepath.Join(opts.DataDir, "pki"), sans); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if s.tokens, err = auth.EnsureTokens(TokenFilePath(opts.DataDir), componentUsers); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	key, err := encryption.LoadOrCreateKey(filepath.Join(opts.DataDir, "encryption.key"))
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := encryption.NewAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}

	s.metrics = newMetrics()
	resources := registry.All()
	codec := scheme.Codecs.LegacyCodec(scheme.Scheme.PrioritizedVersionsAllGroups()...)
	for _, r := range resources {
		var tr storage.Transformer
		if r.Encrypt {
			tr = aead
		}
		var st storage.Interface = etcd3.New(s.client, codec, r.New, r.NewList, r.Prefix(), tr)
		st = &instrumentedStore{Interface: st, m: s.metrics, resource: r.Resource}
		if !r.CreateOnly {
			// One etcd watch per resource, fanned out to every HTTP watcher;
			// it also serves resourceVersion=0 lists from memory.
			c, err := cacher.New(runCtx, st, cacher.Config{Prefix: r.Prefix(), NewFunc: r.New, NewListFunc: r.NewList,
				EventBufferSize: opts.WatchCacheSize, BookmarkInterval: opts.WatchBookmarkInterval})
			if err != nil {
				return nil, fmt.Errorf("watch cache for %s: %w", r.Resource, err)
			}
			st = c
		}
		s.stores[r] = st
	}
	s.api = &rest.API{
		Scheme:    scheme.Scheme,
		Resources: resources,
		Storage:   func(r *registry.Resource) storage.Interface { return s.stores[r] },
		Hooks:     map[string]rest.Hooks{},
		Log:       log.With("component", "apiserver"),
		Observe:   s.metrics.observe,
	}
	s.api.Init()
	ns := newNamespaceLifecycle(runCtx, s.stores[s.api.Lookup("", "v1", "namespaces")], log)
	s.api.Namespaces = ns
	s.api.Hooks["namespaces"] = rest.Hooks{AfterWrite: ns.observe}
	if err := s.installServiceAllocators(ctx, firstIP); err != nil {
		return nil, err
	}
	if s.kubeletTransport, err = s.newKubeletTransport(); err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	s.routes = s.buildRoutes()
	s.handler = s.buildHandler()
	if err := s.bootstrap(ctx, firstIP); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := s.writeKubeconfigs(); err != nil {
		return nil, err
	}
	if opts.CompactionInterval > 0 {
		go etcd.RunCompactor(runCtx, s.client, opts.CompactionInterval)
	}
	// `minik8s token create/delete` edit tokens.csv while the server runs.
	go s.tokens.WatchFile(runCtx, TokenReloadInterval, log, func() {
		if err := s.writeJoinToken(); err != nil {
			log.Error("rewriting node-token after a token file change", "component", "apiserver", "err", err)
		}
	})
	return s, nil
}

// TokenReloadInterval is how often the server re-reads tokens.csv: a token
// created or deleted there is accepted or refused at most this much later.
const TokenReloadInterval = 2 * time.Second

// TokenFilePath is the server's bearer token file under dataDir.
func TokenFilePath(dataDir string) string { return filepath.Join(dataDir, "tokens.csv") }

// CreateJoinToken mints another system:node-join token in the token file
// of the server whose --data-dir is dataDir and returns the join token
// (K10<CA hash>::<bearer>) for `minik8s agent --token`. A running server
// accepts it within TokenReloadInterval; earlier join tokens stay valid.
// This is `minik8s token create`.
func CreateJoinToken(dataDir string) (string, error) {
	caFile := filepath.Join(dataDir, "pki", certs.CACertFile)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("the cluster CA (has a server run with --data-dir %s?): %w", dataDir, err)
	}
	// Check the CA before a token is written that could not be handed out.
	if _, err := join.Format(caPEM, "x"); err != nil {
		return "", fmt.Errorf("%s: %w", caFile, err)
	}
	bearer, err := auth.CreateToken(TokenFilePath(dataDir), auth.UserNodeJoin, auth.DefaultGroups(auth.UserNodeJoin))
	if err != nil {
		return "", err
	}
	return join.Format(caPEM, bearer)
}

// DeleteToken removes one token from the token file of the server whose
// --data-dir is dataDir: a whole join token (K10...::bearer), a whole
// bearer token, or a prefix of one as `minik8s token list` shows it. A
// running server refuses it within TokenReloadInterval. This is
// `minik8s token delete`.
//
// Unless force is set, a token one of the server's own kubeconfigs uses
// (admin, a component, node-join for its own node) is not deleted: those
// files are written only at start, so that client would be locked out
// until a restart.
func DeleteToken(dataDir, token string, force bool) (auth.TokenEntry, error) {
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, "K10") && strings.Contains(token, "::") {
		jt, err := join.Parse(token)
		if err != nil {
			return auth.TokenEntry{}, err
		}
		token = jt.Bearer
	}
	var check func(auth.TokenEntry) error
	if !force {
		check = func(e auth.TokenEntry) error {
			if file := kubeconfigUsing(dataDir, e.Token); file != "" {
				return fmt.Errorf("token %s (%s) is the one %s uses; deleting it locks that client out "+
					"until the server restarts and rewrites its kubeconfigs (give --force to delete it anyway)",
					auth.MaskToken(e.Token), e.User.Name, file)
			}
			return nil
		}
	}
	return auth.DeleteToken(TokenFilePath(dataDir), token, check)
}

// kubeconfigUsing names the kubeconfig in dataDir whose user has token,
// or "".
func kubeconfigUsing(dataDir, token string) string {
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.kubeconfig"))
	for _, f := range files {
		if kc, err := kubeconfig.Load(f, ""); err == nil && kc.Token == token {
			return f
		}
	}
	return ""
}

func (s *Server) startEtcd(ctx context.Context) error {
	if len(s.opts.EtcdServers) > 0 {
		var tlsCfg *tls.Config
		if s.opts.EtcdCAFile != "" || s.opts.EtcdCertFile != "" {
			files := etcd.TLSFiles{CAFile: s.opts.EtcdCAFile, CertFile: s.opts.EtcdCertFile, KeyFile: s.opts.EtcdKeyFile}
			var err error
			if tlsCfg, err = files.Config(); err != nil {
				return err
			}
		}
		c, err := etcd.Connect(ctx, s.opts.EtcdServers, tlsCfg)
		if err != nil {
			return fmt.Errorf("connecting to etcd %v: %w", s.opts.EtcdServers, err)
		}
		s.client = c
		return nil
	}
	e, err := etcd.Start(ctx, etcd.Config{
		DataDir:       filepath.Join(s.opts.DataDir, "etcd"),
		ClientURL:     s.opts.EtcdClientURL,
		PeerURL:       "http://127.0.0.1:0",
		UnsafeNoFsync: s.opts.UnsafeNoFsync,
	})
	if err != nil {
		return fmt.Errorf("embedded etcd in %s: %w", filepath.Join(s.opts.DataDir, "etcd"), err)
	}
	s.etcd, s.client = e, e.Client()
	return nil
}

// Handler is the full HTTP handler (authentication included).
func (s *Server) Handler() http.Handler { return s.handler }

// CA returns the cluster CA certificate (PEM).
func (s *Server) CA() []byte { return s.pki.CAPEM }

// Token returns the bearer token of a built-in user such as "admin".
func (s *Server) Token(user string) string {
	t, _ := s.tokens.Token(user)
	return t
}

// EtcdClient exposes the etcd client to tests (e.g. to read raw values).
func (s *Server) EtcdClient() *clientv3.Client { return s.client }

// Scheme is the scheme the server encodes with.
func (s *Server) Scheme() *runtime.Scheme { return scheme.Scheme }

// Serve listens on the secure (and optional insecure) ports until ctx ends,
// then shuts down gracefully. ready, if not nil, is called with the bound
// HTTPS address once listening.
func (s *Server) Serve(ctx context.Context, ready func(addr string)) error {
	ln := s.listener
	tlsCfg := s.pki.TLSConfig()
	tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{Handler: s.handler, TLSConfig: tlsCfg, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	if s.opts.InsecurePort != 0 {
		iln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(s.opts.InsecurePort)))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on 127.0.0.1:%d: %w", s.opts.InsecurePort, err)
		}
		isrv := &http.Server{Handler: s.insecureHandler(), ReadHeaderTimeout: 30 * time.Second}
		servers = append(servers, isrv)
		go func() { errc <- isrv.Serve(iln) }()
	}
	s.log.Info("serving", "component", "apiserver", "address", "https://"+ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	return nil
}

// Close stops background work and etcd.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
	if s.etcd != nil {
		_ = s.etcd.Close()
	} else if s.client != nil {
		_ = s.client.Close()
	}
}

// writeKubeconfigs writes admin.kubeconfig and one per component into
// DataDir, each trusting the cluster CA and carrying the user's token.
func (s *Server) writeKubeconfigs() error {
	host := s.opts.AdvertiseAddress
	if host == "" {
		host = "127.0.0.1"
	}
	written := map[string]bool{}
	for _, e := range s.tokens.Entries() {
		// A user's first token, as in node-token: tokens created later
		// with `minik8s token create` are for handing out.
		if written[e.User.Name] {
			continue
		}
		written[e.User.Name] = true
		name := kubeconfigName(e.User.Name)
		server := fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(s.opts.SecurePort)))
		if e.User.Name == "admin" {
			// The admin works on this machine; loopback always matches the
			// certificate, whatever the network does.
			server = fmt.Sprintf("https://127.0.0.1:%d", s.opts.SecurePort)
		}
		if err := kubeconfig.Write(filepath.Join(s.opts.DataDir, name), "minik8s", kubeconfig.Config{
			Server: server, CAData: s.pki.CAPEM, Token: e.Token, Namespace: "default",
		}); err != nil {
			return fmt.Errorf("kubeconfig for %s: %w", e.User.Name, err)
		}
	}
	return s.writeJoinToken()
}

// writeJoinToken writes <data-dir>/node-token, the token `minik8s agent
// --token` takes to join a node: the CA's hash (so the node can trust this
// server before it has the CA) and the first system:node-join bearer token
// of the token file. It runs at start and after every token file reload,
// so the file never holds a deleted token; with no join token left it is
// removed (the next start mints one).
func (s *Server) writeJoinToken() error {
	path := filepath.Join(s.opts.DataDir, "node-token")
	bearer, ok := s.tokens.Token(auth.UserNodeJoin)
	if !ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("node-token: %w", err)
		}
		return nil
	}
	tok, err := join.Format(s.pki.CAPEM, bearer)
	if err != nil {
		return err
	}
	// Atomically: agents are started with $(cat node-token) at any time.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("node-token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("node-token: %w", err)
	}
	return nil
}

// kubeconfigName maps "system:kube-scheduler" to "kube-scheduler.kubeconfig"
// and "system:node:a" to "node-a.kubeconfig".
func kubeconfigName(user string) string {
	if node, ok := strings.CutPrefix(user, "system:node:"); ok {
		return "node-" + node + ".kubeconfig"
	}
	return strings.TrimPrefix(user, "system:") + ".kubeconfig"
}

func firstHostIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}
