package textdiff

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

func TestUnifiedFixed(t *testing.T) {
	a := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - image: nginx:1.14.2\n        name: nginx\n"
	b := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n  template:\n    spec:\n      containers:\n      - image: nginx:1.16.1\n        name: nginx\n"
	want := `--- live
+++ merged
@@ -3,9 +3,9 @@
 metadata:
   name: web
 spec:
-  replicas: 3
+  replicas: 5
   template:
     spec:
       containers:
-      - image: nginx:1.14.2
+      - image: nginx:1.16.1
         name: nginx
`
	if got := Unified("live", "merged", a, b, 3); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Unified("a", "b", a, a, 3); got != "" {
		t.Errorf("equal texts give %q", got)
	}
	if got := Unified("a", "b", "", "x: 1\n", 3); got != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x: 1\n" {
		t.Errorf("new file: %q", got)
	}
	if got := Unified("a", "b", "x: 1\n", "", 3); got != "--- a\n+++ b\n@@ -1 +0,0 @@\n-x: 1\n" {
		t.Errorf("deleted file: %q", got)
	}
}

// apply reconstructs the new text from the old one and a unified diff.
func apply(t *testing.T, old, diff string) string {
	t.Helper()
	a := lines(old)
	var out []string
	pos := 0
	dl := strings.Split(diff, "\n")
	for i := 2; i < len(dl); i++ {
		l := dl[i]
		if !strings.HasPrefix(l, "@@ ") {
			if l == "" {
				continue
			}
			switch l[0] {
			case ' ':
				if a[pos] != l[1:]+"\n" {
					t.Fatalf("context mismatch at %d: %q vs %q", pos, a[pos], l[1:])
				}
				out = append(out, a[pos])
				pos++
			case '-':
				if a[pos] != l[1:]+"\n" {
					t.Fatalf("deletion mismatch at %d: %q vs %q", pos, a[pos], l[1:])
				}
				pos++
			case '+':
				out = append(out, l[1:]+"\n")
			}
			continue
		}
		var as, bs int
		fmt.Sscanf(strings.Fields(l)[1][1:], "%d", &as)
		_ = bs
		start := as - 1
		if strings.Contains(strings.Fields(l)[1], ",0") {
			start = as
		}
		for pos < start {
			out = append(out, a[pos])
			pos++
		}
	}
	out = append(out, a[pos:]...)
	return strings.Join(out, "")
}

func TestUnifiedRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		var a, b []string
		for i := 0; i < r.Intn(40); i++ {
			a = append(a, "line "+strconv.Itoa(r.Intn(8))+"\n")
		}
		for _, l := range a {
			switch r.Intn(6) {
			case 0: // drop
			case 1:
				b = append(b, "new "+strconv.Itoa(r.Intn(5))+"\n", l)
			default:
				b = append(b, l)
			}
		}
		as, bs := strings.Join(a, ""), strings.Join(b, "")
		d := Unified("a", "b", as, bs, 3)
		if (d == "") != (as == bs) {
			t.Fatalf("case %d: empty diff %v for equal %v", n, d == "", as == bs)
		}
		if d == "" {
			continue
		}
		if got := apply(t, as, d); got != bs {
			t.Fatalf("case %d: applying the diff gives\n%q\nwant\n%q\ndiff:\n%s", n, got, bs, d)
		}
	}
}
