package allocator

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseServiceCIDR(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "10.96.0.0/12", want: "10.96.0.0/12"},
		{in: "10.96.0.5/12", want: "10.96.0.0/12"},
		{in: "192.168.0.0/30", want: "192.168.0.0/30"},
		{in: "fd00:10:96::/108", want: "fd00:10:96::/108"},
		{in: "10.0.0.0/11", err: "too large"},
		{in: "fd00::/64", err: "too large"},
		{in: "10.0.0.0/31", err: "too small"},
		{in: "10.0.0.1/32", err: "too small"},
		{in: "fd00::1/128", err: "too small"},
		{in: "::ffff:10.0.0.0/120", err: "IPv4-mapped"},
		{in: "banana", err: "banana"},
	}
	for _, c := range cases {
		p, err := ParseServiceCIDR(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: want error %q, got %v %v", c.in, c.err, p, err)
			}
			continue
		}
		if err != nil || p.String() != c.want {
			t.Errorf("%s: got %v %v, want %s", c.in, p, err, c.want)
		}
	}
}

func TestFirstIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.96.0.0/12":     "10.96.0.1",
		"10.96.0.7/24":     "10.96.0.1",
		"172.20.0.0/16":    "172.20.0.1",
		"fd00:10:96::/108": "fd00:10:96::1",
	} {
		got, err := FirstIP(cidr)
		if err != nil || got.String() != want {
			t.Errorf("FirstIP(%s) = %v %v, want %s", cidr, got, err, want)
		}
	}
	if _, err := FirstIP("1.2.3.4/33"); err == nil {
		t.Error("FirstIP accepted a bad CIDR")
	}
}

func TestClusterIPOffsets(t *testing.T) {
	cases := []struct {
		cidr string
		size int
		ip   string
		off  int // -1: not in range
	}{
		{"10.96.0.0/12", 1<<20 - 2, "10.96.0.1", 0},
		{"10.96.0.0/12", 1<<20 - 2, "10.96.1.0", 255},
		{"10.96.0.0/12", 1<<20 - 2, "10.111.255.254", 1<<20 - 3},
		{"10.96.0.0/12", 1<<20 - 2, "10.111.255.255", -1}, // broadcast
		{"10.96.0.0/12", 1<<20 - 2, "10.96.0.0", -1},      // network
		{"10.96.0.0/12", 1<<20 - 2, "10.112.0.1", -1},
		{"10.96.0.0/12", 1<<20 - 2, "::ffff:10.96.0.2", 1}, // mapped form of an in-range IPv4
		{"10.96.0.0/29", 6, "10.96.0.6", 5},
		{"10.96.0.0/29", 6, "10.96.0.7", -1},
		{"fd00::/120", 255, "fd00::1", 0},
		{"fd00::/120", 255, "fd00::ff", 254}, // no broadcast in IPv6
		{"fd00::/120", 255, "fd00::100", -1},
		{"fd00::/120", 255, "10.96.0.1", -1},
	}
	for _, c := range cases {
		a, err := NewClusterIP(nil, c.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if a.Size() != c.size {
			t.Errorf("%s: size %d, want %d", c.cidr, a.Size(), c.size)
		}
		off, err := a.offset(netip.MustParseAddr(c.ip))
		if c.off < 0 {
			if !errors.Is(err, ErrNotInRange) || !strings.Contains(err.Error(), c.cidr) {
				t.Errorf("%s in %s: want ErrNotInRange naming the range, got %d %v", c.ip, c.cidr, off, err)
			}
			continue
		}
		if err != nil || off != c.off {
			t.Errorf("%s in %s: offset %d %v, want %d", c.ip, c.cidr, off, err, c.off)
			continue
		}
		if back := a.addr(off); back != netip.MustParseAddr(c.ip).Unmap() {
			t.Errorf("%s in %s: addr(%d) = %s", c.ip, c.cidr, off, back)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	cases := []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"30000-32767", PortRange{30000, 2768}, true},
		{" 30000 - 30009 ", PortRange{30000, 10}, true},
		{"8080", PortRange{8080, 1}, true},
		{"1-65535", PortRange{1, 65535}, true},
		{"0-10", PortRange{}, false},
		{"10-65536", PortRange{}, false},
		{"200-100", PortRange{}, false},
		{"a-b", PortRange{}, false},
		{"", PortRange{}, false},
	}
	for _, c := range cases {
		got, err := ParsePortRange(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: got %v %v, want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	if s := (PortRange{30000, 2768}).String(); s != "30000-32767" {
		t.Errorf("String() = %s", s)
	}
}

func TestBandOffset(t *testing.T) {
	cases := []struct{ size, lo, hi, step, want int }{
		{1<<20 - 2, 16, 256, 16, 256}, // /12 service range
		{254, 16, 256, 16, 16},        // /24: size/step below the minimum
		{4094, 16, 256, 16, 255},      // /20
		{6, 16, 256, 16, 0},           // tiny range: no static band
		{2768, 16, 128, 32, 86},       // default node port range
		{100000, 16, 128, 32, 128},
	}
	for _, c := range cases {
		if got := bandOffset(c.size, c.lo, c.hi, c.step); got != c.want {
			t.Errorf("bandOffset(%d, %d, %d, %d) = %d, want %d", c.size, c.lo, c.hi, c.step, got, c.want)
		}
	}
}

// TestPickPrefersUpperBand: dynamic picks come from the upper band while it
// has room, then from the lower band, never from the reserved offsets.
func TestPickPrefersUpperBand(t *testing.T) {
	r := newBitmapRange(nil, "/k", "x", 64, 16, 1)
	st := r.empty()
	for range 200 {
		i, ok := r.pick(st)
		if !ok || i < 16 {
			t.Fatalf("pick from empty range = %d %v, want >= 16", i, ok)
		}
	}
	for i := 16; i < 64; i++ {
		st.set(i)
	}
	seen := map[int]bool{}
	for range 15 {
		i, ok := r.pick(st)
		if !ok || i < 1 || i >= 16 || seen[i] {
			t.Fatalf("pick with full upper band = %d %v", i, ok)
		}
		seen[i] = true
		st.set(i)
	}
	if i, ok := r.pick(st); ok {
		t.Fatalf("picked %d from a full range (offset 0 is reserved)", i)
	}
}

func TestRecordEncoding(t *testing.T) {
	r := newBitmapRange(nil, ServiceIPsKey, "10.96.0.0/12", 1<<20-2, 256, 1)
	st := r.empty()
	for _, i := range []int{0, 7, 8, 1000, 1<<20 - 3} {
		st.set(i)
	}
	raw, err := r.encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 4096 {
		t.Errorf("a nearly empty /12 bitmap encodes to %d bytes", len(raw))
	}
	got, err := r.decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.count() != 5 || !got.has(1<<20-3) || !got.has(0) || got.has(1) {
		t.Fatalf("decoded bitmap differs: %d bits", got.count())
	}

	other := newBitmapRange(nil, ServiceIPsKey, "10.0.0.0/24", 254, 16, 1)
	if _, err := other.decode(raw); !errors.Is(err, ErrRangeChanged) {
		t.Errorf("range mismatch: %v", err)
	}
	small := newBitmapRange(nil, ServiceIPsKey, "10.96.0.0/12", 16, 0, 0)
	if _, err := small.decode(raw); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("oversized bitmap: %v", err)
	}
	for _, bad := range []string{`{`, `{"range":"10.96.0.0/12","encoding":"zstd","data":""}`} {
		if _, err := r.decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), ServiceIPsKey) {
			t.Errorf("%s: want error naming the key, got %v", bad, err)
		}
	}
	// Uncompressed data (encoding "") is read too.
	plain, err := r.decode([]byte(`{"range":"10.96.0.0/12","data":"Ag=="}`))
	if err != nil || !plain.has(1) || plain.count() != 1 {
		t.Errorf("plain bitmap: %v", err)
	}
}

func TestErrorMessages(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{Err: ErrAllocated, What: "cluster IP", Value: "10.96.0.10", Range: "10.96.0.0/12"}, "cluster IP 10.96.0.10 is already allocated"},
		{&Error{Err: ErrNotInRange, What: "node port", Value: "80", Range: "30000-32767"}, "node port 80 is not in the valid range 30000-32767"},
		{&Error{Err: ErrFull, What: "cluster IP", Range: "10.96.0.0/29"}, "range 10.96.0.0/29 is full: no cluster IPs available"},
	}
	for _, c := range cases {
		if c.err.Error() != c.want {
			t.Errorf("got %q, want %q", c.err.Error(), c.want)
		}
		if !errors.Is(c.err, c.err.Err) {
			t.Errorf("errors.Is fails for %v", c.err.Err)
		}
	}
}
