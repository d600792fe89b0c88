// Command images builds the container images minik8s uses on machines with
// no registry (pause, busybox, web:v1/v2, probe; see package imagebuild) as
// OCI image-layout tarballs, and can import them into a containerd:
//
//	go run ./hack/images --out /var/lib/minik8s/images
//	go run ./hack/images --out DIR --import --address /run/containerd/containerd.sock
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/minik8s/minik8s/hack/images/imagebuild"
)

func main() {
	out := flag.String("out", "_output/images", "directory to write the image tarballs to")
	busybox := flag.String("busybox", "/bin/busybox", "the static busybox binary to put in the images (Debian: busybox-static)")
	doImport := flag.Bool("import", false, "import the tarballs into containerd with ctr (namespace k8s.io)")
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd socket for --import")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./hack/images [--out DIR] [--import --address SOCK]\n\n"+
			"Builds minik8s's local OCI images (pause, busybox, web:v1/v2, probe) from the host's\n"+
			"static busybox, with no registry, and optionally imports them into containerd.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	paths, err := imagebuild.Build(*out, *busybox)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
	if *doImport {
		for _, p := range paths {
			cmd := exec.Command("ctr", "--address", *address, "-n", "k8s.io", "images", "import", "--no-unpack=false", p)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "images: import %s: %v\n", p, err)
				os.Exit(1)
			}
		}
	}
}
