// Package imagebuild builds the container images minik8s uses on machines
// with no registry, as OCI image-layout tarballs that
// `ctr -n k8s.io images import` loads.
//
// Every image is one uncompressed tar layer holding the host's static
// busybox (Debian package busybox-static) with a symlink for each applet,
// plus a few small files of its own, and a config with PATH and a Cmd:
//
//	minik8s.local/pause:3.10    the pod sandbox: sleeps until SIGTERM/SIGINT
//	minik8s.local/busybox:1.35  a shell and the busybox tools
//	minik8s.local/web:v1, :v2   busybox httpd on :8080 serving "minik8s web vN"
//	                            (/version: "vN", /hostname: the pod's name)
//	minik8s.local/probe:v1      a test workload whose health, readiness and
//	                            exit code are set by env (see probeScript)
//
// The command hack/images wraps it. The tarballs are reproducible: same busybox, same bytes.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// epoch is the fixed mtime of every file, so builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// file is one extra file in an image's layer.
type file struct {
	path string
	mode int64
	body string
}

// image describes one image to build.
type image struct {
	name  string // repository, e.g. minik8s.local/web
	tag   string
	cmd   []string
	entry []string // Entrypoint; nil means none
	env   []string
	ports []string // "8080/tcp"
	files []file
}

func (i image) ref() string { return i.name + ":" + i.tag }

// fileName is the tarball's name: web-v1.tar.
func (i image) fileName() string { return path.Base(i.name) + "-" + i.tag + ".tar" }

// pauseScript is the sandbox's process. As PID 1 of the pod's PID
// namespace it gets no default signal handling, so it traps TERM and INT to
// stop promptly when the runtime stops the sandbox.
const pauseScript = `trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done`

// webScript serves /www with busybox httpd and exits on SIGTERM. /hostname
// answers the pod's name, so a client can tell the backends apart.
const webScript = `trap 'exit 0' TERM INT; hostname > /www/hostname; echo "web $WEB_VERSION listening on :8080"; httpd -f -v -p 8080 -h /www & wait $!`

// probeScript is minik8s.local/probe:v1. Its behaviour is driven by env so a
// test can make it fail on demand:
//
//	READY_AFTER=N      create /www/ready after N seconds (default 0)
//	UNHEALTHY_AFTER=N  remove /www/healthz after N seconds (default never)
//	EXIT_AFTER=N       exit after N seconds with EXIT_CODE (default never)
//	EXIT_CODE=C        the exit code for EXIT_AFTER (default 0)
//	MESSAGE=text       printed at start and written to /dev/termination-log
//
// It serves /www on :8080, so httpGet probes of /healthz and /ready and
// exec probes of "test -f /www/healthz" see the same state. Arguments, if
// given (container args), replace all of this: the image's entrypoint is
// probe-app, so args ["sh","-c","exit 3"] run that command instead.
const probeScript = `#!/bin/sh
if [ "$#" -gt 0 ]; then exec "$@"; fi
mkdir -p /www
echo ok > /www/healthz
echo "probe-app v1 started${MESSAGE:+: $MESSAGE}"
[ -n "$MESSAGE" ] && echo "$MESSAGE" > /dev/termination-log 2>/dev/null
httpd -f -p 8080 -h /www &
srv=$!
trap 'echo "probe-app: SIGTERM"; kill $srv; exit 0' TERM INT
( sleep "${READY_AFTER:-0}"; echo ready > /www/ready; echo "probe-app: ready" ) &
if [ -n "$UNHEALTHY_AFTER" ]; then
  ( sleep "$UNHEALTHY_AFTER"; rm -f /www/healthz; echo "probe-app: unhealthy" ) &
fi
if [ -n "$EXIT_AFTER" ]; then
  trap 'kill $srv; exit "${EXIT_CODE:-0}"' USR1
  ( sleep "$EXIT_AFTER"; echo "probe-app: exiting with ${EXIT_CODE:-0}"; kill -USR1 $$ ) &
fi
while :; do sleep 3600 & wait $!; done
`

func webPage(v string) string {
	return fmt.Sprintf("<html><body><h1>minik8s web %s</h1></body></html>\n", v)
}

// Names of the images Build makes.
const (
	PauseImage   = "minik8s.local/pause:3.10"
	BusyboxImage = "minik8s.local/busybox:1.35"
	WebV1Image   = "minik8s.local/web:v1"
	WebV2Image   = "minik8s.local/web:v2"
	ProbeImage   = "minik8s.local/probe:v1"
)

func images() []image {
	return []image{
		{name: "minik8s.local/pause", tag: "3.10", cmd: []string{"/bin/sh", "-c", pauseScript}},
		{name: "minik8s.local/busybox", tag: "1.35", cmd: []string{"sh"}},
		{
			name: "minik8s.local/web", tag: "v1", cmd: []string{"/bin/sh", "-c", webScript},
			env: []string{"WEB_VERSION=v1"}, ports: []string{"8080/tcp"},
			files: []file{{"www/index.html", 0o644, webPage("v1")}, {"www/version", 0o644, "v1\n"}, {"www/healthz", 0o644, "ok\n"}},
		},
		{
			name: "minik8s.local/web", tag: "v2", cmd: []string{"/bin/sh", "-c", webScript},
			env: []string{"WEB_VERSION=v2"}, ports: []string{"8080/tcp"},
			files: []file{{"www/index.html", 0o644, webPage("v2")}, {"www/version", 0o644, "v2\n"}, {"www/healthz", 0o644, "ok\n"}},
		},
		{
			name: "minik8s.local/probe", tag: "v1", entry: []string{"/bin/probe-app"}, ports: []string{"8080/tcp"},
			files: []file{{"bin/probe-app", 0o755, probeScript}},
		},
	}
}

// Build writes every image's tarball into dir and returns their paths.
func Build(dir, busybox string) ([]string, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("reading busybox (install busybox-static): %w", err)
	}
	applets, err := appletPaths(busybox)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, img := range images() {
		data, err := buildImage(img, bb, applets)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ref(), err)
		}
		p := filepath.Join(dir, img.fileName())
		if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// appletPaths asks busybox where each applet belongs (bin/sh, usr/bin/wget ...).
func appletPaths(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "bin/busybox" {
			paths = append(paths, l)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// layer builds the image's single uncompressed tar layer.
func layer(img image, bb []byte, applets []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]int64{
		"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
		"etc": 0o755, "tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755, "root": 0o700,
		"var": 0o755, "www": 0o755, "home": 0o755,
	}
	for _, a := range applets {
		for d := path.Dir(a); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d], ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	write := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := write("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: a, Linkname: "/bin/busybox", Mode: 0o777, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	base := []file{
		{"etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"},
		{"etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/image-name", 0o644, img.ref() + "\n"},
	}
	for _, f := range append(base, img.files...) {
		if err := write(f.path, f.mode, []byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// buildImage returns the OCI image-layout tarball of img.
func buildImage(img image, bb []byte, applets []string) ([]byte, error) {
	lay, err := layer(img, bb, applets)
	if err != nil {
		return nil, err
	}
	ports := map[string]struct{}{}
	for _, p := range img.ports {
		ports[p] = struct{}{}
	}
	cfg := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env":          append([]string{defaultPath}, img.env...),
			"Entrypoint":   img.entry,
			"Cmd":          img.cmd,
			"WorkingDir":   "/",
			"ExposedPorts": ports,
			"Labels":       map[string]string{"org.opencontainers.image.title": img.ref(), "org.opencontainers.image.source": "minik8s hack/images"},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{digest(lay)}},
		"history": []map[string]string{{"created": epoch.Format(time.RFC3339), "created_by": "minik8s hack/images: busybox-static + " + img.ref()}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest(cfgJSON), Size: int64(len(cfgJSON))},
		"layers":        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: digest(lay), Size: int64(len(lay))}},
	}
	manJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, err
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json",
			Digest:    digest(manJSON),
			Size:      int64(len(manJSON)),
			Platform:  &platform{Architecture: runtime.GOARCH, OS: "linux"},
			Annotations: map[string]string{
				// containerd names the imported image after this one...
				"io.containerd.image.name": img.ref(),
				// ...and OCI tools after this tag.
				"org.opencontainers.image.ref.name": img.tag,
			},
		}},
	}
	idxJSON, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	blob := func(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:") }
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, e := range []struct {
		name string
		body []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idxJSON},
		{blob(manJSON), manJSON},
		{blob(cfgJSON), cfgJSON},
		{blob(lay), lay},
	} {
		if err := add(e.name, e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
