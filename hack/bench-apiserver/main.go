// Command bench-apiserver measures the API server in-process: it starts a
// real server on a real embedded etcd (with fsync unless -no-fsync) in a
// temporary directory, then over HTTPS with the admin token
//
//   - creates -n ConfigMaps from -c concurrent clients (keep-alive
//     connections, JSON bodies) and prints creates/s and latency percentiles;
//   - watches those ConfigMaps from before the first create and prints how
//     long each ADDED event took from the client's send (carried in an
//     annotation) to the watcher;
//   - prints the process RSS with all objects stored, before and after a
//     forced GC (the server, etcd and this client share the process);
//   - times one LIST of all objects, from etcd (resourceVersion="") and
//     from the watch cache (resourceVersion="0").
//
// It prints numbers; it asserts nothing. Run: go run ./hack/bench-apiserver
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minik8s/minik8s/apiserver"
	"github.com/minik8s/minik8s/hack/benchstat"
)

const (
	namespace  = "bench"
	sentAnnKey = "bench.minik8s.io/sent-unix-nano"
)

type config struct {
	n, c       int
	noFsync    bool
	http2      bool
	cpuProfile string
	listProf   string
	lists      int
	memProfile string
	verbose    bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 10000, "number of ConfigMaps to create")
	flag.IntVar(&cfg.c, "c", 32, "concurrent clients")
	flag.BoolVar(&cfg.noFsync, "no-fsync", false, "run the embedded etcd without fsync (unsafe; tests only)")
	flag.BoolVar(&cfg.http2, "http2", false, "multiplex the clients over one HTTP/2 connection (as client-go does) instead of one HTTP/1.1 keep-alive connection each")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the create phase to this file (go tool pprof FILE)")
	flag.StringVar(&cfg.listProf, "listprofile", "", "write a CPU profile of the LIST phase to this file")
	flag.IntVar(&cfg.lists, "lists", 2, "LISTs of all objects to time for each resourceVersion (\"\" and \"0\")")
	flag.StringVar(&cfg.memProfile, "memprofile", "", "write a heap profile (after the creates and a GC) to this file")
	flag.BoolVar(&cfg.verbose, "v", false, "log the API server at info level")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./hack/bench-apiserver [flags]\n\n"+
			"Starts an API server with an embedded etcd in a temp dir and measures create throughput,\n"+
			"create latency, watch delivery latency, RSS and LIST latency. Prints numbers only.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.n <= 0 || cfg.c <= 0 {
		fmt.Fprintln(os.Stderr, "bench-apiserver: -n and -c must be positive")
		os.Exit(2)
	}
	if cfg.memProfile != "" {
		runtime.MemProfileRate = 4096 // fine-grained: the heap is small
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-apiserver:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "bench-apiserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	srv, base, stop, err := startServer(dir, cfg)
	if err != nil {
		return err
	}
	defer stop()
	c, err := newClient(srv, base, cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	fmt.Printf("bench-apiserver: %d ConfigMaps, %d clients, fsync=%v, %s, GOMAXPROCS=%d, %s\n",
		cfg.n, cfg.c, !cfg.noFsync, map[bool]string{true: "HTTP/2", false: "HTTP/1.1 keep-alive"}[cfg.http2],
		runtime.GOMAXPROCS(0), runtime.Version())
	if code, body, err := c.do(ctx, "POST", "/api/v1/namespaces", []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+namespace+`"}}`)); err != nil || code != http.StatusCreated {
		return fmt.Errorf("creating namespace %s: %d %s %v", namespace, code, body, err)
	}
	rssBefore := readRSS()

	// The watcher starts before the first create, from the list's RV.
	w, err := startWatch(ctx, c, cfg.n)
	if err != nil {
		return err
	}

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
	}
	cpu0 := benchstat.ProcessCPU()
	cr := createAll(ctx, c, cfg)
	cpuCreates := benchstat.ProcessCPU() - cpu0
	if cfg.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	watchLat, watchErr := w.wait(30 * time.Second)

	rssLoaded := readRSS()
	var ms runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	rssGC := readRSS()
	if cfg.memProfile != "" {
		f, err := os.Create(cfg.memProfile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
	}

	if cfg.listProf != "" {
		f, err := os.Create(cfg.listProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
	}
	var lists []listResult
	for range cfg.lists {
		lists = append(lists, listAll(ctx, c, ""), listAll(ctx, c, "0"))
	}
	if cfg.listProf != "" {
		pprof.StopCPUProfile()
	}

	fmt.Println()
	fmt.Printf("%-34s %s\n", "creates", fmt.Sprintf("%d ok, %d failed in %.2fs = %.0f creates/s",
		cr.ok, cr.failed, cr.elapsed.Seconds(), float64(cr.ok)/cr.elapsed.Seconds()))
	if cpuCreates > 0 && cr.ok > 0 {
		per := cpuCreates / time.Duration(cr.ok)
		fmt.Printf("%-34s %v CPU (user+sys, whole process) = %v per create; %d cores would cap at ~%.0f creates/s\n",
			"CPU during creates", cpuCreates.Round(time.Millisecond), per.Round(time.Microsecond),
			runtime.NumCPU(), float64(runtime.NumCPU())/per.Seconds())
		fmt.Printf("%-34s %s\n", "machine load average (1/5/15 min)", benchstat.LoadAvg())
	}
	if cr.firstErr != "" {
		fmt.Printf("%-34s %s\n", "first create error", cr.firstErr)
	}
	fmt.Printf("%-34s %s\n", "create latency", benchstat.Percentiles(cr.lat))
	if watchErr != nil {
		fmt.Printf("%-34s %v\n", "watch", watchErr)
	}
	fmt.Printf("%-34s %d of %d ADDED events; %s\n", "watch delivery (send -> event)", len(watchLat), cfg.n, benchstat.Percentiles(watchLat))
	fmt.Printf("%-34s %s\n", "RSS before creates", rssBefore)
	fmt.Printf("%-34s %s\n", fmt.Sprintf("RSS with %d objects", cfg.n), rssLoaded)
	fmt.Printf("%-34s %s\n", "RSS after GC + FreeOSMemory", rssGC)
	fmt.Printf("%-34s heap in use %s, heap objects %d, goroutines %d\n", "Go heap after GC",
		mib(ms.HeapInuse), ms.HeapObjects, runtime.NumGoroutine())
	for _, l := range lists {
		label := fmt.Sprintf("LIST all, resourceVersion=%q", l.rv)
		if l.err != nil {
			fmt.Printf("%-34s %v\n", label, l.err)
			continue
		}
		fmt.Printf("%-34s %d items, %s, %v\n", label, l.items, mib(uint64(l.bytes)), l.d.Round(time.Millisecond))
	}
	return nil
}

// startServer runs apiserver.New + Serve as `minik8s apiserver` would, on
// random ports in dir.
func startServer(dir string, cfg config) (*apiserver.Server, string, func(), error) {
	o := apiserver.DefaultOptions()
	o.DataDir = dir
	o.BindAddress = "127.0.0.1"
	o.SecurePort = 0
	o.AdvertiseAddress = "127.0.0.1"
	o.EtcdClientURL = "http://127.0.0.1:0"
	o.UnsafeNoFsync = cfg.noFsync
	o.CompactionInterval = 0
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := apiserver.New(ctx, o, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("starting apiserver: %w", err)
	}
	runCtx, stopServe := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(runCtx, func(addr string) { addrc <- addr })
	}()
	select {
	case addr := <-addrc:
		stop := func() {
			stopServe()
			<-done
			srv.Close()
		}
		return srv, "https://" + addr, stop, nil
	case err := <-done:
		stopServe()
		srv.Close()
		return nil, "", nil, fmt.Errorf("serving: %w", err)
	}
}

type client struct {
	base, token string
	http        *http.Client
}

func newClient(srv *apiserver.Server, base string, cfg config) (*client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CA()) {
		return nil, errors.New("the server's CA is not PEM")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConns:        cfg.c + 4,
		MaxIdleConnsPerHost: cfg.c + 4, // every worker keeps its connection
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   cfg.http2,
	}
	return &client{base: base, token: srv.Token("admin"), http: &http.Client{Transport: tr}}, nil
}

func (c *client) request(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends one request and reads the whole body (so the connection is
// reused).
func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

type createResult struct {
	ok, failed int
	firstErr   string
	elapsed    time.Duration
	lat        []time.Duration
}

// createAll creates cfg.n ConfigMaps from cfg.c workers. Each body carries
// its send time in an annotation for the watch latency.
func createAll(ctx context.Context, c *client, cfg config) createResult {
	var next atomic.Int64
	var mu sync.Mutex
	res := createResult{lat: make([]time.Duration, 0, cfg.n)}
	path := "/api/v1/namespaces/" + namespace + "/configmaps"
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, cfg.n/cfg.c+1)
			var failed int
			var firstErr string
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.n {
					break
				}
				sent := time.Now()
				body := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%06d",`+
					`"labels":{"app":"bench","shard":"s%d"},"annotations":{%q:"%d"}},`+
					`"data":{"index":"%d","payload":"%s"}}`,
					i, i%16, sentAnnKey, sent.UnixNano(), i, payload)
				code, out, err := c.do(ctx, "POST", path, body)
				d := time.Since(sent)
				if err != nil || code != http.StatusCreated {
					failed++
					if firstErr == "" {
						firstErr = fmt.Sprintf("cm-%06d: %d %s %v", i, code, bytes.TrimSpace(out), err)
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.failed += failed
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok = len(res.lat)
	return res
}

// payload makes each ConfigMap a plausible ~300 bytes of JSON.
var payload = strings.Repeat("x", 128)

type watcher struct {
	want int
	mu   sync.Mutex
	lat  []time.Duration
	done chan struct{}
	err  error
	stop context.CancelFunc
}

// startWatch lists the (empty) namespace for its resourceVersion and
// watches from there, returning once the stream is open.
func startWatch(ctx context.Context, c *client, want int) (*watcher, error) {
	code, body, err := c.do(ctx, "GET", "/api/v1/namespaces/"+namespace+"/configmaps", nil)
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("initial list: %d %s %v", code, body, err)
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("initial list: %w", err)
	}
	wctx, stop := context.WithCancel(ctx)
	req, err := c.request(wctx, "GET", "/api/v1/namespaces/"+namespace+"/configmaps?watch=1&resourceVersion="+list.Metadata.ResourceVersion, nil)
	if err != nil {
		stop()
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		stop()
		return nil, fmt.Errorf("watch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stop()
		return nil, fmt.Errorf("watch: %d %s", resp.StatusCode, data)
	}
	w := &watcher{want: want, done: make(chan struct{}), stop: stop, lat: make([]time.Duration, 0, want)}
	go w.read(resp.Body)
	return w, nil
}

func (w *watcher) read(body io.ReadCloser) {
	defer close(w.done)
	defer body.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(body, 64<<10))
	var ev struct {
		Type   string `json:"type"`
		Object struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		} `json:"object"`
	}
	for {
		ev.Type, ev.Object.Metadata.Annotations = "", nil
		if err := dec.Decode(&ev); err != nil {
			w.mu.Lock()
			if len(w.lat) < w.want {
				w.err = fmt.Errorf("watch stream ended: %w", err)
			}
			w.mu.Unlock()
			return
		}
		now := time.Now()
		if ev.Type != "ADDED" {
			continue
		}
		ns, err := strconv.ParseInt(ev.Object.Metadata.Annotations[sentAnnKey], 10, 64)
		if err != nil {
			continue
		}
		w.mu.Lock()
		w.lat = append(w.lat, now.Sub(time.Unix(0, ns)))
		n := len(w.lat)
		w.mu.Unlock()
		if n >= w.want {
			return
		}
	}
}

// wait returns the latencies once every event arrived or after timeout.
func (w *watcher) wait(timeout time.Duration) ([]time.Duration, error) {
	select {
	case <-w.done:
	case <-time.After(timeout):
	}
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && len(w.lat) < w.want {
		w.err = fmt.Errorf("only %d of %d ADDED events after %v", len(w.lat), w.want, timeout)
	}
	return w.lat, w.err
}

type listResult struct {
	rv           string
	items, bytes int
	d            time.Duration
	err          error
}

// listAll times one LIST of the namespace (request to last byte, decoded
// item count checked separately).
func listAll(ctx context.Context, c *client, rv string) listResult {
	path := "/api/v1/namespaces/" + namespace + "/configmaps"
	if rv != "" {
		path += "?resourceVersion=" + rv
	}
	start := time.Now()
	code, body, err := c.do(ctx, "GET", path, nil)
	d := time.Since(start)
	if err != nil || code != http.StatusOK {
		return listResult{rv: rv, err: fmt.Errorf("%d %.200s %v", code, body, err)}
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return listResult{rv: rv, err: err}
	}
	return listResult{rv: rv, items: len(list.Items), bytes: len(body), d: d}
}

type rss struct{ total, anon, file uint64 } // bytes

func (r rss) String() string {
	if r.total == 0 {
		return "unknown (no /proc/self/status)"
	}
	return fmt.Sprintf("%s (anon %s, file-backed %s)", mib(r.total), mib(r.anon), mib(r.file))
}

// readRSS reads VmRSS, RssAnon and RssFile from /proc/self/status.
func readRSS() rss {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return rss{}
	}
	var r rss
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			r.total = kb << 10
		case "RssAnon:":
			r.anon = kb << 10
		case "RssFile:":
			r.file = kb << 10
		}
	}
	return r
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
