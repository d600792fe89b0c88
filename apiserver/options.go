package apiserver

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spf13/pflag"
)

// Options configure the API server; each has a command-line flag.
type Options struct {
	// DataDir holds etcd's data (when embedded), the PKI, the token file,
	// the encryption key and the admin kubeconfig.
	DataDir string
	// BindAddress and SecurePort are where HTTPS is served.
	BindAddress string
	SecurePort  int
	// InsecurePort, if not 0, also serves plain HTTP without
	// authentication — on 127.0.0.1 only. For tests and debugging.
	InsecurePort int
	// AdvertiseAddress is the address other nodes reach this server on; it
	// goes into the kubernetes Endpoints, kubeconfigs and the certificate.
	AdvertiseAddress string
	// EtcdServers, when set, are the client URLs of an external etcd
	// cluster; empty means run an embedded etcd member in DataDir/etcd.
	EtcdServers []string
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile secure the connection to
	// an external etcd (https:// EtcdServers): the CA that signed etcd's
	// serving certificate, and the client certificate and key to present
	// when etcd runs with --client-cert-auth. Same flags as kube-apiserver.
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string
	// EtcdClientURL is where the embedded etcd listens (for etcdctl).
	EtcdClientURL string
	// ServiceClusterIPRange is the CIDR Service cluster IPs come from.
	ServiceClusterIPRange string
	// NodePortRange is "min-max" for NodePort Services.
	NodePortRange string
	// ExtraSANs are added to the serving certificate.
	ExtraSANs []string
	// CompactionInterval is how often old etcd revisions are compacted.
	CompactionInterval time.Duration
	// WatchCacheSize is how many recent events each resource keeps for
	// watchers resuming from a resourceVersion.
	WatchCacheSize int
	// WatchBookmarkInterval is how often a watch that allows bookmarks
	// gets a BOOKMARK event with the current resourceVersion, so a client
	// on a quiet resource can resume from a recent revision instead of
	// re-listing after a compaction. Kubernetes sends them about once a
	// minute; tests shorten it. 0 means that minute.
	WatchBookmarkInterval time.Duration
	// UnsafeNoFsync makes the embedded etcd skip fsync: tests only.
	UnsafeNoFsync bool
}

// DefaultOptions are the defaults of `minik8s apiserver`.
func DefaultOptions() Options {
	return Options{
		DataDir:               "/var/lib/minik8s",
		BindAddress:           "0.0.0.0",
		SecurePort:            6443,
		EtcdClientURL:         "http://127.0.0.1:2379",
		ServiceClusterIPRange: "10.96.0.0/12",
		NodePortRange:         "30000-32767",
		CompactionInterval:    5 * time.Minute,
		WatchCacheSize:        1000,
		WatchBookmarkInterval: time.Minute,
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for etcd data (embedded), certificates, tokens, the encryption key and kubeconfigs")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address to serve HTTPS on")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "HTTPS port")
	fs.IntVar(&o.InsecurePort, "insecure-port", o.InsecurePort, "if not 0, also serve unauthenticated HTTP on 127.0.0.1:PORT (tests and debugging only)")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "IP other nodes use to reach this server (default: the first non-loopback IPv4)")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "client URLs of an external etcd cluster; empty runs an embedded etcd")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", o.EtcdCAFile, "PEM CA bundle that signed the external etcd's serving certificate; required for https:// --etcd-servers")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", o.EtcdCertFile, "PEM client certificate to present to the external etcd (with --etcd-keyfile)")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", o.EtcdKeyFile, "PEM private key of --etcd-certfile")
	fs.StringVar(&o.EtcdClientURL, "etcd-client-url", o.EtcdClientURL, "where the embedded etcd listens for clients (etcdctl --endpoints)")
	fs.StringVar(&o.ServiceClusterIPRange, "service-cluster-ip-range", o.ServiceClusterIPRange, "CIDR from which Service cluster IPs are allocated")
	fs.StringVar(&o.NodePortRange, "service-node-port-range", o.NodePortRange, "port range for NodePort Services")
	fs.StringSliceVar(&o.ExtraSANs, "tls-san", o.ExtraSANs, "extra hostnames or IPs for the serving certificate")
	fs.DurationVar(&o.CompactionInterval, "etcd-compaction-interval", o.CompactionInterval, "how often to compact old etcd revisions (0 disables)")
	fs.IntVar(&o.WatchCacheSize, "watch-cache-size", o.WatchCacheSize, "events kept per resource for resuming watches")
	fs.DurationVar(&o.WatchBookmarkInterval, "watch-bookmark-interval", o.WatchBookmarkInterval,
		"how often watches with allowWatchBookmarks get a BOOKMARK event carrying the current resourceVersion")
}

// Validate checks the options before anything is started.
func (o *Options) Validate() error {
	if o.DataDir == "" {
		return fmt.Errorf("--data-dir: required")
	}
	if _, _, err := net.ParseCIDR(o.ServiceClusterIPRange); err != nil {
		return fmt.Errorf("--service-cluster-ip-range: %w", err)
	}
	if _, _, err := parsePortRange(o.NodePortRange); err != nil {
		return fmt.Errorf("--service-node-port-range: %w", err)
	}
	if o.WatchBookmarkInterval < 0 {
		return fmt.Errorf("--watch-bookmark-interval: %v is negative", o.WatchBookmarkInterval)
	}
	if err := o.validateEtcd(); err != nil {
		return err
	}
	if o.SecurePort < 0 || o.SecurePort > 65535 {
		return fmt.Errorf("--secure-port: %d is not a port (0 picks a free one)", o.SecurePort)
	}
	return nil
}

// validateEtcd checks the external etcd flags as a set: TLS flags only
// with https:// servers, an https:// server only with a CA (the cluster's
// etcd CA is never one the system trusts), and a certificate only with its
// key. Whether the files can be read is checked when they are loaded.
func (o *Options) validateEtcd() error {
	tlsFlag := ""
	switch {
	case o.EtcdCAFile != "":
		tlsFlag = "--etcd-cafile"
	case o.EtcdCertFile != "":
		tlsFlag = "--etcd-certfile"
	case o.EtcdKeyFile != "":
		tlsFlag = "--etcd-keyfile"
	}
	if len(o.EtcdServers) == 0 {
		if tlsFlag != "" {
			return fmt.Errorf("%s: only used with --etcd-servers (the embedded etcd is plain http on loopback)", tlsFlag)
		}
		return nil
	}
	for _, s := range o.EtcdServers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--etcd-servers: %q is not a URL like https://10.0.0.21:2379", s)
		}
		if u.Scheme == "https" && o.EtcdCAFile == "" {
			return fmt.Errorf("--etcd-cafile: required for the https etcd server %s (the CA that signed its certificate)", s)
		}
		if u.Scheme == "http" && tlsFlag != "" {
			return fmt.Errorf("--etcd-servers: %s is plain http but %s is set; use https:// URLs", s, tlsFlag)
		}
	}
	if o.EtcdCertFile != "" && o.EtcdKeyFile == "" {
		return fmt.Errorf("--etcd-keyfile: required with --etcd-certfile %s", o.EtcdCertFile)
	}
	if o.EtcdKeyFile != "" && o.EtcdCertFile == "" {
		return fmt.Errorf("--etcd-certfile: required with --etcd-keyfile %s", o.EtcdKeyFile)
	}
	return nil
}

func parsePortRange(s string) (int, int, error) {
	var lo, hi int
	if _, err := fmt.Sscanf(s, "%d-%d", &lo, &hi); err != nil || lo <= 0 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a port range like 30000-32767", s)
	}
	return lo, hi, nil
}
